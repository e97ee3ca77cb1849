"""A tiny proxy-integration handler for the start-api tests; `?action=` picks a behaviour.

Without an action it echoes the event fields the gateway filled. Timestamps and the process id
let a test prove that two requests ran at the same time in two environments.
"""

from __future__ import annotations

import base64
import json
import os
import time
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
