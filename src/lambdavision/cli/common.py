"""What every command shares: one-line errors and exit codes, and the options several commands take."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from lambdavision.core.errors import LambdaVisionError


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


class LambdaVisionGroup(click.Group):
    """A click group that turns known errors into one line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
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
            fail(message)


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
