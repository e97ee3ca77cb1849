"""What every command shares: one-line errors and exit codes."""

from __future__ import annotations

import sys
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
