"""Sleeps, or waits for a file another invocation creates, recording when it ran."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "create" in event:  # the second caller: prove it ran while the first was still running
        Path(event["create"]).write_text(str(os.getpid()))
        return {"created": event["create"], "pid": os.getpid()}
    if "started" in event:
        Path(event["started"]).write_text(str(os.getpid()))
        go = Path(event["go"])
        give_up = time.monotonic() + float(event.get("max_wait", 20))
        while not go.exists() and time.monotonic() < give_up:
            time.sleep(0.01)
        return {"saw_go": go.exists(), "pid": os.getpid()}
    time.sleep(float(event.get("seconds", 0)))
    return {"slept": event.get("seconds", 0), "pid": os.getpid()}
