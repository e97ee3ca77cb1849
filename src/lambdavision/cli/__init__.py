"""The `lambdavision` command: parse -> one call -> print.

Known errors (`LambdaVisionError`, boto's credential/client errors) become one line on stderr and
exit status 1, never a traceback. Each command family lives in its own module and registers itself
on the `main` group here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lambdavision.cli import app as _app
from lambdavision.cli import aws as _aws
from lambdavision.cli import bench as _bench
from lambdavision.cli import build as _build
from lambdavision.cli import export as _export
from lambdavision.cli import local as _local
from lambdavision.cli import model as _model
from lambdavision.cli import package as _package
from lambdavision.cli.common import LambdaVisionGroup, add_debug_option, fail, known_error_message
from lambdavision.cli.default_map import load_default_map
from lambdavision.core.errors import LambdaVisionError


@click.group(cls=LambdaVisionGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lambdavision")
def cli() -> None:
    """Serve a PyTorch / fastai image classifier on AWS Lambda with ONNX Runtime.

    The guide's `sam` command lines work with `sam` replaced by `lambdavision`.
    """


for _module in (_model, _export, _app, _build, _local, _package, _aws, _bench):
    _module.register(cli)
add_debug_option(cli)


def main(argv: list[str] | None = None) -> Any:
    # Per-command flag defaults from lambdavision.toml / [tool.lambdavision] (like samconfig.toml).
    try:
        default_map = load_default_map(cli, Path.cwd())
    except LambdaVisionError as exc:
        fail(known_error_message(exc) or exc.message)
    return cli.main(args=argv, prog_name="lambdavision", default_map=default_map)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
