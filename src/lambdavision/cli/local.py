"""Commands: `local invoke` (and `local start-api`, from cli/start_api.py) — SAM CLI's local loop without Docker."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from lambdavision.cfn import (
    AppTemplate,
    FunctionSpec,
    TemplateError,
    find_default_template,
    load_app,
    parse_parameter_overrides,
)
from lambdavision.cli.common import cpu_share_option
from lambdavision.core.errors import LambdaVisionError
from lambdavision.local.env_file import apply_env_file, load_env_file, unmatched_sections

if TYPE_CHECKING:
    from lambdavision.local.built import LambdaLayout

RUNTIME_NOTE = (
    "The function runs as Lambda runs it, without Docker: its built package (`lambdavision build`'s zip, "
    "rebuilt when its inputs change) extracted, in AWS's runtime client (awslambdaric) on the CPython its "
    "Runtime names (python3.12: a CPython 3.12 from PATH or pyenv), isolated from this venv. Where this "
    "host cannot run the package as built (macOS, another architecture), its host twin runs instead, and "
    "the output says so. --use-venv runs the code folder on this venv's Python instead: faster to "
    "iterate, NOT what Lambda runs."
)
USE_VENV_HELP = "Run the code folder on this venv's Python (the fast loop): NOT what Lambda runs."


@click.group(epilog=RUNTIME_NOTE)
def local() -> None:
    """Run the template's functions on this machine, as `sam local` does, without Docker."""


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so `with FunctionPool(...)` closes every environment."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread (e.g. CliRunner in a thread): nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def read_app(template: str | None, parameter_overrides: tuple[str, ...]) -> AppTemplate:
    path = Path(template) if template else find_default_template(Path.cwd())
    return load_app(path, parse_parameter_overrides(parameter_overrides))


def choose_function(app: AppTemplate, function_id: str | None) -> FunctionSpec:
    if function_id is None:
        if len(app.functions) == 1:
            return next(iter(app.functions.values()))
        if not app.functions:
            raise TemplateError(f"{app.path} defines no Lambda function")
        raise click.UsageError(f"{app.path} has several functions; name one: {', '.join(sorted(app.functions))}")
    if function_id not in app.functions:
        known = ", ".join(sorted(app.functions)) or "none"
        raise click.UsageError(f"no function {function_id!r} in {app.path} (it has: {known})")
    return app.functions[function_id]


def read_event(source: str | None) -> Any:
    """The event: a file, "-" for stdin, or {} when no -e was given."""
    if source is None:
        return {}
    name = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise LambdaVisionError(f"no such event file: {source}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise LambdaVisionError(f"cannot read event {name}: {exc}") from exc
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise LambdaVisionError(f"event {name} is not valid JSON: {exc}") from exc


def layout_for(app: AppTemplate, spec: FunctionSpec, use_venv: bool) -> tuple[LambdaLayout | None, tuple[str, ...]]:
    """The built package's layout (None with --use-venv), and the lines that say what runs (the
    function's pool prints them when it starts its first environment)."""
    from lambdavision.local.built import prepare, venv_description

    if use_venv:
        return None, (venv_description(spec, sys.executable),)
    from lambdavision.aws.package import PackageError

    try:
        layout = prepare(app.path, spec, os.environ, lambda message: click.echo(message, err=True))
    except PackageError as exc:
        raise PackageError(
            f"{exc.message} (to run the code folder on this venv's Python instead, not what Lambda runs: --use-venv)"
        ) from exc
    return layout, layout.description


def split_function_and_overrides(words: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """`--parameter-overrides A=1 B=2` (SAM's unquoted form): words with "=" are overrides."""
    overrides = tuple(word for word in words if "=" in word)
    names = [word for word in words if "=" not in word]
    if len(names) > 1:
        raise click.UsageError(f"one function at a time, got: {' '.join(names)}")
    return (names[0] if names else None), overrides


@local.command("invoke", epilog=RUNTIME_NOTE)
@click.argument("words", nargs=-1, metavar="[FUNCTION]")
@click.option("-e", "--event", "event", metavar="EVENT", help="Event JSON file; '-' reads stdin. Default: {}.")
@click.option(
    "-n", "--env-vars", "env_vars", metavar="ENV", help='env.json: {"Function": {"VAR": "value"}, "Parameters": {...}}.'
)
@click.option(
    "-t", "--template", "--template-file", "template", metavar="TEMPLATE", help="Default: template.yaml here."
)
@click.option(
    "--parameter-overrides",
    multiple=True,
    metavar="K=V ...",
    help="Template parameters: K=V words, 'K=V K2=V2', or ParameterKey=K,ParameterValue=V.",
)
@click.option("--use-venv", is_flag=True, help=USE_VENV_HELP)
@cpu_share_option
def invoke(
    words: tuple[str, ...],
    event: str | None,
    env_vars: str | None,
    template: str | None,
    parameter_overrides: tuple[str, ...],
    use_venv: bool,
    cpu_share: bool,
) -> None:
    """Invoke FUNCTION once with an event; print its result on stdout.

    Logs and Lambda's REPORT line go to stderr; the exit status is 1 when the function failed.
    Variables in env.json are set even if the template does not declare them, and this shell's
    AWS credentials, region and AWS_ENDPOINT_URL pass through to the function.
    """
    from lambdavision.local.cpu_quota import CpuLimiter
    from lambdavision.local.pool import FunctionPool

    function_id, extra_overrides = split_function_and_overrides(words)
    app = read_app(template, parameter_overrides + extra_overrides)
    spec = choose_function(app, function_id)
    if env_vars:
        env_file = load_env_file(Path(env_vars))
        for warning in unmatched_sections(env_file, app.functions, env_vars):
            click.echo(f"Warning: {warning}", err=True)
        spec = apply_env_file(spec, env_file)
    payload = read_event(event)
    if spec.unavailable_reason:
        raise LambdaVisionError(f"function {spec.logical_id} cannot run locally: {spec.unavailable_reason}")
    layout, description = layout_for(app, spec, use_venv)
    limiter = CpuLimiter(enabled=cpu_share, warn=lambda message: click.echo(message, err=True))
    try:
        with (
            sigterm_as_exit(),
            FunctionPool(spec, concurrency=1, layout=layout, description=description, cpu_limiter=limiter) as pool,
        ):
            invocation = pool.invoke(payload)
    finally:
        limiter.close()
    sys.stdout.buffer.write(invocation.payload + b"\n")
    sys.stdout.flush()
    if invocation.error_type is not None:
        click.echo(
            f"Error: {spec.logical_id} failed: {failure_summary(invocation.payload, invocation.error_type)}", err=True
        )
        sys.exit(1)


def failure_summary(payload: bytes, error_type: str) -> str:
    """`Type: message` of a failed invocation, on one line (the payload has the stack trace)."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        document = None
    if isinstance(document, dict) and document.get("errorMessage"):
        kind = document.get("errorType") or error_type
        return " ".join(f"{kind}: {document['errorMessage']}".split())
    return error_type


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    from lambdavision.cli.start_api import start_api

    local.add_command(start_api)
    cli.add_command(local)
