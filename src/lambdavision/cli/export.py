"""`lambdavision export` and `lambdavision convert`: make a full artifact (ONNX + manifest).

Both need the `[export]` extra (torch), `--fastai` the `[fastai]` one; `lambdavision.export`
imports them lazily, so a missing library is one line telling what to install.
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
    height, width = manifest.preprocessing.input_shape
    line = (
        f"wrote {out} ({size_kib:,.0f} KiB): {manifest.num_classes} classes, input {width}x{height}"
        f"{', multi-label' if manifest.head.multi_label else ''}; members {members}"
    )
    check = manifest.extra.get("photo_check")
    if isinstance(check, dict):
        line += (
            f"\nchecked on {check.get('photos')} photos against the source library: max |Δp| "
            f"{check.get('max_abs_dp')} (tolerance {check.get('tolerance')})"
        )
    return line


_INPUT_SIZE = click.option(
    "--input-size",
    default=None,
    type=click.IntRange(min=8),
    help="Model input side, px; the ONNX copy is checked at this size.  [default: 224, or the artifact's own]",
)
_RESIZE_SIZE = click.option(
    "--resize-size",
    default=None,
    type=click.IntRange(min=8),
    help="Shorter side before the centre crop [default: input size x 256/224].",
)


def _from_artifact(
    source: Path, out: Path, input_size: int | None, resize_size: int | None, torchscript: bool
) -> Manifest:
    """`convert` (the artifact's own preprocessing), or with a size given, its TorchScript exported
    again at that size: the ONNX copy is made and checked at N x N, and the manifest says N."""
    from lambdavision.export import ExportError, convert, export_torchscript

    if input_size is None and resize_size is None:
        return convert(source, out, torchscript=torchscript)
    artifact = read_artifact(source, want_torchscript=True)
    if artifact.torchscript is None or artifact.torchscript_name is None:
        raise ExportError(f"{source} holds no TorchScript (.pth) to export again at another input size")
    prep = artifact.preprocessing
    if prep.steps or prep.mean is None or prep.std is None:
        # A recorded (fastai / torchvision) pipeline fixes its own sizes: another size would serve
        # other answers than the notebook's.
        raise ExportError(f"{source} records its own preprocessing pipeline: its input size cannot be changed")
    size = input_size or artifact.preprocessing.input_size
    with tempfile.TemporaryDirectory(prefix="lambdavision-resize-") as tmp:
        pth = Path(tmp) / artifact.torchscript_name
        pth.write_bytes(artifact.torchscript)
        classes = Path(tmp) / "classes.txt"
        classes.write_text("\n".join(artifact.classes) + "\n", encoding="utf-8")
        return export_torchscript(
            pth,
            classes,
            out,
            input_size=size,
            resize_size=resize_size,
            mean=prep.mean,
            std=prep.std,
            torchscript=torchscript,
        )


@click.command("export")
@click.option(
    "--fastai",
    "fastai_path",
    type=_EXISTING_FILE,
    help="A fastai Learner saved by learn.export() (export.pkl). It is UNPICKLED, which runs code "
    "from the file: trusted files only. Needs lambdavision[fastai].",
)
@click.option(
    "--check-images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="With --fastai: photos to compare lambdavision's answers with learn.predict's on [default: generated photos].",
)
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
@_INPUT_SIZE
@_RESIZE_SIZE
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
    fastai_path: Path | None,
    check_images: Path | None,
    torchscript_path: Path | None,
    classes_path: Path | None,
    from_artifact: Path | None,
    out: Path,
    input_size: int | None,
    resize_size: int | None,
    keep_torchscript: bool,
    quantize: str | None,
    calibration_dir: Path | None,
    min_agreement: float,
) -> None:
    """Build model.tar.gz (ONNX + manifest; --keep-torchscript adds the .pth) from a fastai Learner, or a
    TorchScript file and a class list.

    --fastai export.pkl reads the Learner's own predict-time pipeline (Resize, IntToFloatTensor,
    Normalize) and head (softmax, or sigmoid + threshold) into the manifest, refuses what it cannot
    record, and writes nothing unless lambdavision's answers match learn.predict's on photos.
    The ONNX copy is checked against the model on random inputs before anything is written. With
    --quantize int8 the ONNX model is quantised, calibrated on --calibration-dir, and refused if
    its top-1 agreement with the float model drops below --min-agreement. From Python,
    `lambdavision.export.export(learn)` (or `export(model, classes, transforms=weights.transforms())`)
    does the same for a live Learner or torchvision model.
    """
    from lambdavision.export import export_fastai, export_torchscript

    sources = sum(x is not None for x in (fastai_path, from_artifact, torchscript_path or classes_path))
    if sources > 1:
        raise click.UsageError("give one of --fastai export.pkl, --from ARTIFACT, or --torchscript + --classes")
    if fastai_path is None and from_artifact is None and not (torchscript_path and classes_path):
        raise click.UsageError(
            "give --fastai export.pkl, or --torchscript MODEL.pth and --classes classes.txt (or --from ARTIFACT)"
        )
    if fastai_path is not None and (input_size is not None or resize_size is not None):
        raise click.UsageError("--fastai reads the sizes from the Learner: leave --input-size/--resize-size out")
    if check_images is not None and fastai_path is None:
        raise click.UsageError("--check-images only makes sense with --fastai")
    if quantize and calibration_dir is None:
        raise click.UsageError("--quantize int8 needs --calibration-dir DIR: images like the ones it will serve")
    if quantize is None and calibration_dir is not None:
        raise click.UsageError("--calibration-dir only makes sense with --quantize int8")

    with tempfile.TemporaryDirectory(prefix="lambdavision-export-") as tmp:
        float_out = Path(tmp) / "float.tar.gz" if quantize else out
        if fastai_path is not None:
            manifest = export_fastai(fastai_path, float_out, torchscript=keep_torchscript, check_images=check_images)
            source = float_out
        elif from_artifact is not None:
            source = from_artifact
            resized = input_size is not None or resize_size is not None
            if quantize is None or resized or read_artifact(from_artifact).onnx is None:
                manifest = _from_artifact(from_artifact, float_out, input_size, resize_size, keep_torchscript)
                source = float_out
        else:
            assert torchscript_path is not None and classes_path is not None
            manifest = export_torchscript(
                torchscript_path,
                classes_path,
                float_out,
                input_size=224 if input_size is None else input_size,
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
@_INPUT_SIZE
@_RESIZE_SIZE
def convert_command(
    old: Path, new: Path, keep_torchscript: bool, input_size: int | None, resize_size: int | None
) -> None:
    """Add ONNX and the manifest to a classic tarball (.pth + classes.txt); --keep-torchscript keeps the .pth.

    A classic tarball carries no preprocessing, so the guide's is recorded: Resize(256),
    CenterCrop(224), ImageNet mean/std; --input-size N (and --resize-size) record and check another.
    """
    if old.resolve() == new.resolve():
        raise click.UsageError("NEW must be a different file from OLD")
    manifest = _from_artifact(old, new, input_size, resize_size, keep_torchscript)
    click.echo(_summary(new, manifest))


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(export_command)
    cli.add_command(convert_command)
