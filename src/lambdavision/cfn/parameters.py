"""Template parameters: the one `--parameter-overrides` parser, and the values a template runs with.

Every command that takes `--parameter-overrides` (`local invoke`, `local start-api`, `deploy`) and
`lambdavision.toml`'s `parameter-overrides` table go through `parse_parameter_overrides`. It takes
each argument as shell words, so all of these mean the same:

    --parameter-overrides BucketName=b ObjectKey=k          (SAM's words)
    --parameter-overrides 'BucketName=b ObjectKey=k'        (one quoted string)
    --parameter-overrides ParameterKey=BucketName,ParameterValue=b   (CloudFormation's form)
    --parameter-overrides "Greeting='hello world'"          (a quoted value with spaces)

In CloudFormation's form everything after `ParameterValue=` is the value, commas included (a
CommaDelimitedList). A word that is not shell syntax (an unbalanced quote, `Name=O'Brien`) is taken
as it is.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from lambdavision.cfn.document import TemplateError

_CFN_FORM = re.compile(r"ParameterKey=(?P<key>[^,]*),ParameterValue=(?P<value>.*)", re.DOTALL)
FORMS = "KEY=VALUE (or ParameterKey=KEY,ParameterValue=VALUE)"


def parse_parameter_overrides(values: Sequence[str]) -> dict[str, str]:
    """{name: value} from `--parameter-overrides` arguments in any of the forms above."""
    overrides: dict[str, str] = {}
    for value in values:
        try:
            words = shlex.split(value)
        except ValueError as exc:
            if any(c.isspace() for c in value):
                raise TemplateError(f"bad --parameter-overrides {value!r}: {exc}") from exc
            words = [value]
        for word in words:
            match = _CFN_FORM.fullmatch(word)
            if match:
                key, val = match.group("key"), match.group("value")
            else:
                key, sep, val = word.partition("=")
                if not sep:
                    raise TemplateError(f"bad --parameter-overrides {word!r}: expected {FORMS}")
            if not key or key.startswith("ParameterKey"):
                raise TemplateError(f"bad --parameter-overrides {word!r}: expected {FORMS}")
            overrides[key] = val
    return overrides


def check_overrides(template: Mapping[str, Any], overrides: Mapping[str, str], source: str) -> None:
    """Refuse an override for a parameter the template does not declare, naming those it does."""
    declared = template.get("Parameters") or {}
    if not isinstance(declared, Mapping):
        raise TemplateError(f"{source}: Parameters must be a mapping")
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(
            f"{source} has no parameter {', '.join(unknown)} (not in the template; it declares: "
            f"{', '.join(declared) or 'no parameters'})"
        )


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str], source: str) -> dict[str, Any]:
    """Each parameter's value: the override, else its Default (a list for list types).

    A parameter with neither is left out, so a `Ref` to it is known to have no value.
    """
    check_overrides(template, overrides, source)
    values: dict[str, Any] = {}
    for name, definition in (template.get("Parameters") or {}).items():
        definition = definition if isinstance(definition, Mapping) else {}
        if name in overrides:
            text = overrides[name]
        elif "Default" in definition:
            text = _as_text(definition["Default"])
        else:
            continue
        kind = str(definition.get("Type", "String"))
        listed = kind.startswith("List<") or kind == "CommaDelimitedList"
        values[name] = [item.strip() for item in text.split(",")] if listed else text
    return values


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_as_text(item) for item in value)
    return "" if value is None else str(value)


__all__ = ["FORMS", "check_overrides", "parameter_values", "parse_parameter_overrides"]
