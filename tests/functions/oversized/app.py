"""Answers more than Lambda's 6 MB synchronous response limit (or a small answer on request)."""

from __future__ import annotations

import os
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    if event.get("small"):
        return {"pid": os.getpid()}
    return "x" * (7 * 1024 * 1024)
