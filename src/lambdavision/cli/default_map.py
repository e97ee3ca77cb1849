"""click's `default_map` from the config file (`aws.config`): per-command flag defaults, so a flag given
on the command line always wins; unknown commands or flags in the file are errors."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from lambdavision.aws.config import GLOBAL_TABLE, find_config
from lambdavision.core.errors import OptionsFileError


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


__all__ = ["build_default_map", "load_default_map"]
