"""Templates as text: the one reader (JSON, or YAML with CloudFormation's short tags) and writer.

`parse_template` reads JSON or YAML into CloudFormation's long JSON forms: `!Ref x` becomes
{"Ref": "x"}, `!GetAtt a.b` {"Fn::GetAtt": ["a", "b"]}, `!Sub ...` {"Fn::Sub": ...}, with the
tag constructor of aws-sam-translator (the library AWS runs the SAM transform with), on a loader
of our own so the process's `yaml.SafeLoader` is left alone. An error names the file, the line
and the column. `dump_template` writes the short tags back, in the dict's own order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from samtranslator.yaml_helper import intrinsics_multi_constructor

from lambdavision.core.errors import TemplateError

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags, read into their long JSON forms."""


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    # `Version: 2012-10-17` unquoted is a policy version string, not a date.
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", intrinsics_multi_constructor)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


class _Dumper(yaml.SafeDumper):
    """Block-style YAML; intrinsic functions as short tags; no key sorting; no anchors/aliases
    (CloudFormation rejects them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    if len(data) == 1:
        ((key, value),) = data.items()
        if key == "Ref":
            return dumper.represent_scalar("!Ref", value)
        if key == "Fn::GetAtt" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return dumper.represent_scalar("!GetAtt", ".".join(value))
        if key.startswith("Fn::") and key != "Fn::Transform":
            tag = "!" + key[len("Fn::") :]
            if isinstance(value, list):
                return dumper.represent_sequence(tag, value)
            if isinstance(value, dict):
                return dumper.represent_mapping(tag, value)
            return dumper.represent_scalar(tag, str(value))
    return dumper.represent_dict(data.items())


_Dumper.add_representer(dict, _represent_dict)


def dump_template(template: dict[str, Any]) -> str:
    """The template as YAML, short tags and all, in the dict's own order."""
    text: str = yaml.dump(template, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    return text


def parse_template(text: str, source: str = "template") -> dict[str, Any]:
    """The template as a dict; TemplateError naming `source`, the line and the column when it is not one."""
    try:
        document = json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, Loader=_Loader)
    except json.JSONDecodeError as exc:
        raise TemplateError(
            f"{source}, line {exc.lineno}, column {exc.colno}: the template is not valid YAML or JSON: {exc.msg}"
        ) from exc
    except yaml.MarkedYAMLError as exc:
        raise TemplateError(f"{source}{_yaml_error(exc)}") from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"{source}: the template is not valid YAML or JSON: {' '.join(str(exc).split())}") from exc
    if not isinstance(document, dict):
        raise TemplateError(f"{source} is not a CloudFormation template (no mapping at the top)")
    if not isinstance(document.get("Resources"), dict) or not document["Resources"]:
        raise TemplateError(f"{source} is not a CloudFormation template: it has no Resources")
    return document


def _yaml_error(exc: yaml.MarkedYAMLError) -> str:
    """`, line L, column C: ... problem (while parsing X that starts at line L')`."""
    mark = exc.problem_mark or exc.context_mark
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    text = f"{where}: the template is not valid YAML or JSON: {' '.join(str(exc.problem or exc.context).split())}"
    if (
        exc.context
        and exc.problem
        and exc.context_mark is not None
        and exc.context_mark.line != getattr(mark, "line", -1)
    ):
        start = exc.context_mark
        text += f" ({exc.context} that starts at line {start.line + 1}, column {start.column + 1})"
    return text


def read_template(path: Path) -> dict[str, Any]:
    """The template in the file `path`, parsed (TemplateError when missing or unreadable)."""
    return parse_template(read_template_text(path), str(path))


def read_template_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise TemplateError(f"no such template: {path} (the file does not exist)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read template {path}: {exc}") from exc


def is_sam(template: dict[str, Any]) -> bool:
    """Whether the template is SAM: it declares SAM's transform, or uses `AWS::Serverless::` resources."""
    transform = template.get("Transform")
    names = transform if isinstance(transform, list) else [transform]
    resources = template.get("Resources")
    return SAM_TRANSFORM in names or (
        isinstance(resources, dict)
        and any(
            isinstance(r, dict) and str(r.get("Type", "")).startswith("AWS::Serverless::") for r in resources.values()
        )
    )


__all__ = [
    "SAM_TRANSFORM",
    "TemplateError",
    "dump_template",
    "is_sam",
    "parse_template",
    "read_template",
    "read_template_text",
]
