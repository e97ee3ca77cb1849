"""Command: `upload` — a validated model artifact into S3, converted on the way if asked."""

from __future__ import annotations

import contextlib
import shlex
import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from lambdavision.aws.session import aws_errors
from lambdavision.aws.upload import S3Location, parse_s3_uri, upload_artifact
from lambdavision.cli.aws_common import aws_options, note, session_for, show_progress


@click.command("upload")
@click.argument("artifact", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("destination", metavar="s3://BUCKET/KEY")
@click.option(
    "--convert",
    is_flag=True,
    help="Convert a classic tarball (TorchScript .pth + classes.txt) on the way: add ONNX, which the Lambda "
    "function needs (as `lambdavision convert`; needs torch, the [export] extra).",
)
@aws_options
def upload(
    artifact: Path,
    destination: str,
    convert: bool,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    quiet: bool,
) -> None:
    """Validate a model artifact and upload it to S3 (skipped when S3 already has the same bytes).

    Prints the S3 URI and the MODEL_BUCKET / MODEL_KEY values (the template's BucketName /
    ObjectKey parameters) to use. A classic tarball (no ONNX) cannot be served by the Lambda
    function: --convert adds ONNX first; without it, a warning says so.
    """
    location = parse_s3_uri(destination)
    with contextlib.ExitStack() as stack:
        artifact = _converted_if_classic(artifact, convert, quiet, stack)
        _upload(artifact, location, region, profile, endpoint_url, quiet)


def _converted_if_classic(artifact: Path, convert: bool, quiet: bool, stack: contextlib.ExitStack) -> Path:
    """The artifact to upload: a classic one converted (with --convert), else the file itself."""
    from lambdavision.aws.model_check import HEAD_BYTES, classify_head

    if not artifact.is_file():
        return artifact  # upload_artifact says what is wrong
    with artifact.open("rb") as fh:
        head = classify_head(fh.read(HEAD_BYTES))
    if head.kind != "classic":
        if convert:
            note(f"{artifact} already holds ONNX: uploading it as it is (--convert has nothing to do)", quiet)
        return artifact
    if not convert:
        click.echo(
            f"warning: {artifact} is a classic tarball (TorchScript only: {head.detail}); the Lambda function "
            "cannot serve it (its package has no torch), and `deploy` will refuse it: upload with --convert",
            err=True,
        )
        return artifact
    from lambdavision.export import convert as convert_artifact

    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lambdavision-convert-")))
    converted = folder / artifact.name
    manifest = convert_artifact(artifact, converted)
    note(f"Converted {artifact}: added ONNX (members {', '.join(manifest.sha256)})", quiet)
    return converted


def _upload(
    artifact: Path,
    location: S3Location,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    quiet: bool,
) -> None:
    s3 = session_for(region, profile, endpoint_url).s3()
    with aws_errors(bucket=location.bucket):
        if show_progress(quiet):
            columns = (
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
                size = artifact.stat().st_size if artifact.is_file() else None
                task = progress.add_task(f"uploading {artifact.name}", total=size)
                result = upload_artifact(s3, artifact, location, on_bytes=lambda n: progress.advance(task, n))
        else:
            result = upload_artifact(s3, artifact, location)
    if result.uploaded:
        note(f"Uploaded {artifact} ({result.size:,} bytes, sha256 {result.sha256[:12]}…)", quiet)
    else:
        note(f"Skipped: {location.uri} already holds this artifact (sha256 {result.sha256[:12]}…)", quiet)
    click.echo(location.uri)
    click.echo(f"MODEL_BUCKET={location.bucket}")
    click.echo(f"MODEL_KEY={location.key}")
    note(
        "Deploy with: --parameter-overrides "
        f"{shlex.quote(f'BucketName={location.bucket}')} {shlex.quote(f'ObjectKey={location.key}')}",
        quiet,
    )
