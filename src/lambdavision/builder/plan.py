"""What `build` and `package` build: a template's functions whose code is a local folder, each with the
Lambda platform (runtime, architecture) of its zip. Pure: reads the template through `lambdavision.cfn`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdavision import cfn
from lambdavision.builder.wheels import Target
from lambdavision.core.errors import LambdaVisionError, PackageError, PackageTooLarge

LAMBDA_FUNCTION = "AWS::Lambda::Function"
SAM_FUNCTION = "AWS::Serverless::Function"


@dataclass(frozen=True)
class PlannedFunction:
    """One function to build: its spec (read by `lambdavision.cfn`) and the Lambda platform of its zip."""

    spec: cfn.FunctionSpec
    target: Target

    @property
    def logical_id(self) -> str:
        return self.spec.logical_id

    @property
    def resource_type(self) -> str:  # LAMBDA_FUNCTION or SAM_FUNCTION
        return self.spec.resource_type

    @property
    def code_dir(self) -> Path:
        return self.spec.code_dir

    @property
    def handler(self) -> str | None:
        return self.spec.handler or None

    @property
    def existing_layers(self) -> int:
        return len(self.spec.layers)


def plan_functions(template: Mapping[str, Any], template_dir: Path) -> list[PlannedFunction]:
    """The functions whose code is a local folder, with their Lambda platform.

    Functions already pointing at S3, inline code or a container image are left alone.
    """
    try:
        specs = cfn.load_functions(template, template_dir, default_runtime="")
    except cfn.TemplateError as exc:
        raise PackageError(exc.message) from exc
    planned = []
    for spec in specs.values():
        if not spec.code_uri:
            continue  # S3 location, ZipFile, InlineCode, an image: nothing local to build
        if not spec.code_dir.is_dir():
            raise PackageError(
                f"{spec.logical_id}: code folder {spec.code_uri!r} does not exist (relative to {template_dir})"
            )
        if not spec.runtime:
            raise PackageError(f"{spec.logical_id} has no Runtime: set Runtime: python3.12 (or python3.13)")
        try:
            target = Target.parse(spec.runtime, spec.architecture)
        except LambdaVisionError as exc:
            raise PackageError(f"{spec.logical_id}: {exc.message}") from exc
        planned.append(PlannedFunction(spec, target))
    if not planned:
        raise PackageError(
            "the template has no function with a local code folder to package "
            f"({LAMBDA_FUNCTION} Code: or {SAM_FUNCTION} CodeUri: naming a folder)"
        )
    return planned


__all__ = ["LAMBDA_FUNCTION", "SAM_FUNCTION", "PackageError", "PackageTooLarge", "PlannedFunction", "plan_functions"]
