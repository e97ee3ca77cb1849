"""Per-command flag defaults from `lambdavision.toml` or `[tool.lambdavision]` in pyproject.toml.

Like SAM's samconfig.toml, but one table per command, keyed by the flag's long name:

    [global]                      # every command that has the flag
    region = "eu-west-1"

    [deploy]
    stack-name = "pytorch-sam-app"
    capabilities = ["CAPABILITY_IAM"]
    parameter-overrides = { BucketName = "my-bucket", ObjectKey = "models/model.tar.gz" }

    [local.start-api]             # a subcommand of a group
    port = 3000

The CLI turns it into click's `default_map` (cli/default_map.py), so a flag given on the command line
always wins. The file is
looked for from the working directory upwards (`LAMBDAVISION_CONFIG` names one explicitly); the
first `lambdavision.toml`, or pyproject.toml holding `[tool.lambdavision]`, is used.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lambdavision.core.errors import OptionsFileError

CONFIG_NAME = "lambdavision.toml"
ENV_VAR = "LAMBDAVISION_CONFIG"
GLOBAL_TABLE = "global"


def find_config(start: Path, environ: Mapping[str, str]) -> tuple[Path, dict[str, Any]] | None:
    """The config file that applies in `start` and its lambdavision table, or None."""
    explicit = environ.get(ENV_VAR)
    if explicit:
        path = Path(explicit)
        data = _read_toml(path)
        return path, _tool_table(data) if path.name == "pyproject.toml" else data
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate, _read_toml(candidate)
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            table = _tool_table(_read_toml(pyproject))
            if table:
                return pyproject, table
    return None


def write_config(path: Path, updates: Mapping[str, Mapping[str, Any]], base: Mapping[str, Any] | None = None) -> None:
    """Write `base` (a config table, e.g. the file's current one) with each command table of
    `updates` merged in, to `path` as TOML. Comments of an existing file are not kept."""
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in (base or {}).items()}
    for command, values in updates.items():
        merged.setdefault(command, {}).update(values)
    text = "".join(_toml_table([name], table) for name, table in merged.items())
    try:
        if tomllib.loads(text) != merged:  # what is written must read back as it was meant
            raise OptionsFileError(f"cannot write these settings to {path} as TOML")
    except tomllib.TOMLDecodeError as exc:
        raise OptionsFileError(f"cannot write these settings to {path} as TOML ({exc})") from exc
    path.write_text(text, encoding="utf-8")


def _toml_table(names: list[str], table: Mapping[str, Any]) -> str:
    """`[a.b]` and its `key = value` lines; a value that is a table of tables becomes sub-tables."""
    sub = {
        k: v
        for k, v in table.items()
        if isinstance(v, Mapping) and v and all(isinstance(x, Mapping) for x in v.values())
    }
    lines = [f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in table.items() if k not in sub]
    text = f"[{'.'.join(map(_toml_key, names))}]\n{''.join(lines)}\n" if lines or not sub else ""
    return text + "".join(_toml_table([*names, k], v) for k, v in sub.items())


def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "-_" for c in key) and key.isascii() else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise OptionsFileError(f"cannot write {value!r} to a config file")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise OptionsFileError(f"config file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise OptionsFileError(f"{path}: cannot read it as TOML ({exc})") from exc


def _tool_table(data: Mapping[str, Any]) -> dict[str, Any]:
    table = data.get("tool", {}).get("lambdavision", {})
    return dict(table) if isinstance(table, Mapping) else {}


__all__ = [
    "CONFIG_NAME",
    "ENV_VAR",
    "GLOBAL_TABLE",
    "OptionsFileError",
    "find_config",
    "write_config",
]
