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

The result is click's `default_map`, so a flag given on the command line always wins. The file is
looked for from the working directory upwards (`LAMBDAVISION_CONFIG` names one explicitly); the
first `lambdavision.toml`, or pyproject.toml holding `[tool.lambdavision]`, is used.
"""

from __future__ import annotations

import json
import os
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

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


def build_default_map(group: click.Group, table: Mapping[str, Any], source: str) -> dict[str, Any]:
    """click's default_map for `group` from a config table; unknown commands or flags are errors."""
    shared = table.get(GLOBAL_TABLE, {})
    if not isinstance(shared, Mapping):
        raise OptionsFileError(f"{source}: [{GLOBAL_TABLE}] must be a table")
    result = _defaults_for_group(group, table, shared, source, prefix="")
    return result


def load_default_map(group: click.Group, cwd: Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The default_map that applies when lambdavision runs in `cwd` (empty without a config file)."""
    found = find_config(cwd, os.environ if environ is None else environ)
    if found is None:
        return {}
    path, table = found
    return build_default_map(group, table, str(path))


def _defaults_for_group(
    group: click.Group, table: Mapping[str, Any], shared: Mapping[str, Any], source: str, prefix: str
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in table.items():
        if prefix == "" and name == GLOBAL_TABLE:
            continue
        command = group.commands.get(name)
        if command is None:
            raise OptionsFileError(f"{source}: [{prefix}{name}] is not a lambdavision command")
        if not isinstance(value, Mapping):
            raise OptionsFileError(f"{source}: [{prefix}{name}] must be a table of flag = value")
        if isinstance(command, click.Group):
            result[name] = _defaults_for_group(command, value, shared, source, prefix=f"{prefix}{name}.")
        else:
            result[name] = _defaults_for_command(command, value, source, f"{prefix}{name}")
    # [global] entries go to every command that has the flag, below the command's own entries.
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            sub = _defaults_for_group(command, {}, shared, source, prefix=f"{prefix}{name}.")
            if sub:
                result.setdefault(name, {})
                for key, value in sub.items():
                    result[name].setdefault(key, value)
            continue
        params = {p.name for p in command.params if isinstance(p, click.Option)}
        for flag, value in shared.items():
            key = flag.replace("-", "_")
            if key in params:
                result.setdefault(name, {}).setdefault(key, _convert(command, key, value, source, GLOBAL_TABLE))
    return result


def _defaults_for_command(command: click.Command, values: Mapping[str, Any], source: str, where: str) -> dict[str, Any]:
    params = {p.name: p for p in command.params if isinstance(p, click.Option) and p.name}
    defaults: dict[str, Any] = {}
    for flag, value in values.items():
        key = flag.replace("-", "_")
        if key not in params:
            known = ", ".join(sorted(n.replace("_", "-") for n in params))
            raise OptionsFileError(f"{source}: [{where}] has no flag {flag!r} (it has: {known})")
        defaults[key] = _convert(command, key, value, source, where)
    return defaults


def _convert(command: click.Command, key: str, value: Any, source: str, where: str) -> Any:
    """TOML value -> what click expects: lists for repeatable flags, `K=V` strings from a table."""
    param = next(p for p in command.params if p.name == key)
    if isinstance(value, Mapping):
        # Quoted where needed, so a value with spaces stays one value for the override parser.
        value = [f"{k}={shlex.quote(str(v))}" for k, v in value.items()]
    if param.multiple or (param.nargs != 1):
        return list(value) if isinstance(value, list) else [value]
    if isinstance(value, (list, Mapping)):
        raise OptionsFileError(f"{source}: [{where}] {key.replace('_', '-')} takes one value, not a list")
    return value


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


def _is_table_of_tables(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(isinstance(x, Mapping) for x in value.values())


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
    "OptionsFileError",
    "build_default_map",
    "find_config",
    "load_default_map",
    "write_config",
]
