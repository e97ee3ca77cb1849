"""A tiny proxy-integration handler for the start-api tests; `?action=` picks a behaviour.

Without an action it echoes the event fields the gateway filled. `meet` lets a test prove that
requests run at the same time in different environments, without relying on sleeps overlapping.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any


def _answer(body: Any, status: int = 200, **extra: Any) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body), **extra}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = (event.get("queryStringParameters") or {}).get("action", "echo")
    if action == "sleep":
        seconds = float(event["queryStringParameters"].get("seconds", "1"))
        start = time.time()
        time.sleep(seconds)
        return _answer({"start": start, "end": time.time(), "pid": os.getpid()})
    if action == "meet":
        # A rendezvous through files: each environment leaves its pid in `dir`, then waits until
        # `n` have (at most `wait` s). Requests served at once all meet; one at a time, the first
        # waits alone and says so.
        query = event["queryStringParameters"]
        folder, wanted = Path(query["dir"]), int(query.get("n", "2"))
        (folder / str(os.getpid())).touch()
        deadline = time.monotonic() + float(query.get("wait", "10"))
        while len(list(folder.iterdir())) < wanted and time.monotonic() < deadline:
            time.sleep(0.01)
        return _answer({"met": len(list(folder.iterdir())) >= wanted, "pid": os.getpid()})
    if action == "raise":
        raise RuntimeError("deliberate failure")
    if action == "malformed":
        return {"statusCode": "two hundred", "body": 42}
    if action == "huge":
        return _answer("x" * (7 * 1024 * 1024))
    if action == "binary":
        # Send the uploaded bytes back: they arrived base64-encoded and leave base64-encoded.
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "image/jpeg"},
            "body": event["body"] if event["isBase64Encoded"] else base64.b64encode(event["body"].encode()).decode(),
            "isBase64Encoded": True,
        }
    if action == "cookies":
        return {"statusCode": 200, "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}, "body": ""}
    fields = (
        "httpMethod",
        "path",
        "resource",
        "pathParameters",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "headers",
        "multiValueHeaders",
        "body",
        "isBase64Encoded",
    )
    echoed = {name: event.get(name) for name in fields}
    echoed["stage"] = event["requestContext"]["stage"]
    echoed["sourceIp"] = event["requestContext"]["identity"]["sourceIp"]
    echoed["requestId"] = event["requestContext"]["requestId"]
    echoed["lambdaRequestId"] = context.aws_request_id
    echoed["greeting"] = os.environ.get("GREETING")
    echoed["fromEnvFile"] = os.environ.get("ONLY_IN_ENV_FILE")
    return _answer(echoed)
