"""Writes log lines the ways functions do: print, logging, stderr, at import and per call."""

from __future__ import annotations

import logging
import sys
from typing import Any

logger = logging.getLogger()
logger.setLevel(logging.INFO)
print("loading the model")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    print(f"print line for {event.get('tag')}")
    logger.info("logging line for %s", event.get("tag"))
    sys.stderr.write(f"stderr line for {event.get('tag')}\n")
    sys.stdout.write("no newline at the end")
    return {"tag": str(event.get("tag"))}
