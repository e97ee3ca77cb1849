"""Echoes what the function receives: the event, its type, the process and selected variables."""

from __future__ import annotations

import os
from typing import Any

INIT_PID = os.getpid()


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    names = event.get("env", []) if isinstance(event, dict) else []
    return {
        "event": event,
        "event_type": type(event).__name__,
        "pid": os.getpid(),
        "init_pid": INIT_PID,
        "cwd": os.getcwd(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env": {name: os.environ.get(name) for name in names},
    }
