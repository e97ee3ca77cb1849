"""`lambdavision export` and `lambdavision convert`: make a full artifact (ONNX + manifest).

Both need the `[export]` extra (torch); `lambdavision.export` imports it lazily, so a missing
torch is one line telling what to install.
"""

from __future__ import annotations

from pathlib import Path

import click

from lambdavision.core.artifact import Manifest

_EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _summary(out: Path, manifest: Manifest) -> str:
    members = ", ".join(manifest.sha256)
    size_kib = out.stat().st_size / 1024
    return (
        f"wrote {out} ({size_kib:,.0f} KiB): {manifest.num_classes} classes, input "
        f"{manifest.preprocessing.input_size}x{manifest.preprocessing.input_size}; members {members}"
    )


@click.command("export")
@click.option(
    "--torchscript",
    "torchscript_path",
    required=True,
    type=_EXISTING_FILE,
    help="An existing TorchScript model (torch.jit.save'd .pth).",
)
@click.option("--classes", "classes_path", required=True, type=_EXISTING_FILE, help="Class names, one per line.")
@click.option(
    "-o",
    "--output",
    "out",
    default=Path("model.tar.gz"),
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option("--input-size", default=224, show_default=True, type=click.IntRange(min=8), help="Model input side, px.")
@click.option(
    "--resize-size",
    default=None,
    type=click.IntRange(min=8),
    help="Shorter side before the centre crop [default: input size x 256/224].",
)
@click.option(
    "--no-torchscript",
    "no_torchscript",
    is_flag=True,
    help="Leave the .pth out: a smaller, ONNX-only serving artifact.",
)
def export_command(
    torchscript_path: Path,
    classes_path: Path,
    out: Path,
    input_size: int,
    resize_size: int | None,
    no_torchscript: bool,
) -> None:
    """Build model.tar.gz (ONNX + TorchScript + manifest) from a TorchScript file and a class list.

    The ONNX copy is checked against the TorchScript model on random inputs before anything is
    written. From Python, `lambdavision.export.export(model_or_learner, classes)` exports a live
    torch model or fastai learner.
    """
    from lambdavision.export import export_torchscript

    manifest = export_torchscript(
        torchscript_path,
        classes_path,
        out,
        input_size=input_size,
        resize_size=resize_size,
        torchscript=not no_torchscript,
    )
    click.echo(_summary(out, manifest))


@click.command("convert")
@click.argument("old", type=_EXISTING_FILE)
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-torchscript", "no_torchscript", is_flag=True, help="Leave the .pth out of NEW.")
def convert_command(old: Path, new: Path, no_torchscript: bool) -> None:
    """Add ONNX and the manifest to a classic tarball (.pth + classes.txt), keeping the .pth.

    A classic tarball carries no preprocessing, so the guide's is recorded: Resize(256),
    CenterCrop(224), ImageNet mean/std.
    """
    from lambdavision.export import convert

    if old.resolve() == new.resolve():
        raise click.UsageError("NEW must be a different file from OLD")
    manifest = convert(old, new, torchscript=not no_torchscript)
    click.echo(_summary(new, manifest))


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(export_command)
    cli.add_command(convert_command)
