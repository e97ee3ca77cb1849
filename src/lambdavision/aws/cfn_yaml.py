"""CloudFormation templates as YAML: `dump_template` writes the short tags (`!Ref`, `!Sub`,
`!GetAtt`) in the dict's own order; `load_template` reads YAML or JSON back, short tags included,
into their long JSON forms."""

from __future__ import annotations

from typing import Any

import yaml

from lambdavision.aws.template_names import TemplateOptionError


class _TemplateDumper(yaml.SafeDumper):
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


_TemplateDumper.add_representer(dict, _represent_dict)


def dump_template(template: dict[str, Any]) -> str:
    """The template as YAML, short tags and all, in the dict's own order."""
    text: str = yaml.dump(template, Dumper=_TemplateDumper, sort_keys=False, default_flow_style=False, width=1000)
    return text


class _TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags, read into their long JSON forms."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _construct_tag)


def _json_safe_timestamps(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    # `Version: 2012-10-17` unquoted is a policy version string, not a date.
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_TemplateLoader.add_constructor("tag:yaml.org,2002:timestamp", _json_safe_timestamps)


def load_template(text: str, *, source: str = "template") -> dict[str, Any]:
    """Parse a JSON or YAML CloudFormation template; a malformed one raises TemplateOptionError."""
    try:
        data = yaml.load(text, Loader=_TemplateLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise TemplateOptionError(f"{source}: not a valid YAML or JSON template ({exc})".replace("\n", " ")) from exc
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise TemplateOptionError(f"{source}: not a CloudFormation template (no Resources mapping)")
    return data


__all__ = [
    "dump_template",
    "load_template",
]
