"""What every AWS command shares: --region / --profile / --endpoint-url / --quiet, one boto3 session from
them, and where progress and notes go (stderr; progress on a terminal only; nothing with --quiet)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from lambdavision.aws.session import AwsOptions, AwsSession

F = TypeVar("F", bound=Callable[..., Any])


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


def session_for(region: str | None, profile: str | None, endpoint_url: str | None) -> AwsSession:
    return AwsSession(AwsOptions(region=region, profile=profile, endpoint_url=endpoint_url))


def session_region(session: AwsSession) -> str:
    """The command's region (the SAM transform needs one even before any AWS call): us-east-1 if none."""
    return session.session.region_name or "us-east-1"


def show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def note(message: str, quiet: bool) -> None:
    if not quiet:
        click.echo(message, err=True)


__all__ = ["aws_options", "note", "session_for", "session_region", "show_progress"]
