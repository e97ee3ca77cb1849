"""`lambdavision build`: each function's package in the build folder, as `sam build` does.

    lambdavision build [FUNCTION ...] [-t template.yaml] [--layer] [--bundle-model model.tar.gz]

The zips are exactly what `package` uploads (it reuses them), and what `local invoke` and
`local start-api` run. A function whose inputs are unchanged is not rebuilt.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from lambdavision.builder import zipbuild


@click.command("build")
@click.argument("functions", nargs=-1, metavar="[FUNCTION]...")
@click.option(
    "-t", "--template-file", "--template", "template_file", default="template.yaml", show_default=True,
    type=click.Path(dir_okay=False, path_type=Path), help="The template whose functions to build.",
)  # fmt: skip
@click.option(
    "-b", "--build-dir", type=click.Path(file_okay=False, path_type=Path),
    help="The build folder.  [default: .lambdavision/build beside the template]",
)  # fmt: skip
@click.option("--include-boto3", is_flag=True, help="Ship your own boto3 instead of the runtime's.")
@click.option("--layer", is_flag=True, help="Put the dependencies in a Lambda layer; the function zip keeps the code.")
@click.option(
    "--bundle-model", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Put this model artifact in the zip (the handler prefers it; cold start reads no S3).",
)  # fmt: skip
@click.option("--refresh", is_flag=True, help="Rebuild everything: download wheels and stage dependencies afresh.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def build_command(
    functions: tuple[str, ...],
    template_file: Path,
    build_dir: Path | None,
    include_boto3: bool,
    layer: bool,
    bundle_model: Path | None,
    refresh: bool,
    quiet: bool,
) -> None:
    """Build each function's deployment zip into the build folder; reuse the ones whose inputs are unchanged.

    A zip holds the function's folder, lambdavision's runtime part and binary wheels of onnxruntime,
    numpy and Pillow for the function's Runtime and Architectures, pruned and compiled to .pyc by that
    CPython. `package` uploads these very zips; `local invoke` and `local start-api` run them.
    """
    from lambdavision.builder.folder import build_functions, default_build_dir
    from lambdavision.builder.imports_check import built_problems
    from lambdavision.builder.wheels import default_cache_dir
    from lambdavision.builder.zips import BuildOptions
    from lambdavision.cfn import read_template
    from lambdavision.cli.package import print_size_table

    def log(message: str) -> None:
        if not quiet:
            click.echo(message)

    template = read_template(template_file)
    out = build_dir or default_build_dir(template_file.parent)
    options = BuildOptions(
        cache_dir=default_cache_dir(os.environ),
        output_dir=out,
        environ=dict(os.environ),
        include_boto3=include_boto3,
        layer=layer,
        bundle_model=bundle_model,
        refresh=refresh,
    )
    result = build_functions(template, template_file.parent, options, log, only=functions or None)
    if quiet:
        return
    print_size_table(result, zipbuild.UNZIPPED_LIMIT, sys.stdout)
    for warning in [*result.warnings, *built_problems(result)]:
        click.echo(f"warning: {warning}")
    click.echo(f"Built in {out}: `lambdavision local invoke` runs these zips; `lambdavision package` uploads them.")


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    cli.add_command(build_command)
