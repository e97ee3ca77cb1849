"""Read a SAM or plain CloudFormation template into what the local commands need to run it.

Two formats, one result: `AWS::Serverless::Function` (CodeUri, Globals, `Api` events) and
`AWS::Lambda::Function` (Code as a local folder, the `aws cloudformation package` convention)
with `AWS::ApiGateway::RestApi` + `Resource` + `Method` (AWS_PROXY). Intrinsic functions are
resolved as far as a template alone allows — `Ref` to parameters (defaults, then overrides) and
pseudo parameters, `Fn::Sub`, `Fn::Join`, `Fn::If`... — and anything that needs a deployed
stack (`Fn::GetAtt`, `Fn::ImportValue`) becomes "".

`env.json` (SAM's shape) overrides the template's variables: `{"FnId": {...}, "Parameters": {...}}`,
where "Parameters" applies to every function. Unlike SAM, a variable set there is set even when
the template does not declare it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from lambdavision.core.errors import BadRequest

DEFAULT_TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")
DEFAULT_RUNTIME = "python3.12"
DEFAULT_MEMORY_MB = 128  # CloudFormation's and SAM's default
DEFAULT_TIMEOUT_S = 3  # idem
DEFAULT_STAGE = "Prod"
LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_STACK_NAME = "local"


class TemplateError(BadRequest):
    """The template, its parameters or env.json cannot be used; the message says where."""


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function, as the local runtime needs it."""

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


@dataclass(frozen=True)
class ApiRoute:
    method: str  # "POST", "GET", ... or "ANY"
    path: str  # "/invocations", may contain "{name}" or "{proxy+}"
    function_id: str


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


# --- YAML with CloudFormation's short tags -------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref x` into {"Ref": "x"}, `!GetAtt a.b` into {"Fn::GetAtt": [a, b]}..."""


def _construct_short_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no other node kinds
        raise TemplateError(f"unexpected YAML node for !{tag_suffix}")
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_short_tag)


def parse_template_text(text: str, source: str = "template") -> dict[str, Any]:
    """The template as a dict; JSON and YAML (with short tags) both accepted."""
    try:
        document = json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, Loader=_CfnLoader)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise TemplateError(f"{source} is not valid YAML/JSON: {_one_line(str(exc))}") from exc
    if not isinstance(document, dict):
        raise TemplateError(f"{source} is not a CloudFormation template (no mapping at the top)")
    if not isinstance(document.get("Resources"), dict) or not document["Resources"]:
        raise TemplateError(f"{source} has no Resources")
    return document


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- intrinsic functions -------------------------------------------------------------------

_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class _Resolver:
    """Resolves intrinsic functions against parameters, pseudo parameters, mappings, conditions."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, Any], region: str) -> None:
        self._template = template
        self._values: dict[str, Any] = {
            "AWS::Region": region,
            "AWS::AccountId": LOCAL_ACCOUNT_ID,
            "AWS::StackName": LOCAL_STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{LOCAL_ACCOUNT_ID}:stack/{LOCAL_STACK_NAME}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
            **parameters,
        }
        self._conditions: dict[str, bool] = {}
        self._evaluating: set[str] = set()

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._values.get(str(argument), "")
            if key.startswith("Fn::") or key == "Condition":
                return self._function(key, argument)
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not None}

    def resolve_str(self, value: Any) -> str:
        return as_env_value(self.resolve(value))

    def condition(self, name: str) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        if name in self._evaluating:  # a cycle: treat as false rather than recursing forever
            return False
        self._evaluating.add(name)
        conditions = self._template.get("Conditions") or {}
        result = bool(self._truth(conditions.get(name, False)))
        self._evaluating.discard(name)
        self._conditions[name] = result
        return result

    def _truth(self, value: Any) -> bool:
        resolved = self.resolve(value)
        return resolved is True or (isinstance(resolved, str) and resolved.lower() == "true")

    def _function(self, name: str, argument: Any) -> Any:
        if name == "Condition":
            return self.condition(str(argument))
        if name == "Fn::Sub":
            return self._sub(argument)
        if name == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
            items = self.resolve(argument[1])
            items = items if isinstance(items, list) else [items]
            return str(self.resolve(argument[0])).join(as_env_value(item) for item in items)
        if name == "Fn::Select" and isinstance(argument, list) and len(argument) == 2:
            items = self.resolve(argument[1])
            try:
                return items[int(self.resolve(argument[0]))] if isinstance(items, list) else ""
            except (ValueError, IndexError):
                return ""
        if name == "Fn::Split" and isinstance(argument, list) and len(argument) == 2:
            return self.resolve_str(argument[1]).split(str(self.resolve(argument[0])))
        if name == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
            return self.resolve(argument[1] if self.condition(str(argument[0])) else argument[2])
        if name == "Fn::Equals" and isinstance(argument, list) and len(argument) == 2:
            return as_env_value(self.resolve(argument[0])) == as_env_value(self.resolve(argument[1]))
        if name == "Fn::Not" and isinstance(argument, list) and len(argument) == 1:
            return not self._truth(argument[0])
        if name == "Fn::And" and isinstance(argument, list):
            return all(self._truth(item) for item in argument)
        if name == "Fn::Or" and isinstance(argument, list):
            return any(self._truth(item) for item in argument)
        if name == "Fn::FindInMap" and isinstance(argument, list) and len(argument) >= 3:
            keys = [self.resolve_str(item) for item in argument[:3]]
            found: Any = self._template.get("Mappings") or {}
            for key in keys:
                found = found.get(key) if isinstance(found, dict) else None
            return found if found is not None else ""
        if name == "Fn::Base64":
            return base64.b64encode(self.resolve_str(argument).encode()).decode()
        if name == "Fn::GetAZs":
            return []
        # Fn::GetAtt, Fn::ImportValue, Fn::Cidr...: only a deployed stack knows them.
        return ""

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
            text, local_values = argument[0], {k: self.resolve(v) for k, v in argument[1].items()}
        else:
            text, local_values = argument, {}
        if not isinstance(text, str):
            return ""

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in local_values:
                return as_env_value(local_values[name])
            return as_env_value(self._values.get(name, ""))  # "Res.Attr" and resources resolve to ""

        # "${!Literal}" is CloudFormation's escape for a literal "${Literal}".
        return _SUB_VARIABLE.sub(substitute, text).replace("${!", "${")


def as_env_value(value: Any) -> str:
    """A template or env.json value as the string Lambda would put in the environment."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(as_env_value(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


# --- parameters ----------------------------------------------------------------------------


def _parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str], source: str) -> dict[str, Any]:
    declared = template.get("Parameters") or {}
    if not isinstance(declared, dict):
        raise TemplateError(f"{source}: Parameters must be a mapping")
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(
            f"{source} has no parameter {', '.join(unknown)} (it declares: {', '.join(declared) or 'none'})"
        )
    values: dict[str, Any] = {}
    for name, definition in declared.items():
        definition = definition if isinstance(definition, dict) else {}
        raw = overrides.get(name, definition.get("Default", ""))
        text = as_env_value(raw)
        kind = str(definition.get("Type", "String"))
        values[name] = (
            [item.strip() for item in text.split(",")]
            if kind.startswith("List<") or kind == "CommaDelimitedList"
            else text
        )
    return values


# --- functions -----------------------------------------------------------------------------


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


def _environment(properties: Mapping[str, Any], resolver: _Resolver, where: str) -> dict[str, str]:
    variables = resolver.resolve((properties.get("Environment") or {}).get("Variables") or {})
    if not isinstance(variables, dict):
        return {}
    return dict(environment_variable(name, value, where) for name, value in variables.items())


def _code_location(code: Any, base: Path) -> tuple[Path, str]:
    """(local folder, why it is not runnable or "") for a CodeUri / Code value."""
    if isinstance(code, str) and code:
        if code.startswith("s3://"):
            return base, f"its code is in S3 ({code}); run the template from before `package`"
        return (base / code).resolve(), ""
    if isinstance(code, dict):
        if "ZipFile" in code:
            return base, "its code is inline (Code.ZipFile); put it in a folder"
        if "ImageUri" in code:
            return base, "it is a container image; lambdavision runs zip functions"
        bucket = code.get("S3Bucket", code.get("Bucket", ""))
        key = code.get("S3Key", code.get("Key", ""))
        return base, f"its code is in S3 (s3://{bucket}/{key}); run the template from before `package`"
    return base, ""


def _function_spec(
    logical_id: str,
    properties: Mapping[str, Any],
    code: Any,
    resolver: _Resolver,
    base: Path,
    source: str,
) -> FunctionSpec:
    handler = resolver.resolve_str(properties.get("Handler", ""))
    code_dir, unavailable = _code_location(code, base)
    if str(resolver.resolve_str(properties.get("PackageType", "Zip"))) == "Image":
        unavailable = "it is a container image (PackageType: Image); lambdavision runs zip functions"
    if not handler and not unavailable:
        unavailable = "it has no Handler"
    architectures = resolver.resolve(properties.get("Architectures")) or ["x86_64"]
    architecture = as_env_value(architectures[0] if isinstance(architectures, list) else architectures)
    return FunctionSpec(
        logical_id=logical_id,
        handler=handler,
        code_dir=code_dir,
        runtime=resolver.resolve_str(properties.get("Runtime")) or DEFAULT_RUNTIME,
        memory_mb=_int_property(
            resolver.resolve(properties.get("MemorySize")), DEFAULT_MEMORY_MB, f"{source}: {logical_id}.MemorySize"
        ),
        timeout_s=_int_property(
            resolver.resolve(properties.get("Timeout")), DEFAULT_TIMEOUT_S, f"{source}: {logical_id}.Timeout"
        ),
        environment=_environment(properties, resolver, f"{source}: {logical_id}.Environment.Variables"),
        architecture=architecture or "x86_64",
        unavailable_reason=unavailable,
    )


def _merged_with_globals(properties: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rule: the function's value wins; maps (Environment.Variables) merge."""
    merged: dict[str, Any] = dict(defaults)
    for key, value in properties.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged_with_globals(value, merged[key])
        else:
            merged[key] = value
    return merged


# --- API routes ----------------------------------------------------------------------------


def decode_binary_media_type(value: str) -> str:
    """SAM writes "image~1png" for "image/png" (JSON pointer escaping); accept both."""
    return value.replace("~1", "/").replace("~0", "~")


def _referenced_ids(value: Any) -> Iterator[str]:
    """Logical ids a value mentions through Ref, Fn::GetAtt or ${...} in Fn::Sub."""
    if isinstance(value, list):
        for item in value:
            yield from _referenced_ids(item)
    elif isinstance(value, dict):
        for key, argument in value.items():
            if key == "Ref" and isinstance(argument, str):
                yield argument
            elif key == "Fn::GetAtt":
                target = argument[0] if isinstance(argument, list) and argument else argument
                if isinstance(target, str):
                    yield target.partition(".")[0]
            elif key == "Fn::Sub":
                text = argument[0] if isinstance(argument, list) and argument else argument
                if isinstance(text, str):
                    for name in _SUB_VARIABLE.findall(text):
                        yield name.strip().partition(".")[0]
                if isinstance(argument, list):
                    yield from _referenced_ids(argument[1:])
            else:
                yield from _referenced_ids(argument)


def _normalise_path(path: str) -> str:
    return "/" + path.strip().strip("/") if path.strip("/ ") else "/"


def _sam_routes(logical_id: str, properties: Mapping[str, Any], resolver: _Resolver) -> Iterator[tuple[ApiRoute, str]]:
    """(route, the API it belongs to) for each `Type: Api` event of a SAM function."""
    events = properties.get("Events") or {}
    if not isinstance(events, dict):
        return
    for event in events.values():
        if not isinstance(event, dict) or event.get("Type") != "Api":
            continue
        event_properties = event.get("Properties") or {}
        path = resolver.resolve_str(event_properties.get("Path", ""))
        method = resolver.resolve_str(event_properties.get("Method", "ANY")).upper()
        api_ids = list(_referenced_ids(event_properties.get("RestApiId")))
        api_id = api_ids[0] if api_ids else "ServerlessRestApi"
        if path:
            yield ApiRoute(method=method, path=_normalise_path(path), function_id=logical_id), api_id


def _resource_path(resource_id: str, resources: Mapping[str, Any], resolver: _Resolver) -> str:
    """The full path of an AWS::ApiGateway::Resource, following ParentId up to the root."""
    parts: list[str] = []
    seen: set[str] = set()
    current = resource_id
    while current in resources and current not in seen:
        seen.add(current)
        resource = resources[current]
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::ApiGateway::Resource":
            break
        properties = resource.get("Properties") or {}
        parts.append(resolver.resolve_str(properties.get("PathPart", "")))
        parents = list(_referenced_ids(properties.get("ParentId")))
        current = parents[0] if parents else ""
    return _normalise_path("/".join(reversed(parts)))


def _function_behind(name: str, resources: Mapping[str, Any], function_ids: set[str]) -> str | None:
    """`name` itself, or the function an AWS::Lambda::Alias / Version (SnapStart's) points at."""
    if name in function_ids:
        return name
    resource = resources.get(name)
    if isinstance(resource, dict) and resource.get("Type") in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
        properties = resource.get("Properties") or {}
        behind = [n for n in _referenced_ids(properties.get("FunctionName")) if n in function_ids]
        if not behind and "FunctionVersion" in properties:  # an Alias names its Version, which names the function
            behind = [
                found
                for n in _referenced_ids(properties.get("FunctionVersion"))
                if n != name and (found := _function_behind(n, resources, function_ids))
            ]
        return behind[0] if behind else None
    return None


def _cfn_route(
    properties: Mapping[str, Any], resources: Mapping[str, Any], function_ids: set[str], resolver: _Resolver
) -> ApiRoute | None:
    integration = properties.get("Integration") or {}
    if not isinstance(integration, dict) or resolver.resolve_str(integration.get("Type", "")).upper() != "AWS_PROXY":
        return None
    referenced = (_function_behind(name, resources, function_ids) for name in _referenced_ids(integration.get("Uri")))
    targets = [name for name in referenced if name]
    if not targets:
        return None
    resource_ids = list(_referenced_ids(properties.get("ResourceId")))
    path = _resource_path(resource_ids[0], resources, resolver) if resource_ids else "/"
    method = resolver.resolve_str(properties.get("HttpMethod", "ANY")).upper()
    return ApiRoute(method=method, path=path, function_id=targets[0])


# --- the whole template --------------------------------------------------------------------


def load_template(
    path: Path, parameter_overrides: Mapping[str, str] | None = None, *, region: str = "us-east-1"
) -> AppTemplate:
    """Read `path` (SAM or plain CloudFormation) into functions and API routes."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise TemplateError(f"no such template: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read template {path}: {exc}") from exc
    return build_app(parse_template_text(text, source), path, parameter_overrides, region=region)


def build_app(
    document: Mapping[str, Any],
    path: Path,
    parameter_overrides: Mapping[str, str] | None = None,
    *,
    region: str = "us-east-1",
) -> AppTemplate:
    """The functions and routes of a parsed template; relative code folders are under path's folder."""
    source = str(path)
    resolver = _Resolver(document, _parameter_values(document, dict(parameter_overrides or {}), source), region)
    base = path.resolve().parent
    resources: dict[str, Any] = document["Resources"]
    globals_section = document.get("Globals") or {}
    function_globals = globals_section.get("Function") or {} if isinstance(globals_section, dict) else {}
    api_globals = globals_section.get("Api") or {} if isinstance(globals_section, dict) else {}

    def active(resource: Mapping[str, Any]) -> bool:
        condition = resource.get("Condition")
        return condition is None or resolver.condition(str(condition))

    functions: dict[str, FunctionSpec] = {}
    sam_routes: list[tuple[ApiRoute, str]] = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or not active(resource):
            continue
        properties = resource.get("Properties") or {}
        if not isinstance(properties, dict):
            raise TemplateError(f"{source}: {logical_id}.Properties must be a mapping")
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function":
            merged = _merged_with_globals(properties, function_globals)
            code = resolver.resolve(merged.get("CodeUri", "."))
            if "InlineCode" in merged:
                code = {"ZipFile": merged["InlineCode"]}
            functions[logical_id] = _function_spec(logical_id, merged, code, resolver, base, source)
            sam_routes.extend(_sam_routes(logical_id, merged, resolver))
        elif kind == "AWS::Lambda::Function":
            code = resolver.resolve(properties.get("Code", "."))
            functions[logical_id] = _function_spec(logical_id, properties, code, resolver, base, source)

    routes = [route for route, _ in sam_routes]
    binary_types: list[str] = []
    stage_name = ""
    used_sam_apis = {api_id for _, api_id in sam_routes}
    if "ServerlessRestApi" in used_sam_apis:
        binary_types.extend(resolver.resolve(api_globals.get("BinaryMediaTypes")) or [])
        stage_name = DEFAULT_STAGE
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or not active(resource):
            continue
        properties = resource.get("Properties") or {}
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Api" and logical_id in used_sam_apis:
            merged = _merged_with_globals(properties, api_globals)
            binary_types.extend(resolver.resolve(merged.get("BinaryMediaTypes")) or [])
            stage_name = stage_name or resolver.resolve_str(merged.get("StageName"))
        elif kind == "AWS::ApiGateway::RestApi":
            binary_types.extend(resolver.resolve(properties.get("BinaryMediaTypes")) or [])
        elif kind == "AWS::ApiGateway::Method":
            route = _cfn_route(properties, resources, set(functions), resolver)
            if route is not None:
                routes.append(route)
        elif kind in ("AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage") and not stage_name:
            stage_name = resolver.resolve_str(properties.get("StageName"))

    unique_types = list(dict.fromkeys(decode_binary_media_type(as_env_value(t)) for t in binary_types))
    return AppTemplate(
        path=path,
        functions=functions,
        routes=list(dict.fromkeys(routes)),
        binary_media_types=unique_types,
        stage_name=stage_name or DEFAULT_STAGE,
    )


# --- env.json ------------------------------------------------------------------------------


def load_env_file(path: Path) -> dict[str, dict[str, str]]:
    """env.json as {"FnId" | "Parameters": {"VAR": "value"}}; values become strings."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TemplateError(f"no such env file: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read env file {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path} is not valid JSON: {exc}") from exc
    return parse_env_document(document, str(path))


def parse_env_document(document: Any, source: str = "env.json") -> dict[str, dict[str, str]]:
    if not isinstance(document, dict):
        raise TemplateError(f'{source} must be a JSON object like {{"FunctionName": {{"VAR": "value"}}}}')
    parsed: dict[str, dict[str, str]] = {}
    for section, variables in document.items():
        if not isinstance(variables, dict):
            raise TemplateError(f'{source}: "{section}" must be an object of variables, got {type(variables).__name__}')
        where = f"{source}: {section}"
        parsed[str(section)] = dict(environment_variable(name, value, where) for name, value in variables.items())
    return parsed


def apply_env_file(spec: FunctionSpec, env_file: Mapping[str, Mapping[str, str]]) -> FunctionSpec:
    """The spec with env.json's "Parameters" then its own section laid over the template's variables."""
    environment = dict(spec.environment)
    environment.update(env_file.get("Parameters", {}))
    environment.update(env_file.get(spec.logical_id, {}))
    return replace(spec, environment=environment)


def parse_parameter_overrides(values: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`K=V` words (SAM's form) or `ParameterKey=K,ParameterValue=V` (CloudFormation's form)."""
    import shlex

    overrides: dict[str, str] = {}
    for value in values:
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise TemplateError(f"bad --parameter-overrides {value!r}: {exc}") from exc
        for word in words:
            if word.startswith("ParameterKey="):
                fields = dict(part.split("=", 1) for part in word.split(",") if "=" in part)
                key, val = fields.get("ParameterKey", ""), fields.get("ParameterValue", "")
            else:
                key, sep, val = word.partition("=")
                if not sep:
                    raise TemplateError(f"bad --parameter-overrides {word!r}: expected Name=Value")
            if not key:
                raise TemplateError(f"bad --parameter-overrides {word!r}: empty name")
            overrides[key] = val
    return overrides


__all__ = [
    "ApiRoute",
    "AppTemplate",
    "FunctionSpec",
    "TemplateError",
    "apply_env_file",
    "build_app",
    "find_default_template",
    "load_env_file",
    "load_template",
    "parse_env_document",
    "parse_parameter_overrides",
    "parse_template_text",
]
