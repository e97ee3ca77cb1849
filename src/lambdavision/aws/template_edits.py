"""The edits `init` and `deploy` share: SnapStart, CORS, version stamping and deploy's overrides.

`build_template` applies SnapStart and CORS with `enable_snapstart`/`enable_cors`;
`apply_overrides` edits a (packaged) template for `deploy --memory/--arch/--snapstart/--cors-origin`
with the same functions, and `stamp_version` names the SnapStart version after what it publishes.
Nothing here touches AWS or the file system.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdavision.aws.api_resources import (
    Target,
    add_route,
    proxied_routes,
    renew_deployment,
    retarget,
)
from lambdavision.aws.template_names import (
    ALIAS_ID,
    ALIAS_NAME,
    API_ID,
    CORS_ENV,
    FUNCTION_ID,
    SUPPORTED_RUNTIMES,
    VERSION_PREFIX,
    Route,
    check_architecture,
    check_memory,
    check_origin,
    ref,
)
from lambdavision.cfn.apigateway import replace_resource
from lambdavision.core.errors import TemplateOptionError

_FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")
_LAYER = "AWS::Lambda::LayerVersion"


@dataclass(frozen=True)
class DeployOverrides:
    """What `deploy` may change in a packaged template; None leaves a setting as it is."""

    memory: int | None = None
    architecture: str | None = None
    snapstart: bool | None = None
    cors_origin: str | None = None

    def any(self) -> bool:
        return any(v is not None for v in (self.memory, self.architecture, self.snapstart, self.cors_origin))


def apply_overrides(
    template: Mapping[str, Any], overrides: DeployOverrides, *, source: str = "template"
) -> dict[str, Any]:
    """A copy of `template` with `overrides` applied to its function (and API, for CORS).

    The architecture cannot change here: the packaged zip holds native libraries built for the
    template's architecture, so a different one is refused with what to run instead.
    """
    out = copy.deepcopy(dict(template))
    if not overrides.any():
        return out
    resources: dict[str, Any] = out.get("Resources") or {}
    function_id = _function_id(resources, source)
    function = resources[function_id]
    properties = function.setdefault("Properties", {})
    sam = function.get("Type") == "AWS::Serverless::Function"
    if overrides.architecture is not None:
        check_architecture(overrides.architecture)
        packaged = properties.get("Architectures", ["x86_64"])
        if packaged != [overrides.architecture]:
            raise TemplateOptionError(
                f"{source} was packaged for {_arch_text(packaged)}, not {overrides.architecture}: its zip holds "
                f"native libraries for that architecture; run `lambdavision init --arch {overrides.architecture}` "
                f"(or edit Architectures in template.yaml) and `lambdavision package` again"
            )
    if overrides.memory is not None:
        check_memory(overrides.memory)
        properties["MemorySize"] = overrides.memory
    if overrides.cors_origin is not None:
        check_origin(overrides.cors_origin)
        if sam or function_id != FUNCTION_ID or API_ID not in resources:
            raise TemplateOptionError(
                f"deploy --cors-origin edits templates made by `lambdavision init`; {source} has no "
                f"{FUNCTION_ID} behind a {API_ID}: use `lambdavision init --cors-origin` or set CORS in the template"
            )
        enable_cors(resources, overrides.cors_origin)
    if overrides.snapstart is not None:
        runtime = properties.get("Runtime")
        if overrides.snapstart and runtime not in SUPPORTED_RUNTIMES:
            raise TemplateOptionError(f"SnapStart for Python needs python3.12 or later; {function_id} runs {runtime!r}")
        if sam:
            _sam_snapstart(properties, overrides.snapstart)
        elif function_id != FUNCTION_ID:
            raise TemplateOptionError(
                f"deploy --snapstart edits templates made by `lambdavision init`; {source} has no {FUNCTION_ID}"
            )
        elif overrides.snapstart:
            enable_snapstart(out)
        else:
            _disable_snapstart(out)
    return out


def stamp_version(template: dict[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """Name the SnapStart version resource after the function's properties and parameter values.

    An `AWS::Lambda::Version` is immutable: CloudFormation publishes a new version only when the
    resource is new. With its logical id carrying a hash of the code location, settings and the
    parameters they use (SAM's AutoPublishAlias does the same), a new zip or a new ObjectKey
    publishes a new version and moves the alias; an unchanged deploy publishes nothing.
    `parameters` are the values the stack will have; missing ones count as their defaults.
    Edits `template` in place and returns it; a template without the version is left as it is.
    """
    resources: dict[str, Any] = template.get("Resources") or {}
    version_ids = [k for k, v in resources.items() if _is_our_version(v)]
    if not version_ids:
        return template
    declared = template.get("Parameters") or {}
    values = {name: str(parameters.get(name, (spec or {}).get("Default", ""))) for name, spec in declared.items()}
    published = {
        "function": resources[FUNCTION_ID].get("Properties", {}),
        # A version pins its layers' versions: new dependencies (`package --layer`) publish too.
        "layers": {k: v for k, v in resources.items() if isinstance(v, dict) and v.get("Type") == _LAYER},
        "parameters": values,
    }
    digest = hashlib.sha256(json.dumps(published, sort_keys=True, default=str).encode()).hexdigest()[:10]
    new_id = f"{VERSION_PREFIX}{digest}"
    replace_resource(resources, version_ids[0], new_id, resources[version_ids[0]])
    for extra in version_ids[1:]:
        replace_resource(resources, extra, None, None)
    alias = resources.get(ALIAS_ID)
    if isinstance(alias, dict):
        alias.setdefault("Properties", {})["FunctionVersion"] = {"Fn::GetAtt": [new_id, "Version"]}
    return template


def has_version(template: Mapping[str, Any]) -> bool:
    """Whether the template publishes a SnapStart version of our function (see `stamp_version`)."""
    return any(_is_our_version(v) for v in (template.get("Resources") or {}).values())


def _function_id(resources: Mapping[str, Any], source: str) -> str:
    if isinstance(resources.get(FUNCTION_ID), dict) and resources[FUNCTION_ID].get("Type") in _FUNCTION_TYPES:
        return FUNCTION_ID
    functions = [k for k, v in resources.items() if isinstance(v, dict) and v.get("Type") in _FUNCTION_TYPES]
    if len(functions) != 1:
        found = ", ".join(functions) or "none"
        raise TemplateOptionError(
            f"deploy's --memory/--arch/--snapstart/--cors-origin need one Lambda function in {source} (found: {found})"
        )
    return functions[0]


def _arch_text(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    return repr(value)


def _sam_snapstart(properties: dict[str, Any], on: bool) -> None:
    # SAM publishes the version and points the API's events at the alias itself.
    if on:
        properties["SnapStart"] = {"ApplyOn": "PublishedVersions"}
        properties["AutoPublishAlias"] = ALIAS_NAME
    else:
        properties.pop("SnapStart", None)
        properties.pop("AutoPublishAlias", None)


def enable_snapstart(template: dict[str, Any]) -> None:
    """SnapStart on published versions; a version + alias `live`; the API calls the alias."""
    resources: dict[str, Any] = template["Resources"]
    resources[FUNCTION_ID].setdefault("Properties", {})["SnapStart"] = {"ApplyOn": "PublishedVersions"}
    if ALIAS_ID in resources:
        return
    snapstart_resources = {
        VERSION_PREFIX: {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": ref(FUNCTION_ID)}},
        ALIAS_ID: {
            "Type": "AWS::Lambda::Alias",
            "Properties": {
                "FunctionName": ref(FUNCTION_ID),
                "FunctionVersion": {"Fn::GetAtt": [VERSION_PREFIX, "Version"]},
                "Name": ALIAS_NAME,
            },
        },
    }
    # Right after the function, so the file reads function -> version -> alias -> API.
    items = list(resources.items())
    resources.clear()
    for logical_id, resource in items:
        resources[logical_id] = resource
        if logical_id == FUNCTION_ID:
            resources.update(snapstart_resources)
    retarget(resources, Target.function(), Target.alias())
    renew_deployment(resources)


def _disable_snapstart(template: dict[str, Any]) -> None:
    resources: dict[str, Any] = template["Resources"]
    resources[FUNCTION_ID].get("Properties", {}).pop("SnapStart", None)
    for logical_id in [k for k, v in resources.items() if _is_our_version(v)] + [ALIAS_ID]:
        resources.pop(logical_id, None)
    retarget(resources, Target.alias(), Target.function())
    renew_deployment(resources)


def _is_our_version(resource: Any) -> bool:
    return (
        isinstance(resource, dict)
        and resource.get("Type") == "AWS::Lambda::Version"
        and (resource.get("Properties") or {}).get("FunctionName") == ref(FUNCTION_ID)
    )


def enable_cors(resources: dict[str, Any], origin: str) -> None:
    """The origin in the function's environment, a preflight method beside each proxied path, and
    the header on API Gateway's own error answers (403 without a key, 429 throttled, 504 timeout)
    so a page on that origin can read them rather than see an opaque network error."""
    function = resources[FUNCTION_ID].setdefault("Properties", {})
    function.setdefault("Environment", {}).setdefault("Variables", {})[CORS_ENV] = origin
    routes = proxied_routes(resources)
    for path, target in {route.path: target for route, target in routes}.items():
        if not any(route.method == "OPTIONS" and route.path == path for route, _ in routes):
            add_route(resources, Route("OPTIONS", path), target, "none")
    for kind in ("4XX", "5XX"):
        resources[f"GatewayResponseDefault{kind}"] = {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": {
                "RestApiId": ref(API_ID),
                "ResponseType": f"DEFAULT_{kind}",
                # A header mapping value is a quoted literal.
                "ResponseParameters": {"gatewayresponse.header.Access-Control-Allow-Origin": f"'{origin}'"},
            },
        }
    renew_deployment(resources)


__all__ = [
    "DeployOverrides",
    "apply_overrides",
    "enable_cors",
    "enable_snapstart",
    "has_version",
    "stamp_version",
]
