"""Describes the event it gets; `?plain=1` answers plain JSON (no statusCode), as HTTP APIs allow."""

from __future__ import annotations

import json
import os
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    described = {
        "version": event.get("version", "1.0"),
        "routeKey": event.get("routeKey"),
        "resource": event.get("resource"),
        "pathParameters": event.get("pathParameters"),
        "isBase64Encoded": event.get("isBase64Encoded"),
        "body": event.get("body"),
        "bucket": os.environ.get("MODEL_BUCKET"),
    }
    if (event.get("queryStringParameters") or {}).get("plain"):
        return described
    return {"statusCode": 201, "headers": {"Content-Type": "application/json"}, "body": json.dumps(described),
            "cookies": ["seen=1"]}  # fmt: skip
