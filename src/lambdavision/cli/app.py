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
    "--open-page",
    is_flag=True,
    help="With --auth key: serve the page at GET / without the key (it asks for the key and sends it as "
    "x-api-key); every other method still needs it.",
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
@click.option(
    "--from-sam",
    "from_sam",
    metavar="GUIDE_DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Turn this SAM app folder (the guide's) into a lambdavision app in DIRECTORY: lambdavision's handler, "
    "a supported runtime, no dead layer; logical ids and outputs kept. Takes --runtime, --bucket, --key, --force.",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.pass_context
def init(
    ctx: click.Context,
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
    open_page: bool,
    rate_limit: float | None,
    burst_limit: int | None,
    daily_quota: int | None,
    from_sam: Path | None,
    force: bool,
) -> None:
    """Write an application folder into DIRECTORY (default: here).

    template.yaml (plain CloudFormation, the guide's names), event.json, env.json, README.md and
    function/app.py — ready for `local invoke`, `local start-api`, `package` and `deploy`.
    The API serves POST /invocations and, unless --no-page, the upload page at GET /.
    """
    if bucket is None:
        # No placeholder (ours, or the guide's `somebucket`): a made-up bucket in env.json and the
        # template fails every later command.
        raise click.UsageError(
            "init needs --bucket BUCKET: the S3 bucket that holds (or will hold) the model; "
            "create it with `aws s3 mb s3://BUCKET` if it does not exist yet"
        )
    if from_sam is not None:
        init_from_sam(ctx, from_sam, directory, runtime=runtime, bucket=bucket, key=key, force=force)
        return
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
            open_page=open_page,
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


def init_from_sam(
    ctx: click.Context, guide_dir: Path, directory: Path, *, runtime: str, bucket: str, key: str, force: bool
) -> None:
    """`init --from-sam GUIDE_DIR DIRECTORY`: convert, write, and print every change made.

    --bucket and --key (its default too: where the README's `upload` puts the model) become the
    template's BucketName / ObjectKey defaults and env.json's, as `init` writes them: the guide's
    `somebucket` / `somekey` would fail the first `local invoke`.
    """
    from click.core import ParameterSource

    from lambdavision.appdir_sam import convert_sam_app, write_conversion

    given = {p for p in ctx.params if ctx.get_parameter_source(p) == ParameterSource.COMMANDLINE}
    ignored = sorted(given - {"directory", "from_sam", "runtime", "bucket", "key", "force"})
    if ignored:
        flags = ", ".join("--" + name.replace("_", "-") for name in ignored)
        raise click.UsageError(f"{flags} cannot be combined with --from-sam (edit the template, or init without it)")

    conversion = convert_sam_app(guide_dir, runtime=runtime, bucket=bucket, key=key)
    written = write_conversion(directory, conversion, force=force)
    click.echo(f"Converted the SAM app in {guide_dir} into a lambdavision app in {directory}:")
    for change in conversion.changes:
        click.echo(f"  - {change}")
    click.echo(f"{len(written)} files written; logical ids, outputs, events and the other files kept as they were.")
    click.echo(
        f"Next: point the URL in {directory / 'event.json'} at an image (as the guide says), then cd {directory} && "
        "lambdavision local invoke -n env.json -e event.json; package and deploy as the guide does."
    )


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
    if template.open_page:
        notes.append("Note: the page at GET / is open; it asks for the API key and sends it with each request.")
    elif template.page and template.auth == "key":
        notes.append(
            "Note: GET / (the page) needs the same authorisation, which a browser opening the URL cannot send "
            "(nor through `local start-api`, which checks that a key is sent): use --open-page (the page then "
            "asks for the key) or --no-page."
        )
    elif template.page:
        notes.append(
            "Note: GET / (the page) needs the same authorisation, which a browser opening the URL cannot "
            "send: the page then works through `lambdavision local start-api` only (or use --no-page)."
        )
    return notes


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(init)
