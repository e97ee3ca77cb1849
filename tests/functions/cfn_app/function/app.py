"""Echoes the model location and the request, in the API Gateway proxy answer shape."""

from __future__ import annotations

import json
import os
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    answer = {
        "model": f"s3://{os.environ.get('MODEL_BUCKET')}/{os.environ.get('MODEL_KEY')}",
        "memory": context.memory_limit_in_mb,
        "body": event.get("body"),
    }
    return {"statusCode": 200, "body": json.dumps(answer)}
