"""What the function says about its time: the `Server-Timing` header and the "model loaded" log line."""

from __future__ import annotations

import json
import re

_TIMING = re.compile(r"([A-Za-z0-9_.-]+)\s*;[^,]*?\bdur=([0-9]+(?:\.[0-9]+)?)")
_LOADED = re.compile(r"model loaded from \S+ in ([0-9]+(?:\.[0-9]+)?) ms(?: \(([^)]*)\))?")
_PART = re.compile(r"([A-Za-z_ -]+?) ([0-9]+(?:\.[0-9]+)?) ms")


def parse_server_timing(header: str) -> dict[str, float]:
    """`fetch;dur=1.2, decode;dur=3.4` -> {"fetch": 1.2, "decode": 3.4}."""
    return {name: float(value) for name, value in _TIMING.findall(header)}


def parse_load_line(log_text: str) -> tuple[float | None, dict[str, float]]:
    """How long the model took to load, from the function's log, and its parts when given.

    Two shapes: lambdavision's JSON line `{"message": "model loaded", "init_ms": N, "<part>_ms": N}`
    and the text line `model loaded from X in N ms (part N ms, ...)` (the baseline's).
    """
    for line in log_text.splitlines():
        start = line.find("{")
        if start < 0 or "model loaded" not in line:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("message") == "model loaded":
            numbers = {
                key[:-3]: float(value)
                for key, value in record.items()
                if key.endswith("_ms") and isinstance(value, int | float) and not isinstance(value, bool)
            }
            total = numbers.pop("init", None)
            if total is None:
                total = numbers.pop("load", None)
            return total, numbers
    match = _LOADED.search(log_text)
    if match is None:
        return None, {}
    parts = {name.strip(): float(value) for name, value in _PART.findall(match.group(2) or "")}
    return float(match.group(1)), parts


__all__ = ["parse_load_line", "parse_server_timing"]
