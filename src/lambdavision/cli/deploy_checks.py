"""`deploy`'s checks before it starts (aws/preflight.py), and its --confirm-changeset question.

Each problem is printed as its own `Error:` line with its fix, then deploy exits 1 without touching
the stack; `--no-verify` skips the checks and says so.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from lambdavision.aws.preflight import Preflight, run_checks
from lambdavision.aws.session import AwsSession
from lambdavision.builder.folder import default_build_dir

CHECKS = "model object and format, handler imports, runtime, layers, IAM capabilities"


def verify_before_deploy(
    session: AwsSession,
    template: Mapping[str, Any],
    parameters: Mapping[str, str],
    capabilities: Sequence[str],
    template_file: Path,
    quiet: bool,
) -> None:
    """Run the checks; print every problem on its own line and exit 1 if there is any."""
    region = session.session.region_name or "us-east-1"
    # The packaged template sits beside the source template (or in the current folder): their build
    # folders hold the zips under the names of their sha256, so nothing is downloaded for them.
    build_dirs = list(dict.fromkeys([default_build_dir(template_file.parent), default_build_dir(Path.cwd())]))
    check = Preflight(template, parameters, capabilities, region, build_dirs)
    findings = run_checks(check, session)
    if not quiet:
        for note in findings.notes:
            click.echo(f"note: {note}", err=True)
    if findings.problems:
        for problem in findings.problems:
            click.echo(f"Error: {problem}", err=True)
        click.echo("Nothing was deployed (to deploy anyway: --no-verify).", err=True)
        sys.exit(1)
    if not quiet:
        click.echo(f"Checked before deploy: {CHECKS}.", err=True)


def skip_note() -> str:
    return f"Skipping the checks before deploy (--no-verify): {CHECKS} are not checked."


def confirm(stack_name: str, exists: bool, template_file: Path) -> None:
    """SAM's --confirm-changeset: say what is about to happen and ask (no answer = no)."""
    action = "update" if exists else "create"
    if not click.confirm(
        f"About to {action} stack {stack_name} from {template_file}. Deploy?", default=False, err=True
    ):
        click.echo("Nothing was deployed.", err=True)
        sys.exit(1)
