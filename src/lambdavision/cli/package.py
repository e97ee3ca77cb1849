"""`lambdavision package`: build each function's zip, upload it, write the packaged template.

    lambdavision package --output-template-file packaged.yaml --s3-bucket my-bucket

Messages and the size table go to stderr when the packaged template goes to stdout (no
--output-template-file, as `sam package` does), to stdout otherwise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from lambdavision.builder import zipbuild

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from lambdavision.builder.zips import BuildResult, BuiltZip


@click.command("package")
@click.option(
    "-t", "--template-file", "--template", "template_file", default="template.yaml", show_default=True,
    type=click.Path(dir_okay=False, path_type=Path), help="The template whose functions to package.",
)  # fmt: skip
@click.option(
    "--output-template-file", type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the packaged template (default: stdout).",
)  # fmt: skip
@click.option("--s3-bucket", help="Bucket to upload the zips to (required unless --no-upload).")
@click.option("--s3-prefix", default="", help="Key prefix for the uploaded zips.")
@click.option("--include-boto3", is_flag=True, help="Ship your own boto3 instead of the runtime's.")
@click.option("--layer", is_flag=True, help="Put the dependencies in a Lambda layer; the function zip keeps the code.")
@click.option(
    "--bundle-model", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Put this model artifact in the zip (the handler prefers it; cold start reads no S3).",
)  # fmt: skip
@click.option(
    "--upload/--no-upload", default=True, show_default=True,
    help="--no-upload only builds the zips; the template then names them by local path.",
)  # fmt: skip
@click.option(
    "--build-dir", "--output-dir", "output_dir", type=click.Path(file_okay=False, path_type=Path),
    help="The build folder (as `lambdavision build`): zips are built there, or reused when their inputs "
    "are unchanged.  [default: .lambdavision/build beside the template]",
)  # fmt: skip
@click.option("--refresh", is_flag=True, help="Download wheels and stage dependencies afresh, ignoring the cache.")
@click.option("--region", help="AWS region (default: AWS_REGION / your AWS config).")
@click.option("--profile", help="AWS profile (default: AWS_PROFILE).")
@click.option("--endpoint-url", help="Another S3 endpoint (default: AWS_ENDPOINT_URL).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--max-unzipped-bytes", type=click.IntRange(min=1), default=zipbuild.UNZIPPED_LIMIT, hidden=True)
def package_command(
    template_file: Path,
    output_template_file: Path | None,
    s3_bucket: str | None,
    s3_prefix: str,
    include_boto3: bool,
    layer: bool,
    bundle_model: Path | None,
    upload: bool,
    output_dir: Path | None,
    refresh: bool,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    quiet: bool,
    max_unzipped_bytes: int,
) -> None:
    """Build each function's deployment zip for its runtime and architecture, and upload it.

    The zip holds the function's folder, lambdavision's runtime part and binary wheels of
    onnxruntime, numpy and Pillow for Lambda's platform, pruned and compiled to .pyc. Wheels are
    cached (~/.cache/lambdavision, or LAMBDAVISION_CACHE_DIR), so a second run downloads nothing.
    """
    # Imported here: `lambdavision --help` must not pay for boto3 and the builders.
    from lambdavision.aws.package import check_bucket, packaged_template, upload_zips
    from lambdavision.aws.session import AwsOptions, AwsSession
    from lambdavision.builder.folder import build_functions, default_build_dir
    from lambdavision.builder.imports_check import built_problems
    from lambdavision.builder.wheels import default_cache_dir
    from lambdavision.builder.zips import BuildOptions
    from lambdavision.cfn import dump_template, is_sam, plain_template, read_template

    if upload and not s3_bucket:
        raise click.UsageError("--s3-bucket is required to upload (or pass --no-upload to only build the zips)")
    if not template_file.is_file():
        raise click.UsageError(
            f"no template at {template_file} (pass -t/--template-file; `lambdavision init` makes one)"
        )
    report_stream = sys.stdout if output_template_file else sys.stderr

    def log(message: str) -> None:
        if not quiet:
            click.echo(message, file=report_stream)

    template = read_template(template_file)
    session = AwsSession(AwsOptions(region=region, profile=profile, endpoint_url=endpoint_url))
    s3: S3Client | None = None
    if upload:
        assert s3_bucket is not None
        # Before the build: a missing bucket or bad credentials should not cost a build first.
        s3 = session.s3()
        check_bucket(s3, s3_bucket)
    options = BuildOptions(
        cache_dir=default_cache_dir(os.environ),
        output_dir=output_dir or default_build_dir(template_file.parent),
        environ=dict(os.environ),
        include_boto3=include_boto3,
        layer=layer,
        bundle_model=bundle_model,
        unzipped_limit=max_unzipped_bytes,
        refresh=refresh,
    )
    # The one build path (`lambdavision build`'s): what is uploaded is the build folder's zip.
    result = build_functions(template, template_file.parent, options, log)
    if s3 is not None and s3_bucket is not None:
        upload_zips(result.zips, s3, s3_bucket, s3_prefix, log, _progress_factory(report_stream, quiet))
    out_dir = output_template_file.parent if output_template_file else Path.cwd()
    packaged = packaged_template(template, result, s3_bucket if upload else None, out_dir)
    if is_sam(packaged):
        # AWS's own transform, here: what `deploy` sends is then plain CloudFormation (moto has no transform).
        packaged = plain_template(
            packaged, region=session.session.region_name or "us-east-1", source=str(template_file)
        )
        log(f"transformed the SAM template {template_file} to plain CloudFormation (aws-sam-translator)")
    if not quiet:
        print_size_table(result, max_unzipped_bytes, report_stream)
        for warning in [*result.warnings, *built_problems(result)]:
            click.echo(f"warning: {warning}", file=report_stream)
    text = dump_template(packaged)
    if output_template_file:
        output_template_file.parent.mkdir(parents=True, exist_ok=True)
        output_template_file.write_text(text, encoding="utf-8")
        log(f"wrote {output_template_file}")
        if upload:
            log(
                f"deploy it with: lambdavision deploy --template-file {output_template_file} "
                "--stack-name STACK --capabilities CAPABILITY_IAM"
            )
    else:
        click.echo(text, nl=False)


def _progress_factory(stream: IO[str], quiet: bool) -> Callable[[BuiltZip], Callable[[int], None] | None]:
    """Upload progress in bytes, on a terminal only."""

    def factory(built: BuiltZip) -> Callable[[int], None] | None:
        if quiet or not stream.isatty():
            return None
        from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

        progress = Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), transient=True)
        task = progress.add_task(f"uploading {built.path.name}", total=built.sizes.zipped)
        progress.start()
        sent = 0

        def advance(count: int) -> None:
            nonlocal sent
            sent += count
            progress.update(task, advance=count)
            if sent >= built.sizes.zipped:
                progress.stop()

        return advance

    return factory


def size_rows(result: BuildResult, unzipped_limit: int) -> list[tuple[str, str, str, str, str]]:
    """(part, zipped, unzipped, share of the unzipped limit, sha256) per zip, layers first."""
    rows = []
    for built in result.zips:
        share = f"{100 * built.sizes.unzipped / unzipped_limit:.0f} %"
        rows.append(
            (
                f"{built.logical_id} ({built.kind})",
                zipbuild.human(built.sizes.zipped),
                zipbuild.human(built.sizes.unzipped),
                share,
                built.sha256[:12],
            )
        )
    return rows


def print_size_table(result: BuildResult, unzipped_limit: int, stream: IO[str]) -> None:
    header = ("package", "zipped", "unzipped", "of limit", "sha256")
    rows = size_rows(result, unzipped_limit)
    limits = (
        f"Lambda's limits: {zipbuild.human(zipbuild.ZIPPED_DIRECT_UPLOAD_LIMIT)} zipped for a direct upload, "
        f"{zipbuild.human(unzipped_limit)} unzipped (function and layers together)"
    )
    totals = [
        f"{p.spec.logical_id}: {zipbuild.human(p.unzipped_total)} unzipped with its layers"
        for p in result.functions
        if p.layer is not None
    ]
    if stream.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*header, title="deployment packages", caption=limits)
        for row in rows:
            table.add_row(*row)
        console = Console(file=stream)
        console.print(table)
        for line in totals:
            console.print(line, highlight=False, markup=False)
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=stream)
    for line in [limits, *totals]:
        click.echo(line, file=stream)


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(package_command)
