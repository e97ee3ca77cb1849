"""The `lambdavision` command: parse -> one call -> print.

Known errors (`LambdaVisionError`, boto's credential/client errors) become one line on stderr and
exit status 1, never a traceback. Each command family lives in its own module and registers itself
on the `main` group here.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from lambdavision.cli import app as _app
from lambdavision.cli import aws as _aws
from lambdavision.cli import export as _export
from lambdavision.cli import local as _local
from lambdavision.cli import model as _model
from lambdavision.cli import package as _package
from lambdavision.cli.common import LambdaVisionGroup


@click.group(cls=LambdaVisionGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lambdavision")
def cli() -> None:
    """Serve a PyTorch / fastai image classifier on AWS Lambda with ONNX Runtime.

    The guide's `sam` command lines work with `sam` replaced by `lambdavision`.
    """


for _module in (_model, _export, _app, _local, _package, _aws):
    _module.register(cli)


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="lambdavision")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
