"""Allocates (and touches) more memory than its MemorySize allows."""

from __future__ import annotations

import os
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    held = [bytearray(b"\x01" * (10 * 1024 * 1024)) for _ in range(int(event.get("megabytes", 0)) // 10)]
    return {"held_mb": 10 * len(held), "pid": os.getpid()}
