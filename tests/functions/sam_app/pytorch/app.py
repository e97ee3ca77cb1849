"""Stands in for the guide's classifier: echoes the request and the model's location."""

from __future__ import annotations

import json
import os
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = event.get("body")
    request = json.loads(body) if isinstance(body, str) else body
    print(f"classifying {request}")
    answer = {
        "url": (request or {}).get("url"),
        "model": f"s3://{os.environ.get('MODEL_BUCKET')}/{os.environ.get('MODEL_KEY')}",
        "model_uri": os.environ.get("MODEL_URI"),
        "from_globals": os.environ.get("FROM_GLOBALS"),
        "undeclared": os.environ.get("ONLY_IN_ENV_JSON"),
        "everywhere": os.environ.get("FOR_EVERY_FUNCTION"),
    }
    return {"statusCode": 200, "body": json.dumps(answer)}
