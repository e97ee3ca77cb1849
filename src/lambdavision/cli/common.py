"""What every command shares: one-line errors and exit codes, `--debug`, and the options several commands take."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

import click

from lambdavision.core.errors import LambdaVisionError

DEBUG_KEY = "lambdavision.debug"
DEBUG_ENV = "LAMBDAVISION_DEBUG"
# botocore logs each request and response at DEBUG (the wire log); urllib3 the connections.
DEBUG_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "lambdavision")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line on stderr and exit non-zero."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def known_error_message(exc: BaseException) -> str | None:
    """The one-line message for an error the user can act on, or None for a bug."""
    if isinstance(exc, LambdaVisionError):
        return exc.message
    # botocore is imported lazily: `predict` on a local file must not pay for it.
    botocore_exceptions = sys.modules.get("botocore.exceptions")
    if botocore_exceptions is not None:
        if isinstance(exc, botocore_exceptions.NoCredentialsError):
            return "no AWS credentials found: run `aws configure`, set AWS_PROFILE, or export AWS_ACCESS_KEY_ID"
        if isinstance(exc, botocore_exceptions.ClientError):
            err = exc.response.get("Error", {})
            return f"AWS said {err.get('Code', 'error')}: {err.get('Message', str(exc))}"
        if isinstance(exc, botocore_exceptions.EndpointConnectionError):
            return f"cannot reach AWS: {exc}"
        if isinstance(exc, botocore_exceptions.BotoCoreError):
            return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {exc.filename}"
    if isinstance(exc, (IsADirectoryError, PermissionError)):
        return str(exc)
    return None


def enable_debug() -> None:
    """The AWS wire log and lambdavision's own debug lines, on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s [%(levelname)s] %(message)s"))
    for name in DEBUG_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        if not any(getattr(h, "_lambdavision_debug", False) for h in logger.handlers):
            handler._lambdavision_debug = True  # type: ignore[attr-defined]
            logger.addHandler(handler)


def _debug_callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[DEBUG_KEY] = True
        enable_debug()


def add_debug_option(command: click.Command) -> None:
    """`--debug` on `command` and, for a group, on every subcommand (SAM CLI has it everywhere)."""
    if not any(param.name == "debug" for param in command.params):
        command.params.append(
            click.Option(
                ["--debug"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                callback=_debug_callback,
                help=f"Print the AWS wire log (botocore) and tracebacks on stderr (or set {DEBUG_ENV}=1).",
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_debug_option(sub)


def debugging(ctx: click.Context) -> bool:
    return bool(ctx.meta.get(DEBUG_KEY)) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


class LambdaVisionGroup(click.Group):
    """A click group that turns known errors into one line and exit status 1 (with the traceback
    before it under --debug), and gives every command `--debug`."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        add_debug_option(cmd)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            enable_debug()
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as exc:
            message = known_error_message(exc)
            if message is None:
                raise
            if debugging(ctx):
                traceback.print_exc(file=sys.stderr)
            fail(message)


class GreedyOptionsCommand(click.Command):
    """Lets a repeatable option take several values after one flag, as SAM and the AWS CLI do:

    `--parameter-overrides A=1 B=2 --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM`.
    """

    greedy_options: tuple[str, ...] = ()

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_greedy(args, self.greedy_options))


def spread_greedy(args: list[str], greedy: tuple[str, ...]) -> list[str]:
    """`--opt a b` -> `--opt a --opt b` for each option in `greedy`; everything else unchanged."""
    out: list[str] = []
    current: str | None = None
    for index, token in enumerate(args):
        if token == "--":
            out.extend(args[index:])
            return out
        if current is not None and not token.startswith("-"):
            out += [current, token]
            continue
        current = None
        if token in greedy:
            current = token
            nxt = args[index + 1] if index + 1 < len(args) else None
            if nxt is None or nxt.startswith("-"):
                out.append(token)  # no value: click reports it
            continue
        out.append(token)
    return out


CPU_SHARE_ENV = "LAMBDAVISION_CPU_SHARE"


def cpu_share_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--cpu-share/--no-cpu-share` (default on; LAMBDAVISION_CPU_SHARE=0 turns it off too)."""
    return click.option(
        "--cpu-share/--no-cpu-share",
        "cpu_share",
        default=True,
        show_default=True,
        envvar=CPU_SHARE_ENV,
        help="Hold each environment to the CPU Lambda gives its MemorySize (MemorySize/1769 vCPUs, "
        "capped at this machine's cores) with a cgroup quota; needs root, else one warning and whole cores.",
    )(command)
