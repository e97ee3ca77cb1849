"""SnapStart in lambdavision's template: on published versions, a version + alias `live` the API calls,
and the version named after what it publishes (`stamp_version`), so a new zip or model publishes a new
one. Nothing here touches AWS or the file system."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from lambdavision.aws.api_resources import Target, renew_deployment, retarget
from lambdavision.aws.template_names import ALIAS_ID, ALIAS_NAME, FUNCTION_ID, VERSION_PREFIX, ref
from lambdavision.cfn.apigateway import replace_resource

_LAYER = "AWS::Lambda::LayerVersion"


def sam_snapstart(properties: dict[str, Any], on: bool) -> None:
    # SAM publishes the version and points the API's events at the alias itself.
    if on:
        properties["SnapStart"] = {"ApplyOn": "PublishedVersions"}
        properties["AutoPublishAlias"] = ALIAS_NAME
    else:
        properties.pop("SnapStart", None)
        properties.pop("AutoPublishAlias", None)


def enable_snapstart(template: dict[str, Any]) -> None:
    """SnapStart on published versions; a version + alias `live`; the API calls the alias."""
    resources: dict[str, Any] = template["Resources"]
    resources[FUNCTION_ID].setdefault("Properties", {})["SnapStart"] = {"ApplyOn": "PublishedVersions"}
    if ALIAS_ID in resources:
        return
    snapstart_resources = {
        VERSION_PREFIX: {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": ref(FUNCTION_ID)}},
        ALIAS_ID: {
            "Type": "AWS::Lambda::Alias",
            "Properties": {
                "FunctionName": ref(FUNCTION_ID),
                "FunctionVersion": {"Fn::GetAtt": [VERSION_PREFIX, "Version"]},
                "Name": ALIAS_NAME,
            },
        },
    }
    # Right after the function, so the file reads function -> version -> alias -> API.
    items = list(resources.items())
    resources.clear()
    for logical_id, resource in items:
        resources[logical_id] = resource
        if logical_id == FUNCTION_ID:
            resources.update(snapstart_resources)
    retarget(resources, Target.function(), Target.alias())
    renew_deployment(resources)


def disable_snapstart(template: dict[str, Any]) -> None:
    resources: dict[str, Any] = template["Resources"]
    resources[FUNCTION_ID].get("Properties", {}).pop("SnapStart", None)
    for logical_id in [k for k, v in resources.items() if _is_our_version(v)] + [ALIAS_ID]:
        resources.pop(logical_id, None)
    retarget(resources, Target.alias(), Target.function())
    renew_deployment(resources)


def _is_our_version(resource: Any) -> bool:
    return (
        isinstance(resource, dict)
        and resource.get("Type") == "AWS::Lambda::Version"
        and (resource.get("Properties") or {}).get("FunctionName") == ref(FUNCTION_ID)
    )


def stamp_version(template: dict[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """Name the SnapStart version resource after the function's properties and parameter values.

    An `AWS::Lambda::Version` is immutable: CloudFormation publishes a new version only when the
    resource is new. With its logical id carrying a hash of the code location, settings and the
    parameters they use (SAM's AutoPublishAlias does the same), a new zip or a new ObjectKey
    publishes a new version and moves the alias; an unchanged deploy publishes nothing.
    `parameters` are the values the stack will have; missing ones count as their defaults.
    Edits `template` in place and returns it; a template without the version is left as it is.
    """
    resources: dict[str, Any] = template.get("Resources") or {}
    version_ids = [k for k, v in resources.items() if _is_our_version(v)]
    if not version_ids:
        return template
    declared = template.get("Parameters") or {}
    values = {name: str(parameters.get(name, (spec or {}).get("Default", ""))) for name, spec in declared.items()}
    published = {
        "function": resources[FUNCTION_ID].get("Properties", {}),
        # A version pins its layers' versions: new dependencies (`package --layer`) publish too.
        "layers": {k: v for k, v in resources.items() if isinstance(v, dict) and v.get("Type") == _LAYER},
        "parameters": values,
    }
    digest = hashlib.sha256(json.dumps(published, sort_keys=True, default=str).encode()).hexdigest()[:10]
    new_id = f"{VERSION_PREFIX}{digest}"
    replace_resource(resources, version_ids[0], new_id, resources[version_ids[0]])
    for extra in version_ids[1:]:
        replace_resource(resources, extra, None, None)
    alias = resources.get(ALIAS_ID)
    if isinstance(alias, dict):
        alias.setdefault("Properties", {})["FunctionVersion"] = {"Fn::GetAtt": [new_id, "Version"]}
    return template


def has_version(template: Mapping[str, Any]) -> bool:
    """Whether the template publishes a SnapStart version of our function (see `stamp_version`)."""
    return any(_is_our_version(v) for v in (template.get("Resources") or {}).values())


__all__ = ["disable_snapstart", "enable_snapstart", "has_version", "sam_snapstart", "stamp_version"]
