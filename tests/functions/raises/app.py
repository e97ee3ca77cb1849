"""Raises on every call: the caller must get Lambda's error payload."""

from __future__ import annotations

from typing import Any


class ModelNotReady(Exception):
    pass


def _check(value: Any) -> None:
    raise ModelNotReady(f"cannot classify {value!r}")


def lambda_handler(event: dict[str, Any], context: Any) -> None:
    _check(event.get("value"))
