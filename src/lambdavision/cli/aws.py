"""Commands: `upload`, `deploy`, `endpoint`, `logs`, `delete` — AWS through one boto3 session.

Each parses its flags, makes one call into lambdavision.aws, and prints. Progress (upload bytes,
stack events) goes to stderr on a terminal only; results go to stdout; `--quiet` leaves only
results and errors.
"""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add the AWS commands to the main group."""
    from lambdavision.cli.deploy import delete, deploy, endpoint
    from lambdavision.cli.logs import logs
    from lambdavision.cli.upload import upload

    for command in (upload, deploy, endpoint, logs, delete):
        cli.add_command(command)
