"""Commands: `upload`, `deploy`, `endpoint`, `logs`, `delete` — AWS through one boto3 session.

Each parses its flags, makes one call into lambdavision.aws, and prints. Progress (upload bytes,
stack events) goes to stderr on a terminal only; results go to stdout; `--quiet` leaves only
results and errors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich import box
from rich.console import Console
from rich.table import Table

from lambdavision.aws import deploy as stacks
from lambdavision.aws.deploy_template import deployable_template
from lambdavision.aws.logs import (
    LogEvent,
    ReadableLog,
    fetch_events,
    function_log_group,
    parse_time,
    summarise_metrics,
    tail_events,
    to_ms,
)
from lambdavision.aws.session import AwsOptions, AwsSession, aws_errors
from lambdavision.aws.template_edits import DeployOverrides, has_version, stamp_version
from lambdavision.aws.template_names import ARCHITECTURES
from lambdavision.cfn import parse_parameter_overrides
from lambdavision.cli import deploy_checks
from lambdavision.cli.common import GreedyOptionsCommand

F = TypeVar("F", bound=Callable[..., Any])

_STATUS_STYLE = {"COMPLETE": "green", "IN_PROGRESS": "yellow", "FAILED": "red"}


def aws_options(func: F) -> F:
    """--region / --profile / --endpoint-url / --quiet, as every AWS command takes them."""
    for decorator in reversed(
        [
            click.option("--region", default=None, help="AWS region (default: AWS_REGION / your AWS config)."),
            click.option("--profile", default=None, help="AWS profile from ~/.aws/config (default: AWS_PROFILE)."),
            click.option(
                "--endpoint-url",
                default=None,
                help="Send AWS calls to this endpoint (default: AWS_ENDPOINT_URL), e.g. a moto server.",
            ),
            click.option("--quiet", "-q", is_flag=True, help="Print only results and errors."),
        ]
    ):
        func = decorator(func)
    return func


def _session(region: str | None, profile: str | None, endpoint_url: str | None) -> AwsSession:
    return AwsSession(AwsOptions(region=region, profile=profile, endpoint_url=endpoint_url))


def session_region(session: AwsSession) -> str:
    """The command's region (the SAM transform needs one even before any AWS call): us-east-1 if none."""
    return session.session.region_name or "us-east-1"


def _show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _note(message: str, quiet: bool) -> None:
    if not quiet:
        click.echo(message, err=True)


# --- deploy / endpoint / delete -----------------------------------------------------------------


class _EventPrinter:
    """Stack events as aligned lines on stderr as they come: coloured on a terminal, plain lines
    (flushed one by one, for CI logs and pipes) otherwise; nothing with --quiet."""

    def __init__(self, enabled: bool, tty: bool | None = None) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True, highlight=False) if enabled and (tty or sys.stderr.isatty()) else None

    def __call__(self, event: stacks.StackEvent) -> None:
        if not self.enabled:
            return
        when = event.timestamp.astimezone().strftime("%H:%M:%S")
        reason = f"  {event.reason}" if event.reason else ""
        if self.console is None:
            click.echo(f"{when}  {event.status:<22}  {event.resource_type:<32} {event.logical_id}{reason}", err=True)
            return
        style = next((s for k, s in _STATUS_STYLE.items() if event.status.endswith(k)), "")
        self.console.print(
            f"{when}  [{style}]{event.status:<22}[/]  {event.resource_type:<32} {event.logical_id}{reason}",
            soft_wrap=True,
        )


def _print_outputs(outputs: list[stacks.StackOutput]) -> None:
    """Key / Value (/ Description when it fits) — values never wrapped or cut, so they copy whole."""
    if not outputs:
        return
    tty = sys.stdout.isatty()
    key_width = max(len(o.key) for o in outputs)
    value_width = max(len(o.value) for o in outputs)
    full_width = key_width + value_width + max(len(o.description) for o in outputs) + 8
    available = Console().width if tty else full_width
    with_description = full_width <= available
    table = Table(box=box.SIMPLE_HEAD if tty else None, show_edge=False, pad_edge=False)
    for column in ("Key", "Value", "Description") if with_description else ("Key", "Value"):
        table.add_column(column, no_wrap=True, overflow="ignore")
    for output in outputs:
        table.add_row(output.key, output.value, *([output.description] if with_description else []))
    Console(highlight=False, width=max(available, key_width + value_width + 4)).print(table)


class _DeployCommand(GreedyOptionsCommand):
    greedy_options = ("--parameter-overrides", "--capabilities")


@click.command("deploy", cls=_DeployCommand)
@click.option(
    "--template-file",
    "--template",
    "-t",
    "template_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The packaged template (from `package`).  [required unless --guided]",
)
@click.option("--stack-name", help="CloudFormation stack to create or update.  [required unless --guided]")
@click.option(
    "--guided",
    is_flag=True,
    help="Ask for the stack name, region, bucket and parameters, confirm, save them to lambdavision.toml, deploy.",
)
@click.option(
    "--capabilities",
    multiple=True,
    metavar="CAPABILITY...",
    help="e.g. CAPABILITY_IAM (the template creates an IAM role).",
)
@click.option(
    "--parameter-overrides",
    multiple=True,
    metavar="KEY=VALUE...",
    help="Template parameters, e.g. BucketName=my-bucket ObjectKey=models/model.tar.gz (also 'K=V K2=V2' "
    "or ParameterKey=K,ParameterValue=V).",
)
@click.option(
    "--memory",
    type=click.IntRange(128, 10240),
    default=None,
    help="The function's MemorySize in MB for this deploy (1,769 MB = one vCPU).",
)
@click.option(
    "--arch",
    type=click.Choice(ARCHITECTURES),
    default=None,
    help="The architecture to deploy (arm64 is ~20% cheaper per GB-second). It must be the one the "
    "zip was packaged for: otherwise `lambdavision init --arch ...` (or edit Architectures) and package again.",
)
@click.option(
    "--snapstart/--no-snapstart",
    default=None,
    help="SnapStart on (a published version + alias `live`, the API calls the alias, so the model "
    "loads once at snapshot time; python3.12+) or off. Default: as the template says.",
)
@click.option(
    "--cors-origin",
    metavar="ORIGIN",
    default=None,
    help="Let pages on ORIGIN (https://host[:port], or *) call the API: adds OPTIONS preflights and "
    "sets LAMBDAVISION_CORS_ORIGIN.",
)
@click.option(
    "--no-verify",
    is_flag=True,
    help="Skip the checks before deploy (the model exists and can be served, the handler's imports are in "
    "the package, the runtime is not retired, the layers exist, IAM resources have --capabilities).",
)
@click.option(
    "--confirm-changeset/--no-confirm-changeset",
    default=False,
    help="Ask before creating or updating the stack (SAM's flag; the default deploys at once).",
)
@click.option("--poll-interval", type=float, default=2.0, hidden=True)
@aws_options
def deploy(
    template_file: Path | None,
    stack_name: str | None,
    guided: bool,
    capabilities: tuple[str, ...],
    parameter_overrides: tuple[str, ...],
    memory: int | None,
    arch: str | None,
    snapstart: bool | None,
    cors_origin: str | None,
    no_verify: bool,
    confirm_changeset: bool,
    poll_interval: float,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    quiet: bool,
) -> None:
    """Create the stack, or update it in place; wait, then print its outputs.

    First it checks what would fail there (see --no-verify), each problem one line with its fix.

    An update with no changes is reported and exits 0. On failure the failed resources' reasons
    are printed; a stack left in ROLLBACK_COMPLETE is deleted by the next deploy (which says so).
    The template's function code must already be in S3: run `lambdavision package` first.

    --memory, --arch, --snapstart/--no-snapstart and --cors-origin override what `lambdavision
    init` wrote into the template, for this deploy (the file is left as it is). With SnapStart, each
    deploy that changes the code, settings or parameters publishes a new version and moves the alias.
    """
    overrides = parse_parameter_overrides(parameter_overrides)
    if guided:
        from lambdavision.cli.guided import ask_deploy_settings

        settings = ask_deploy_settings(template_file, stack_name, region, overrides, capabilities, Path.cwd())
        if settings is None:
            return
        template_file, stack_name, region = settings.template_file, settings.stack_name, settings.region
        overrides, capabilities = settings.overrides, settings.capabilities
    if template_file is None or stack_name is None:
        missing = "--template-file" if template_file is None else "--stack-name"
        raise click.UsageError(f"Missing option '{missing}' (or answer questions with --guided)")
    body, template = stacks.read_template_file(template_file)
    changes = DeployOverrides(memory=memory, architecture=arch, snapstart=snapstart, cors_origin=cors_origin)
    session = _session(region, profile, endpoint_url)
    edited, notes = deployable_template(
        template, changes, overrides, region=session_region(session), source=str(template_file)
    )
    for note in notes:
        _note(note, quiet)
    cfn = session.cloudformation()
    with aws_errors(stack=stack_name):
        current = stacks.describe_stack(cfn, stack_name)
        parameters = stacks.effective_parameters(edited, current, overrides)
        if no_verify:
            _note(deploy_checks.skip_note(), quiet)
        else:
            deploy_checks.verify_before_deploy(session, edited, parameters, capabilities, template_file, quiet)
        if confirm_changeset:
            deploy_checks.confirm(stack_name, current is not None, template_file)
        _note(f"Deploying {template_file} to stack {stack_name}…", quiet)
        if has_version(edited):
            stamp_version(edited, parameters)
        if edited != template:
            body, template = stacks.template_body(edited, str(template_file)), edited
        result = stacks.deploy_stack(
            cfn,
            stack_name=stack_name,
            template_body=body,
            template=template,
            overrides=overrides,
            capabilities=capabilities,
            on_event=_EventPrinter(not quiet),
            on_notice=lambda message: click.echo(message, err=True),
            poll_seconds=poll_interval,
        )
    if result.action == "none":
        _note(f"No changes to deploy: stack {stack_name} is up to date ({result.status}).", quiet)
    else:
        _note(f"Stack {stack_name}: {result.status}", quiet)
    _print_outputs(result.outputs)


@click.command("endpoint")
@click.option("--stack-name", required=True, help="The deployed stack.")
@click.option("--output-key", default="PyTorchApi", show_default=True, help="Which output to print.")
@aws_options
def endpoint(
    stack_name: str, output_key: str, region: str | None, profile: str | None, endpoint_url: str | None, quiet: bool
) -> None:
    """Print the stack's API URL alone (for scripts: `curl "$(lambdavision endpoint --stack-name S)"`)."""
    cfn = _session(region, profile, endpoint_url).cloudformation()
    with aws_errors(stack=stack_name):
        click.echo(stacks.stack_output(cfn, stack_name, output_key))


@click.command("delete")
@click.option("--stack-name", required=True, help="The stack to delete.")
@click.option("--poll-interval", type=float, default=2.0, hidden=True)
@aws_options
def delete(
    stack_name: str,
    poll_interval: float,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    quiet: bool,
) -> None:
    """Delete the stack and wait until it is gone (the model in S3 is left alone)."""
    cfn = _session(region, profile, endpoint_url).cloudformation()
    with aws_errors(stack=stack_name):
        deleted = stacks.delete_stack(cfn, stack_name, on_event=_EventPrinter(not quiet), poll_seconds=poll_interval)
    if deleted:
        _note(f"Deleted stack {stack_name}.", quiet)
    else:
        _note(f"Stack {stack_name} does not exist: nothing to delete.", quiet)


# --- logs ---------------------------------------------------------------------------------------


@click.command("logs")
@click.option(
    "--name",
    "-n",
    required=True,
    help="The function's logical id in the stack (e.g. PyTorchFunction); without --stack-name, its physical name.",
)
@click.option("--stack-name", default=None, help="The stack the function belongs to.")
@click.option(
    "--filter", "pattern", default=None, help="CloudWatch Logs filter pattern, e.g. error or '\"Task timed out\"'."
)
@click.option("--start-time", "-s", default="10m ago", show_default=True, help="'10m ago', '2h ago' or ISO 8601.")
@click.option("--end-time", "-e", default=None, help="'5m ago' or ISO 8601 (default: now).")
@click.option("--tail", "-t", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option(
    "--metrics",
    is_flag=True,
    help="Summarise the window instead: requests, errors, cold starts, p50/p95/p99 latency (from the EMF records).",
)
@click.option("--raw", is_flag=True, help="Print messages as logged (JSON lines unformatted).")
@click.option("--tail-for", type=float, default=None, hidden=True)
@click.option("--poll-interval", type=float, default=1.0, hidden=True)
@aws_options
def logs(
    name: str,
    stack_name: str | None,
    pattern: str | None,
    start_time: str,
    end_time: str | None,
    tail: bool,
    metrics: bool,
    raw: bool,
    tail_for: float | None,
    poll_interval: float,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    quiet: bool,
) -> None:
    """Print a function's CloudWatch logs (`sam logs` style: stream, time, message).

    lambdavision's handler logs one JSON line and one EMF metrics record per request; they are
    shown as one line per request: request id, status, top class and confidence (or the error),
    total milliseconds, and `cold` for a cold start. --raw prints them as logged; --metrics
    summarises the window instead.
    """
    if tail and end_time:
        raise click.UsageError("--end-time cannot be combined with --tail")
    if metrics and (tail or raw):
        raise click.UsageError("--metrics summarises a time window: it cannot be combined with --tail or --raw")
    now = datetime.now().astimezone()
    start_ms = to_ms(parse_time(start_time, now=now))
    end_ms = to_ms(parse_time(end_time, now=now)) if end_time else None
    session = _session(region, profile, endpoint_url)
    readable = ReadableLog()

    def show(event: LogEvent) -> None:
        line = event.format() if raw else readable.format(event)
        if line is not None:
            click.echo(line)

    with aws_errors(stack=stack_name):
        group = function_log_group(session.cloudformation(), stack_name, name) if stack_name else f"/aws/lambda/{name}"
        client = session.logs()
        if metrics:
            events = fetch_events(client, group, pattern=pattern, start_ms=start_ms, end_ms=end_ms)
            for line in summarise_metrics(events).lines():
                click.echo(line)
            return
        if not tail:
            for event in fetch_events(client, group, pattern=pattern, start_ms=start_ms, end_ms=end_ms):
                show(event)
            return
        _note(f"Tailing {group} (Ctrl-C to stop)…", quiet or not sys.stderr.isatty())
        try:
            tail_events(
                client,
                group,
                pattern=pattern,
                start_ms=start_ms,
                on_event=show,
                poll_seconds=poll_interval,
                stop_after_seconds=tail_for,
            )
        except KeyboardInterrupt:
            return  # Ctrl-C is how a tail ends


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    from lambdavision.cli.upload import upload

    for command in (upload, deploy, endpoint, logs, delete):
        cli.add_command(command)
