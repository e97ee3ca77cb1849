"""The edits `init` and `deploy` share: deploy's overrides and CORS (SnapStart is `aws.snapstart`).

`build_template` applies CORS with `enable_cors`; `apply_overrides` edits a (packaged) template for
`deploy --memory/--arch/--snapstart/--cors-origin` with the same functions. Nothing here touches AWS
or the file system.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdavision.aws.api_resources import (
    add_route,
    proxied_routes,
    renew_deployment,
)
from lambdavision.aws.snapstart import disable_snapstart, enable_snapstart, sam_snapstart
from lambdavision.aws.template_names import (
    API_ID,
    CORS_ENV,
    FUNCTION_ID,
    SUPPORTED_RUNTIMES,
    Route,
    check_architecture,
    check_memory,
    check_origin,
    ref,
)
from lambdavision.core.errors import TemplateOptionError

_FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")


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
            sam_snapstart(properties, overrides.snapstart)
        elif function_id != FUNCTION_ID:
            raise TemplateOptionError(
                f"deploy --snapstart edits templates made by `lambdavision init`; {source} has no {FUNCTION_ID}"
            )
        elif overrides.snapstart:
            enable_snapstart(out)
        else:
            disable_snapstart(out)
    return out


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


__all__ = ["DeployOverrides", "apply_overrides", "enable_cors"]
