"""Ends its own process mid-invocation, as a crash would."""

from __future__ import annotations

import ctypes
import os
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("how") == "exit":
        os._exit(3)
    if event.get("how") == "segfault":
        ctypes.string_at(0)
    return {"pid": os.getpid()}
