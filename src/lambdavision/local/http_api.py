"""What an HTTP API (API Gateway v2, payload format 2.0) does differently from a REST API.

It has no binary media types: a request body that is not text reaches the function base64-encoded.
Its answer may be any JSON: an object with a `statusCode` is a proxy answer (its base64 body
decoded for every client, its `cookies` sent as Set-Cookie), anything else a 200 whose body is
that JSON.
"""

from __future__ import annotations

import json

from lambdavision.core.proxy_response import parse_proxy_response

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/x-www-form")


def is_text_media_type(content_type: str | None) -> bool:
    """Whether an HTTP API passes a body of this type as text (else it base64-encodes it)."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return not mime or mime.startswith(_TEXT_TYPES) or mime.endswith(("+json", "+xml"))


def http_api_answer(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) for the function's answer; ValueError for what would be a 502."""
    answer = json.loads(payload)
    if not (isinstance(answer, dict) and "statusCode" in answer):
        return 200, [("Content-Type", "application/json")], payload.strip()
    proxy = parse_proxy_response(answer)
    cookies = answer.get("cookies") or []
    if not isinstance(cookies, list):
        raise ValueError("cookies must be a list")
    headers = [*proxy.headers, *(("Set-Cookie", str(cookie)) for cookie in cookies)]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return proxy.status, headers, proxy.body


__all__ = ["http_api_answer", "is_text_media_type"]
