"""Commands: `deploy`, `endpoint`, `delete` — a stack from the packaged template, its URL, its end.

Stack events go to stderr as they come (on a terminal in colour); the stack's outputs to stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.table import Table

from lambdavision.aws import deploy as stacks
from lambdavision.aws.deploy_template import (
    deployable_template,
    effective_parameters,
    read_template_file,
    template_body,
)
from lambdavision.aws.session import aws_errors
from lambdavision.aws.snapstart import has_version, stamp_version
from lambdavision.aws.template_edits import DeployOverrides
from lambdavision.aws.template_names import ARCHITECTURES
from lambdavision.cfn import parse_parameter_overrides
from lambdavision.cli import deploy_checks
from lambdavision.cli.aws_common import aws_options, note, session_for, session_region
from lambdavision.cli.common import GreedyOptionsCommand

_STATUS_STYLE = {"COMPLETE": "green", "IN_PROGRESS": "yellow", "FAILED": "red"}


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
    body, template = read_template_file(template_file)
    changes = DeployOverrides(memory=memory, architecture=arch, snapstart=snapstart, cors_origin=cors_origin)
    session = session_for(region, profile, endpoint_url)
    edited, notes = deployable_template(
        template, changes, overrides, region=session_region(session), source=str(template_file)
    )
    for message in notes:
        note(message, quiet)
    cfn = session.cloudformation()
    with aws_errors(stack=stack_name):
        current = stacks.describe_stack(cfn, stack_name)
        parameters = effective_parameters(edited, current, overrides)
        if no_verify:
            note(deploy_checks.skip_note(), quiet)
        else:
            deploy_checks.verify_before_deploy(session, edited, parameters, capabilities, template_file, quiet)
        if confirm_changeset:
            deploy_checks.confirm(stack_name, current is not None, template_file)
        note(f"Deploying {template_file} to stack {stack_name}…", quiet)
        if has_version(edited):
            stamp_version(edited, parameters)
        if edited != template:
            body, template = template_body(edited, str(template_file)), edited
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
        note(f"No changes to deploy: stack {stack_name} is up to date ({result.status}).", quiet)
    else:
        note(f"Stack {stack_name}: {result.status}", quiet)
    _print_outputs(result.outputs)


@click.command("endpoint")
@click.option("--stack-name", required=True, help="The deployed stack.")
@click.option("--output-key", default="PyTorchApi", show_default=True, help="Which output to print.")
@aws_options
def endpoint(
    stack_name: str, output_key: str, region: str | None, profile: str | None, endpoint_url: str | None, quiet: bool
) -> None:
    """Print the stack's API URL alone (for scripts: `curl "$(lambdavision endpoint --stack-name S)"`)."""
    cfn = session_for(region, profile, endpoint_url).cloudformation()
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
    cfn = session_for(region, profile, endpoint_url).cloudformation()
    with aws_errors(stack=stack_name):
        deleted = stacks.delete_stack(cfn, stack_name, on_event=_EventPrinter(not quiet), poll_seconds=poll_interval)
    if deleted:
        note(f"Deleted stack {stack_name}.", quiet)
    else:
        note(f"Stack {stack_name} does not exist: nothing to delete.", quiet)


__all__ = ["delete", "deploy", "endpoint"]
