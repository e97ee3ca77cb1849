"""Command: `init [DIR]` — write the application folder (template, events, env, function code)."""

from __future__ import annotations

from pathlib import Path

import click

from lambdavision.appdir import DEFAULT_IMAGE_URL, AppOptions, app_files, write_app_dir
from lambdavision.aws.template import TemplateOptions
from lambdavision.aws.template_names import ARCHITECTURES, AUTH_MODES, DEFAULT_RUNTIME, SUPPORTED_RUNTIMES

_DEFAULTS = TemplateOptions()


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--bucket",
    default=None,
    metavar="BUCKET",
    help="S3 bucket of the model (BucketName), required: where `upload` puts it and the function reads it "
    "(create it first: `aws s3 mb s3://BUCKET`).",
)
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
@click.option(
    "--page/--no-page",
    default=True,
    show_default=True,
    help="Serve the upload page at GET / (--no-page leaves the route out and sets LAMBDAVISION_PAGE=0).",
)
@click.option(
    "--cors-origin",
    metavar="ORIGIN",
    default=None,
    help="Let pages on ORIGIN (https://host[:port], or *) call the API: OPTIONS preflights + CORS headers.",
)
@click.option(
    "--auth",
    type=click.Choice(AUTH_MODES),
    default="none",
    show_default=True,
    help="iam: callers sign requests (SigV4, execute-api:Invoke); key: an API key (x-api-key header) "
    "with a usage plan; none: public (a warning says so).",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help=f"--auth key: steady requests per second [default: {_DEFAULTS.rate_limit:g}].",
)
@click.option(
    "--burst-limit",
    type=click.IntRange(min=1),
    default=None,
    help=f"--auth key: burst of requests [default: {_DEFAULTS.burst_limit}].",
)
@click.option(
    "--daily-quota",
    type=click.IntRange(min=1),
    default=None,
    help=f"--auth key: requests per day [default: {_DEFAULTS.daily_quota:,}].",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(
    directory: Path,
    bucket: str | None,
    key: str,
    image_url: str,
    runtime: str,
    arch: str,
    memory: int,
    timeout: int,
    snapstart: bool,
    log_retention: int,
    page: bool,
    cors_origin: str | None,
    auth: str,
    rate_limit: float | None,
    burst_limit: int | None,
    daily_quota: int | None,
    force: bool,
) -> None:
    """Write an application folder into DIRECTORY (default: here).

    template.yaml (plain CloudFormation, the guide's names), event.json, env.json, README.md and
    function/app.py — ready for `local invoke`, `local start-api`, `package` and `deploy`.
    The API serves POST /invocations and, unless --no-page, the upload page at GET /.
    """
    if bucket is None:
        # No placeholder: a made-up bucket in env.json and the template fails every later command.
        raise click.UsageError(
            "init needs --bucket BUCKET: the S3 bucket that holds (or will hold) the model; "
            "create it with `aws s3 mb s3://BUCKET` if it does not exist yet"
        )
    plan_flags = {"--rate-limit": rate_limit, "--burst-limit": burst_limit, "--daily-quota": daily_quota}
    given = [flag for flag, value in plan_flags.items() if value is not None]
    if given and auth != "key":
        raise click.UsageError(f"{', '.join(given)} set the API key's usage plan: use with --auth key")
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
            page=page,
            cors_origin=cors_origin,
            auth=auth,
            rate_limit=_DEFAULTS.rate_limit if rate_limit is None else rate_limit,
            burst_limit=_DEFAULTS.burst_limit if burst_limit is None else burst_limit,
            daily_quota=_DEFAULTS.daily_quota if daily_quota is None else daily_quota,
        ),
        image_url=image_url,
    )
    written = write_app_dir(directory, app_files(options), force=force)
    for path in written:
        click.echo(f"wrote {path}")
    for line in auth_notes(options.template, options.stack_name):
        click.echo(line, err=True)
    click.echo(f"Next: see {directory / 'README.md'} (upload, local invoke, package, deploy).")


def auth_notes(template: TemplateOptions, stack_name: str) -> list[str]:
    """What the chosen --auth means for callers (a warning when the API is public)."""
    if template.auth == "none":
        return [
            "Warning: the API is public (--auth none): anyone who finds its URL can call the function "
            "and run up its bill. Use --auth iam or --auth key to require authorisation (see SECURITY.md)."
        ]
    notes = []
    if template.auth == "iam":
        notes.append(
            "Auth: callers sign requests with SigV4 and need execute-api:Invoke on the API (CORS preflights stay open)."
        )
    else:
        notes.append(
            "Auth: callers send the API key in the x-api-key header; after deploy, its value is: aws apigateway "
            f"get-api-key --include-value --query value --output text --api-key "
            f'"$(lambdavision endpoint --stack-name {stack_name} --output-key PyTorchApiKeyId)"'
        )
    if template.page:
        notes.append(
            "Note: GET / (the page) needs the same authorisation, which a browser opening the URL cannot "
            "send: the page then works through `lambdavision local start-api` only (or use --no-page)."
        )
    return notes


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(init)
