"""env.json (SAM's `-n` / `--env-vars` file): per-function variables laid over the template's.

Its shape is `{"FnId": {"VAR": "value"}, "Parameters": {...}}`, where "Parameters" applies to every
function. Unlike SAM, a variable set there is set even when the template does not declare it. A
section naming no function of the template is reported (`unmatched_sections`), with the closest
name, since SAM ignores it silently and a misspelt name then looks like a missing variable.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from lambdavision.cfn import FunctionSpec, environment_variable
from lambdavision.core.errors import TemplateError

SHARED_SECTION = "Parameters"


def load_env_file(path: Path) -> dict[str, dict[str, str]]:
    """env.json as {"FnId" | "Parameters": {"VAR": "value"}}; values become strings."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TemplateError(f"no such env file: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read env file {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from exc
    return parse_env_document(document, str(path))


def parse_env_document(document: Any, source: str = "env.json") -> dict[str, dict[str, str]]:
    if not isinstance(document, dict):
        raise TemplateError(f'{source} must be a JSON object like {{"FunctionName": {{"VAR": "value"}}}}')
    parsed: dict[str, dict[str, str]] = {}
    for section, variables in document.items():
        if not isinstance(variables, dict):
            raise TemplateError(f'{source}: "{section}" must be an object of variables, got {type(variables).__name__}')
        where = f"{source}: {section}"
        parsed[str(section)] = dict(environment_variable(name, value, where) for name, value in variables.items())
    return parsed


def apply_env_file(spec: FunctionSpec, env_file: Mapping[str, Mapping[str, str]]) -> FunctionSpec:
    """The spec with env.json's "Parameters" then its own section laid over the template's variables."""
    environment = dict(spec.environment)
    environment.update(env_file.get(SHARED_SECTION, {}))
    environment.update(env_file.get(spec.logical_id, {}))
    return replace(spec, environment=environment)


def unmatched_sections(env_file: Mapping[str, Any], function_ids: Iterable[str], source: str = "env.json") -> list[str]:
    """A warning for each section naming no function, with the closest function name if any."""
    known = sorted(function_ids)
    warnings = []
    for section in env_file:
        if section == SHARED_SECTION or section in known:
            continue
        close = difflib.get_close_matches(section, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else f" (the template's functions: {', '.join(known) or 'none'})"
        warnings.append(f"{source}: {section!r} matches no function of the template, so it is ignored{hint}")
    return warnings


__all__ = ["SHARED_SECTION", "apply_env_file", "load_env_file", "parse_env_document", "unmatched_sections"]
