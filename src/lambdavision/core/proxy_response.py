"""A function's proxy answer read the way API Gateway's proxy integration reads it (the local gateway)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProxyResponse:
    """A function's proxy answer as the gateway sends it to the client."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def parse_proxy_response(result: Any) -> ProxyResponse:
    """Validate a function's answer the way API Gateway's proxy integration does.

    Raises ValueError for anything API Gateway would turn into a 502.
    """
    if not isinstance(result, Mapping):
        raise ValueError("the function's answer is not a JSON object")
    allowed = {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded", "cookies"}
    extra = set(result) - allowed
    if extra:
        raise ValueError(f"unexpected fields in the proxy answer: {sorted(extra)}")
    status = result.get("statusCode", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"invalid statusCode: {status!r}")
    headers: list[tuple[str, str]] = []
    single = result.get("headers")
    multi = result.get("multiValueHeaders")
    single = {} if single is None else single
    multi = {} if multi is None else multi
    if not isinstance(single, Mapping) or not isinstance(multi, Mapping):
        raise ValueError("headers must be objects")
    for key, value in single.items():
        if key not in multi:
            headers.append((str(key), str(value)))
    for key, values in multi.items():
        if not isinstance(values, list):
            raise ValueError(f"multiValueHeaders[{key!r}] must be a list")
        headers.extend((str(key), str(v)) for v in values)
    body = result.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        if result.get("isBase64Encoded"):
            try:
                data = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("isBase64Encoded body is not valid base64") from None
        else:
            data = body.encode("utf-8")
    else:
        raise ValueError("body must be a string")
    return ProxyResponse(status=status, headers=headers, body=data)


__all__ = ["ProxyResponse", "parse_proxy_response"]
