"""The template's Lambda functions: the one walker over them, and `FunctionSpec`.

`lambda_functions` walks the active `AWS::Lambda::Function`s of a plain CloudFormation template (a
SAM template is transformed first, by `model.plain_template`: the transform does SAM's Globals merge);
`function_specs` reads each into what the local runtime, `package` and `deploy` need. `local_code`
lists the code locations that are still local paths (what `deploy` refuses until `package` has run).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdavision.cfn.document import TemplateError
from lambdavision.cfn.intrinsics import Resolver, as_env_value

LAMBDA_FUNCTION = "AWS::Lambda::Function"
LAYER_VERSION = "AWS::Lambda::LayerVersion"
DEFAULT_RUNTIME = "python3.12"
DEFAULT_MEMORY_MB = 128  # CloudFormation's and SAM's default
DEFAULT_TIMEOUT_S = 3  # idem


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function, as the template declares it."""

    logical_id: str
    handler: str
    code_dir: Path
    runtime: str
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]
    architecture: str = "x86_64"
    # Why the code cannot run locally (S3 location, inline code, image): "" when it can.
    unavailable_reason: str = ""
    # Where the spec came from, not what runs (so left out of comparisons):
    # the code folder as the template writes it ("" when the code is not a local path),
    code_uri: str = field(default="", compare=False)
    # the resource's type in the template as written (AWS::Serverless::Function for SAM),
    resource_type: str = field(default=LAMBDA_FUNCTION, compare=False)
    # and the layers it names (Lambda adds them to the package; locally they are not there).
    layers: tuple[str, ...] = field(default=(), compare=False)


def function_specs(
    template: Mapping[str, Any],
    base: Path,
    resolver: Resolver,
    *,
    source: str = "template",
    default_runtime: str = DEFAULT_RUNTIME,
    resource_types: Mapping[str, str] | None = None,
) -> dict[str, FunctionSpec]:
    """Each active `AWS::Lambda::Function` of the (plain) template; code folders are under `base`.

    A function without Runtime gets `default_runtime` ("" leaves it empty for the caller to refuse).
    `resource_types` names the type each logical id had before the SAM transform.
    """
    specs: dict[str, FunctionSpec] = {}
    for logical_id, properties in lambda_functions(template, resolver, source):
        specs[logical_id] = _spec(
            logical_id, properties, resolver, base.resolve(), source, default_runtime,
            (resource_types or {}).get(logical_id, LAMBDA_FUNCTION),
        )  # fmt: skip
    return specs


def lambda_functions(
    template: Mapping[str, Any], resolver: Resolver, source: str = "template"
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(logical id, Properties) of each `AWS::Lambda::Function` of a plain template whose Condition holds."""
    resources = template.get("Resources")
    if not isinstance(resources, Mapping):
        raise TemplateError(f"{source} has no Resources mapping")
    for logical_id, resource in resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") != LAMBDA_FUNCTION:
            continue
        if not resolver.active(resource):
            continue
        properties = resource.get("Properties") or {}
        if not isinstance(properties, Mapping):
            raise TemplateError(f"{source}: {logical_id}.Properties must be a mapping")
        yield str(logical_id), properties


def _spec(
    logical_id: str,
    properties: Mapping[str, Any],
    resolver: Resolver,
    base: Path,
    source: str,
    default_runtime: str,
    resource_type: str,
) -> FunctionSpec:
    where = f"{source}: {logical_id}"
    handler = resolver.resolve_str(properties.get("Handler", ""))
    code = resolver.resolve(properties.get("Code", "."))
    code_dir, code_uri, unavailable = _code_location(code, base)
    if resolver.resolve_str(properties.get("PackageType", "Zip")) == "Image":
        unavailable = "it is a container image (PackageType: Image); lambdavision runs zip functions"
    if not handler and not unavailable:
        unavailable = "it has no Handler"
    runtime = as_env_value(resolver.resolve_required(properties.get("Runtime"), f"{where}.Runtime"))
    architectures = resolver.resolve_required(properties.get("Architectures", ["x86_64"]), f"{where}.Architectures")
    if not (isinstance(architectures, list) and len(architectures) == 1 and isinstance(architectures[0], str)):
        raise TemplateError(f"{where}: Architectures must be a list of one value, [x86_64] or [arm64]")
    layers = resolver.resolve(properties.get("Layers") or [])
    return FunctionSpec(
        logical_id=logical_id,
        handler=handler,
        code_dir=code_dir,
        runtime=runtime or default_runtime,
        memory_mb=_int_property(
            resolver.resolve(properties.get("MemorySize")), DEFAULT_MEMORY_MB, f"{where}.MemorySize"
        ),
        timeout_s=_int_property(resolver.resolve(properties.get("Timeout")), DEFAULT_TIMEOUT_S, f"{where}.Timeout"),
        environment=_environment(properties, resolver, f"{where}.Environment.Variables"),
        architecture=architectures[0] or "x86_64",
        unavailable_reason=unavailable,
        code_uri=code_uri,
        resource_type=resource_type,
        layers=tuple(as_env_value(layer) for layer in layers) if isinstance(layers, list) else (),
    )


def _code_location(code: Any, base: Path) -> tuple[Path, str, str]:
    """(local folder, the path as written or "", why it is not runnable or "") for a Code value."""
    if isinstance(code, str) and code:
        if code.startswith("s3://"):
            return base, "", f"its code is in S3 ({code}); run the template from before `package`"
        return (base / code).resolve(), code, ""
    if isinstance(code, dict):
        if "ZipFile" in code:
            return base, "", "its code is inline (Code.ZipFile); put it in a folder"
        if "ImageUri" in code:
            return base, "", "it is a container image; lambdavision runs zip functions"
        bucket = code.get("S3Bucket", code.get("Bucket", ""))
        key = code.get("S3Key", code.get("Key", ""))
        return base, "", f"its code is in S3 (s3://{bucket}/{key}); run the template from before `package`"
    return base, "", ""


def _int_property(value: Any, default: int, what: str) -> int:
    if value in (None, ""):
        return default
    try:
        return int(float(as_env_value(value)))
    except ValueError as exc:
        raise TemplateError(f"{what} must be a number, got {value!r}") from exc


def environment_variable(name: Any, value: Any, where: str) -> tuple[str, str]:
    """(name, value) as strings, refused in one line when no process environment can hold them."""
    text_name, text_value = str(name), as_env_value(value)
    if not text_name or "=" in text_name or "\0" in text_name:
        raise TemplateError(f"{where}: environment variable name {text_name!r} must be non-empty, without '=' or NUL")
    if "\0" in text_value:
        raise TemplateError(f"{where}: environment variable {text_name} has a NUL character in its value")
    return text_name, text_value


def _environment(properties: Mapping[str, Any], resolver: Resolver, where: str) -> dict[str, str]:
    environment = properties.get("Environment") or {}
    variables = resolver.resolve(environment.get("Variables") or {}) if isinstance(environment, Mapping) else {}
    if not isinstance(variables, dict):
        return {}
    return dict(environment_variable(name, value, where) for name, value in variables.items())


def local_code(template: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(logical id, path) of each function or layer whose code is still a local path, not S3."""
    keys = {
        LAMBDA_FUNCTION: "Code",
        LAYER_VERSION: "Content",
        "AWS::Serverless::Function": "CodeUri",
        "AWS::Serverless::LayerVersion": "ContentUri",
    }
    found = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, Mapping) or resource.get("Type") not in keys:
            continue
        code = (resource.get("Properties") or {}).get(keys[resource["Type"]])
        if isinstance(code, str) and not code.startswith("s3://"):
            found.append((str(logical_id), code))
    return found


__all__ = [
    "DEFAULT_MEMORY_MB",
    "DEFAULT_RUNTIME",
    "DEFAULT_TIMEOUT_S",
    "LAMBDA_FUNCTION",
    "FunctionSpec",
    "environment_variable",
    "function_specs",
    "lambda_functions",
    "local_code",
]
