"""The variables a local environment's runtime process gets, as Lambda sets them: the calling shell's AWS
credentials / region / endpoint (so it reads the same S3 as the shell), Lambda's own, the function's,
and the Runtime API's address."""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from lambdavision.cfn import LOCAL_ACCOUNT_ID, FunctionSpec
from lambdavision.local.built import LambdaLayout

# What passes from the calling shell into the function: where its AWS calls go and as whom.
PASS_THROUGH_NAMES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CA_BUNDLE",
        "AWS_MAX_ATTEMPTS",
        "AWS_RETRY_MODE",
        "AWS_STS_REGIONAL_ENDPOINTS",
        "AWS_USE_FIPS_ENDPOINT",
        "AWS_USE_DUALSTACK_ENDPOINT",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "HOME",  # ~/.aws/config and ~/.aws/credentials are found through it
        "PATH",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    }
)
PASS_THROUGH_PREFIXES = ("AWS_ENDPOINT_URL", "LAMBDAVISION_")


def default_region(shell_env: Mapping[str, str]) -> str:
    return shell_env.get("AWS_REGION") or shell_env.get("AWS_DEFAULT_REGION") or "us-east-1"


def function_arn(spec: FunctionSpec, region: str) -> str:
    return f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{spec.logical_id}"


def log_stream_name(now: datetime | None = None) -> str:
    """Lambda's shape: `2024/01/31/[$LATEST]<32 hex>`."""
    day = (now or datetime.now(UTC)).strftime("%Y/%m/%d")
    return f"{day}/[$LATEST]{secrets.token_hex(16)}"


def trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def lambda_environment(
    spec: FunctionSpec,
    *,
    runtime_api: str,
    shell_env: Mapping[str, str],
    extra_env: Mapping[str, str] | None = None,
    layout: LambdaLayout | None = None,
) -> dict[str, str]:
    """The environment of the runtime process, lowest precedence first.

    shell pass-through < what Lambda sets < the function's variables (template + env.json)
    < extra_env; the Runtime API address, the handler and (with a layout) PYTHONPATH are always ours.
    """
    region = default_region(shell_env)
    code_dir = str(spec.code_dir)
    environment = {
        name: value
        for name, value in shell_env.items()
        if name in PASS_THROUGH_NAMES or name.startswith(PASS_THROUGH_PREFIXES)
    }
    environment.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.logical_id}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name(),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "LAMBDA_TASK_ROOT": code_dir,
            "LAMBDA_RUNTIME_DIR": str(Path(sys.executable).parent),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
        }
    )
    environment.update(spec.environment)
    environment.update(extra_env or {})
    if layout is not None:
        # Read by local/bootstrap.py (-I makes Python itself ignore it): the package, its layers, the runtime.
        environment["LAMBDA_RUNTIME_DIR"] = str(layout.runtime_dir)
        environment["PYTHONPATH"] = os.pathsep.join(layout.python_path)
    else:
        environment["PYTHONPATH"] = os.pathsep.join(
            [code_dir, *[p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p and p != code_dir]]
        )
    environment["AWS_LAMBDA_RUNTIME_API"] = runtime_api
    environment["_HANDLER"] = spec.handler
    return environment


__all__ = [
    "PASS_THROUGH_NAMES",
    "PASS_THROUGH_PREFIXES",
    "default_region",
    "function_arn",
    "lambda_environment",
    "log_stream_name",
    "trace_id",
]
