"""Command: `init [DIR]` — write the application folder (template, events, env, function code)."""

from __future__ import annotations

from pathlib import Path

import click

from lambdavision.appdir import DEFAULT_IMAGE_URL, AppOptions, app_files, write_app_dir
from lambdavision.aws.template import ARCHITECTURES, DEFAULT_RUNTIME, SUPPORTED_RUNTIMES, TemplateOptions


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--bucket", default="my-bucket", show_default=True, help="S3 bucket of the model (BucketName).")
@click.option(
    "--key",
    default="fastai-models/lesson1/model.tar.gz",
    show_default=True,
    help="S3 key of the model artifact (ObjectKey).",
)
@click.option("--image-url", default=DEFAULT_IMAGE_URL, show_default=True, help="Image URL in event.json.")
@click.option(
    "--runtime",
    default=DEFAULT_RUNTIME,
    show_default=True,
    help=f"Lambda runtime: {', '.join(SUPPORTED_RUNTIMES)} (python3.11's glibc 2.26 cannot load onnxruntime).",
)
@click.option(
    "--arch",
    type=click.Choice(ARCHITECTURES),
    default="x86_64",
    show_default=True,
    help="arm64 is ~20% cheaper per GB-second.",
)
@click.option("--memory", type=click.IntRange(128, 10240), default=2048, show_default=True, help="MemorySize in MB.")
@click.option(
    "--timeout",
    type=click.IntRange(1, 900),
    default=29,
    show_default=True,
    help="Seconds (API Gateway REST gives up after 29).",
)
@click.option("--snapstart", is_flag=True, help="SnapStart: published version + alias `live`; the API calls the alias.")
@click.option("--log-retention", type=int, default=14, show_default=True, help="Days CloudWatch keeps the logs.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(
    directory: Path,
    bucket: str,
    key: str,
    image_url: str,
    runtime: str,
    arch: str,
    memory: int,
    timeout: int,
    snapstart: bool,
    log_retention: int,
    force: bool,
) -> None:
    """Write an application folder into DIRECTORY (default: here).

    template.yaml (plain CloudFormation, the guide's names), event.json, env.json, README.md and
    function/app.py — ready for `local invoke`, `local start-api`, `package` and `deploy`.
    """
    options = AppOptions(
        template=TemplateOptions(
            runtime=runtime,
            architecture=arch,
            memory=memory,
            timeout=timeout,
            snapstart=snapstart,
            log_retention_days=log_retention,
            bucket_name=bucket,
            object_key=key,
        ),
        image_url=image_url,
    )
    written = write_app_dir(directory, app_files(options), force=force)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"Next: see {directory / 'README.md'} (upload, local invoke, package, deploy).")


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(init)
