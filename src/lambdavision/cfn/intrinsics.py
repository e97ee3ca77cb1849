"""Intrinsic functions, resolved as far as a template alone allows.

`Ref` to parameters and pseudo parameters, `Fn::Sub`, `Fn::Join`, `Fn::Select`, `Fn::If` with the
template's Conditions (`Fn::Equals`, and `Fn::And`/`Fn::Or`/`Fn::Not`, which the SAM transform
writes for conditional resources). What only a deployed stack knows (`Fn::GetAtt`, a `Ref` to a
resource, `Fn::ImportValue`) resolves to "" — or, through `resolve_required`, to an error naming
the property, for the properties a command cannot do without (Runtime, Architectures).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from lambdavision.cfn.document import TemplateError

LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_STACK_NAME = "local"
SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class Resolver:
    """Resolves intrinsic functions against parameter values, pseudo parameters and conditions."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, Any],
        region: str = "us-east-1",
        *,
        local_stack: bool = True,
    ) -> None:
        """`local_stack=False`: the account and stack are not known (checks before a real deploy), so
        `Ref`s to them have no value, instead of the local stand-in's."""
        self._template = template
        local: dict[str, Any] = {
            "AWS::AccountId": LOCAL_ACCOUNT_ID,
            "AWS::StackName": LOCAL_STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{LOCAL_ACCOUNT_ID}:stack/{LOCAL_STACK_NAME}/local",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self._values: dict[str, Any] = {
            "AWS::Region": region,
            **(local if local_stack else {}),
            "AWS::Partition": "aws",
            "AWS::NoValue": None,
            **parameters,
        }
        self._conditions: dict[str, bool] = {}
        self._evaluating: set[str] = set()

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._values.get(str(argument), "")
            if key.startswith("Fn::") or key == "Condition":
                return self._function(key, argument)
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not None}

    def resolve_str(self, value: Any) -> str:
        return as_env_value(self.resolve(value))

    def resolve_required(self, value: Any, where: str) -> Any:
        """`resolve`, but a `Ref` to anything without a value here is an error naming `where`."""
        for name in referenced_ids(value):
            if name not in self._values:
                raise TemplateError(f"{where} refers to {name!r}, which is not a parameter with a Default")
        return self.resolve(value)

    def resolve_known(self, value: Any) -> Any:
        """`resolve` when everything `value` refers to has a value here; None when anything does not."""
        if any(name not in self._values for name in referenced_ids(value)):
            return None
        return self.resolve(value)

    def active(self, resource: Mapping[str, Any]) -> bool:
        """Whether a resource's Condition (if any) holds."""
        condition = resource.get("Condition")
        return condition is None or self.condition(str(condition))

    def condition(self, name: str) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        if name in self._evaluating:  # a cycle: treat as false rather than recursing forever
            return False
        self._evaluating.add(name)
        conditions = self._template.get("Conditions") or {}
        result = self._truth(conditions.get(name, False))
        self._evaluating.discard(name)
        self._conditions[name] = result
        return result

    def _truth(self, value: Any) -> bool:
        resolved = self.resolve(value)
        return resolved is True or (isinstance(resolved, str) and resolved.lower() == "true")

    def _function(self, name: str, argument: Any) -> Any:
        pair = isinstance(argument, list) and len(argument) == 2
        if name == "Condition":
            return self.condition(str(argument))
        if name == "Fn::Sub":
            return self._sub(argument)
        if name == "Fn::Join" and pair:
            items = self.resolve(argument[1])
            items = items if isinstance(items, list) else [items]
            return str(self.resolve(argument[0])).join(as_env_value(item) for item in items)
        if name == "Fn::Select" and pair:
            items = self.resolve(argument[1])
            try:
                return items[int(self.resolve(argument[0]))] if isinstance(items, list) else ""
            except (ValueError, IndexError):
                return ""
        if name == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
            return self.resolve(argument[1] if self.condition(str(argument[0])) else argument[2])
        if name == "Fn::Equals" and pair:
            return as_env_value(self.resolve(argument[0])) == as_env_value(self.resolve(argument[1]))
        if name == "Fn::Not" and isinstance(argument, list) and len(argument) == 1:
            return not self._truth(argument[0])
        if name == "Fn::And" and isinstance(argument, list):
            return all(self._truth(item) for item in argument)
        if name == "Fn::Or" and isinstance(argument, list):
            return any(self._truth(item) for item in argument)
        # Fn::GetAtt, Fn::ImportValue...: only a deployed stack knows them.
        return ""

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
            text, local_values = argument[0], {k: self.resolve(v) for k, v in argument[1].items()}
        else:
            text, local_values = argument, {}
        if not isinstance(text, str):
            return ""

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in local_values:
                return as_env_value(local_values[name])
            return as_env_value(self._values.get(name, ""))  # "Res.Attr" and resources resolve to ""

        # "${!Literal}" is CloudFormation's escape for a literal "${Literal}".
        return SUB_VARIABLE.sub(substitute, text).replace("${!", "${")


def as_env_value(value: Any) -> str:
    """A template or env.json value as the string Lambda would put in the environment."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(as_env_value(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def referenced_ids(value: Any) -> Iterator[str]:
    """Names a value mentions through Ref, Fn::GetAtt or ${...} in Fn::Sub (logical ids, parameters)."""
    if isinstance(value, list):
        for item in value:
            yield from referenced_ids(item)
    elif isinstance(value, dict):
        for key, argument in value.items():
            if key == "Ref" and isinstance(argument, str):
                yield argument
            elif key == "Fn::GetAtt":
                target = argument[0] if isinstance(argument, list) and argument else argument
                if isinstance(target, str):
                    yield target.partition(".")[0]
            elif key == "Fn::Sub":
                text = argument[0] if isinstance(argument, list) and argument else argument
                local = argument[1] if isinstance(argument, list) and len(argument) > 1 else {}
                if isinstance(text, str):
                    for name in SUB_VARIABLE.findall(text):
                        name = name.strip()
                        if not (isinstance(local, dict) and name in local):
                            yield name.partition(".")[0]
                if isinstance(argument, list):
                    yield from referenced_ids(argument[1:])
            else:
                yield from referenced_ids(argument)


__all__ = ["LOCAL_ACCOUNT_ID", "LOCAL_STACK_NAME", "Resolver", "as_env_value", "referenced_ids"]
