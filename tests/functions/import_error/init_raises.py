"""Imports fine but its init code raises (a model that cannot be loaded, say)."""

from __future__ import annotations

from typing import Any

raise RuntimeError("the model could not be loaded")


def lambda_handler(event: Any, context: Any) -> str:
    return "unreachable"
