"""A whole template, read once for every command: its functions and its API.

`plain_template` is the template every command works on: a SAM template through AWS's transform
(`sam.to_cloudformation`), a plain one as it is. `load_functions` gives its functions (`package`),
`build_app` / `load_app` its functions and routes (`local invoke`, `local start-api`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdavision.cfn.document import TemplateError, read_template
from lambdavision.cfn.functions import DEFAULT_RUNTIME, FunctionSpec, function_specs
from lambdavision.cfn.intrinsics import Resolver
from lambdavision.cfn.parameters import parameter_values
from lambdavision.cfn.routes import DEFAULT_STAGE, ApiRoute, api_surface
from lambdavision.cfn.sam import to_cloudformation

DEFAULT_TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")


@dataclass(frozen=True)
class AppTemplate:
    path: Path
    functions: dict[str, FunctionSpec]
    routes: list[ApiRoute]
    binary_media_types: list[str]
    stage_name: str = DEFAULT_STAGE


def find_default_template(folder: Path) -> Path:
    """template.yaml / template.yml / template.json in `folder`, as SAM CLI looks for them."""
    for name in DEFAULT_TEMPLATE_NAMES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise TemplateError(f"no template.yaml in {folder}: pass -t TEMPLATE (or run `lambdavision init`)")


def plain_template(
    document: Mapping[str, Any],
    overrides: Mapping[str, str] | None = None,
    *,
    region: str = "us-east-1",
    default_runtime: str = "",
    source: str = "template",
) -> dict[str, Any]:
    """The template as plain CloudFormation (SAM transformed; see `sam.to_cloudformation`)."""
    return to_cloudformation(
        document,
        parameter_values=dict(overrides or {}),
        region=region,
        default_runtime=default_runtime,
        source=source,
    )


def load_functions(
    document: Mapping[str, Any],
    base: Path,
    overrides: Mapping[str, str] | None = None,
    *,
    region: str = "us-east-1",
    default_runtime: str = DEFAULT_RUNTIME,
    source: str = "template",
) -> dict[str, FunctionSpec]:
    """The functions of a template as written (SAM or plain); code folders are under `base`."""
    plain = plain_template(document, overrides, region=region, default_runtime=default_runtime, source=source)
    resolver = Resolver(plain, parameter_values(plain, dict(overrides or {}), source), region)
    return function_specs(
        plain, base, resolver, source=source, default_runtime=default_runtime, resource_types=_types(document)
    )


def build_app(
    document: Mapping[str, Any],
    path: Path,
    parameter_overrides: Mapping[str, str] | None = None,
    *,
    region: str = "us-east-1",
) -> AppTemplate:
    """The functions and routes of a parsed template; relative code folders are under path's folder."""
    source = str(path)
    overrides = dict(parameter_overrides or {})
    plain = plain_template(document, overrides, region=region, default_runtime=DEFAULT_RUNTIME, source=source)
    resolver = Resolver(plain, parameter_values(plain, overrides, source), region)
    functions = function_specs(plain, Path(path).parent, resolver, source=source, resource_types=_types(document))
    surface = api_surface(plain, set(functions), resolver)
    return AppTemplate(
        path=path,
        functions=functions,
        routes=surface.routes,
        binary_media_types=surface.binary_media_types,
        stage_name=surface.stage_name,
    )


def load_app(
    path: Path, parameter_overrides: Mapping[str, str] | None = None, *, region: str = "us-east-1"
) -> AppTemplate:
    """Read `path` (SAM or plain CloudFormation) into functions and API routes."""
    return build_app(read_template(Path(path)), Path(path), parameter_overrides, region=region)


def _types(document: Mapping[str, Any]) -> dict[str, str]:
    resources = document.get("Resources") or {}
    return {k: str(v.get("Type")) for k, v in resources.items() if isinstance(v, Mapping)}


__all__ = [
    "DEFAULT_TEMPLATE_NAMES",
    "AppTemplate",
    "build_app",
    "find_default_template",
    "load_app",
    "load_functions",
    "plain_template",
]
