"""Names, accepted values and checks shared by the template modules.

The logical ids and environment variables of the app `lambdavision init` writes (the guide's
names, so its commands work unchanged), the option values Lambda and CloudFormation accept with
the checks that name the first one they would refuse, and `Route`, one proxied API method.
`template` builds with them, `template_edits` and `api_resources` edit with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lambdavision.core.errors import TemplateOptionError

FUNCTION_ID = "PyTorchFunction"
ROLE_ID = "PyTorchFunctionRole"
LOG_GROUP_ID = "PyTorchFunctionLogGroup"
API_ID = "RestApi"
# The version's logical id ends with a hash of what it publishes (see `template_edits.stamp_version`).
VERSION_PREFIX = "PyTorchFunctionVersion"
ALIAS_ID = "PyTorchFunctionAliaslive"
ALIAS_NAME = "live"
STAGE_NAME = "Prod"
API_KEY_ID = "PyTorchApiKey"
USAGE_PLAN_ID = "PyTorchUsagePlan"
USAGE_PLAN_KEY_ID = "PyTorchUsagePlanKey"
PAGE_ENV = "LAMBDAVISION_PAGE"
CORS_ENV = "LAMBDAVISION_CORS_ORIGIN"

DEFAULT_RUNTIME = "python3.12"
# onnxruntime's manylinux_2_28 wheels need glibc 2.28: only the Amazon Linux 2023 runtimes have it.
# SnapStart for Python also starts at python3.12.
SUPPORTED_RUNTIMES = ("python3.12", "python3.13", "python3.14")
ARCHITECTURES = ("x86_64", "arm64")
AUTH_MODES = ("none", "iam", "key")
# The values CloudWatch Logs accepts for RetentionInDays.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
BINARY_MEDIA_TYPES = ("image/*", "application/octet-stream")

_ORIGIN = re.compile(r"\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+|\{[A-Za-z0-9_]+\+?\}")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")


@dataclass(frozen=True)
class Route:
    """One API Gateway method that proxies to the function (`POST /invocations`)."""

    method: str
    path: str


def check_origin(origin: str) -> None:
    """An Access-Control-Allow-Origin value: `*` or `scheme://host[:port]`, nothing more."""
    if not _ORIGIN.fullmatch(origin):
        raise TemplateOptionError(
            f"CORS origin {origin!r} is not an origin: use scheme://host[:port] "
            "(e.g. https://example.org, no path or trailing slash) or *"
        )


def check_runtime(runtime: str) -> None:
    if runtime not in SUPPORTED_RUNTIMES:
        why = ""
        if re.fullmatch(r"python3\.([0-9]|1[01])", runtime):
            why = (
                f" ({runtime} runs on Amazon Linux 2, whose glibc 2.26 cannot load onnxruntime's manylinux_2_28 wheels)"
            )
        raise TemplateOptionError(
            f"runtime {runtime!r} is not supported{why}: use one of {', '.join(SUPPORTED_RUNTIMES)}"
        )


def check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise TemplateOptionError(f"architecture {architecture!r} is not one of {', '.join(ARCHITECTURES)}")


def check_memory(memory: int) -> None:
    if not 128 <= memory <= 10240:
        raise TemplateOptionError(f"memory {memory} MB is outside Lambda's 128..10240 MB")


def check_route(route: Route) -> None:
    if route.method.upper() not in _METHODS:
        raise TemplateOptionError(f"route method {route.method!r} is not one of {', '.join(_METHODS)}")
    if not route.path.startswith("/"):
        raise TemplateOptionError(f"route path {route.path!r} must start with /")
    for segment in segments(route.path):
        if not _SEGMENT.fullmatch(segment):
            raise TemplateOptionError(f"route path {route.path!r} has an invalid segment {segment!r}")


def segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def ref(name: str) -> dict[str, Any]:
    """CloudFormation's `Ref` to a parameter or resource."""
    return {"Ref": name}


__all__ = [
    "ALIAS_ID",
    "ALIAS_NAME",
    "API_ID",
    "API_KEY_ID",
    "ARCHITECTURES",
    "AUTH_MODES",
    "BINARY_MEDIA_TYPES",
    "CORS_ENV",
    "DEFAULT_RUNTIME",
    "FUNCTION_ID",
    "LOG_GROUP_ID",
    "LOG_RETENTION_DAYS",
    "PAGE_ENV",
    "ROLE_ID",
    "STAGE_NAME",
    "SUPPORTED_RUNTIMES",
    "USAGE_PLAN_ID",
    "USAGE_PLAN_KEY_ID",
    "VERSION_PREFIX",
    "Route",
    "TemplateOptionError",
    "check_architecture",
    "check_memory",
    "check_origin",
    "check_route",
    "check_runtime",
    "ref",
    "segments",
]
