"""`lambdavision export` and `lambdavision convert`: make a full artifact (ONNX + manifest).

Both need the `[export]` extra (torch); `lambdavision.export` imports it lazily, so a missing
torch is one line telling what to install.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from lambdavision.core.artifact import Manifest, read_artifact

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
    type=_EXISTING_FILE,
    help="An existing TorchScript model (torch.jit.save'd .pth); needs --classes.",
)
@click.option("--classes", "classes_path", type=_EXISTING_FILE, help="Class names, one per line.")
@click.option(
    "--from",
    "from_artifact",
    type=_EXISTING_FILE,
    help="Start from an existing model.tar.gz (classic or full) instead of --torchscript/--classes.",
)
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
    "--keep-torchscript/--no-torchscript",
    "keep_torchscript",
    default=False,
    show_default=True,
    help="Keep the TorchScript .pth in the artifact, after the ONNX members. Left out by default: the "
    "function never reads it, and on S3 it would only add bytes to download.",
)
@click.option(
    "--quantize",
    type=click.Choice(["int8"]),
    default=None,
    help="Static int8 quantisation of the ONNX model (QDQ, u8 activations, s8 per-channel weights).",
)
@click.option(
    "--calibration-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Images like the ones the model will see: 4 in 5 calibrate, every 5th judges agreement.",
)
@click.option(
    "--min-agreement",
    default=0.99,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Refuse the int8 model below this top-1 agreement with the float one.",
)
def export_command(
    torchscript_path: Path | None,
    classes_path: Path | None,
    from_artifact: Path | None,
    out: Path,
    input_size: int,
    resize_size: int | None,
    keep_torchscript: bool,
    quantize: str | None,
    calibration_dir: Path | None,
    min_agreement: float,
) -> None:
    """Build model.tar.gz (ONNX + manifest; --keep-torchscript adds the .pth) from a TorchScript file and classes.

    The ONNX copy is checked against the TorchScript model on random inputs before anything is
    written. With --quantize int8 the ONNX model is quantised, calibrated on --calibration-dir, and
    refused if its top-1 agreement with the float model drops below --min-agreement. From Python,
    `lambdavision.export.export(model_or_learner, classes)` exports a live torch model or fastai
    learner.
    """
    from lambdavision.export import convert, export_torchscript

    if from_artifact is not None and (torchscript_path or classes_path):
        raise click.UsageError("give either --from ARTIFACT or --torchscript + --classes, not both")
    if from_artifact is None and not (torchscript_path and classes_path):
        raise click.UsageError("give --torchscript MODEL.pth and --classes classes.txt (or --from ARTIFACT)")
    if quantize and calibration_dir is None:
        raise click.UsageError("--quantize int8 needs --calibration-dir DIR: images like the ones it will serve")
    if quantize is None and calibration_dir is not None:
        raise click.UsageError("--calibration-dir only makes sense with --quantize int8")

    with tempfile.TemporaryDirectory(prefix="lambdavision-export-") as tmp:
        float_out = Path(tmp) / "float.tar.gz" if quantize else out
        if from_artifact is not None:
            source = from_artifact
            if quantize is None or read_artifact(from_artifact).onnx is None:
                manifest = convert(from_artifact, float_out, torchscript=keep_torchscript)
                source = float_out
        else:
            assert torchscript_path is not None and classes_path is not None
            manifest = export_torchscript(
                torchscript_path,
                classes_path,
                float_out,
                input_size=input_size,
                resize_size=resize_size,
                torchscript=keep_torchscript,
            )
            source = float_out
        if quantize:
            assert calibration_dir is not None
            manifest = _quantize(source, out, calibration_dir, min_agreement, keep_torchscript)
    click.echo(_summary(out, manifest))


def _quantize(source: Path, out: Path, calibration_dir: Path, min_agreement: float, torchscript: bool) -> Manifest:
    from lambdavision.export import ExportError
    from lambdavision.quantize import load_image_dir, quantize_int8, split_held_out

    inputs = load_image_dir(calibration_dir, read_artifact(source).preprocessing)
    if len(inputs) < 10:
        raise ExportError(f"{calibration_dir}: found {len(inputs)} images; int8 calibration needs at least 10")
    calibration, held_out = split_held_out(inputs)
    manifest, report = quantize_int8(
        source, out, calibration, held_out, min_agreement=min_agreement, torchscript=torchscript
    )
    for line in report.lines():
        click.echo(line)
    return manifest


@click.command("convert")
@click.argument("old", type=_EXISTING_FILE)
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--keep-torchscript/--no-torchscript",
    "keep_torchscript",
    default=False,
    show_default=True,
    help="Keep the .pth in NEW (after the ONNX members). Left out by default: the function never reads it.",
)
def convert_command(old: Path, new: Path, keep_torchscript: bool) -> None:
    """Add ONNX and the manifest to a classic tarball (.pth + classes.txt); --keep-torchscript keeps the .pth.

    A classic tarball carries no preprocessing, so the guide's is recorded: Resize(256),
    CenterCrop(224), ImageNet mean/std.
    """
    from lambdavision.export import convert

    if old.resolve() == new.resolve():
        raise click.UsageError("NEW must be a different file from OLD")
    manifest = convert(old, new, torchscript=keep_torchscript)
    click.echo(_summary(new, manifest))


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(export_command)
    cli.add_command(convert_command)
