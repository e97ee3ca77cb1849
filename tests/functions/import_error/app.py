"""Fails at import: the module it needs does not exist."""

from __future__ import annotations

from typing import Any

import lambdavision_fixture_no_such_module  # noqa: F401


def lambda_handler(event: Any, context: Any) -> str:
    return "unreachable"
