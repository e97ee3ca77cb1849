"""SAM templates through AWS's own transform (aws-sam-translator), offline.

`to_cloudformation` turns a template with `Transform: AWS::Serverless-2016-10-31` into the plain
CloudFormation AWS would make of it, then `explicit.make_explicit` adjusts that for the stand-ins
(moto) as lambdavision's own template already is; local, package and deploy all read its result.

The translator insists on code in S3 (`CodeUri: s3://bucket/key`). A code location that is still a
local folder (before `package`, or `local` reading the template as written) goes through it as a
placeholder S3 location and comes out as the folder again, in `Code` / `Content` — the convention
of `aws cloudformation package` that lambdavision's own template follows. The translator needs a
region (for partitions); an empty managed-policy map serves as long as no managed policy is
named by name.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from lambdavision.cfn.document import SAM_TRANSFORM, TemplateError, is_sam

PLACEHOLDER_BUCKET = "lambdavision-local-code"
SAM_FUNCTION = "AWS::Serverless::Function"
SAM_LAYER = "AWS::Serverless::LayerVersion"
# Where SAM CLI looks for a function's code when it names none: the template's own folder.
DEFAULT_CODE_URI = "."


def to_cloudformation(
    template: Mapping[str, Any],
    *,
    parameter_values: Mapping[str, Any] | None = None,
    region: str = "us-east-1",
    default_runtime: str = "",
    source: str = "template",
) -> dict[str, Any]:
    """The template as plain CloudFormation: SAM transformed (local code kept as folders) and made
    explicit for moto; a template without SAM's transform comes back as a copy, unchanged.

    `default_runtime` fills in a missing Runtime (the local commands run such a function on
    python3.12, as before); empty, the translator refuses the function as AWS would.
    """
    if not is_sam(dict(template)):
        return copy.deepcopy(dict(template))
    from lambdavision.cfn.explicit import make_explicit

    _refuse_repository_apps(template, source)
    document = copy.deepcopy(dict(template))
    document.setdefault("Transform", SAM_TRANSFORM)  # AWS::Serverless:: resources without it: SAM all the same
    order = _api_event_order(document)
    originals = _code_placeholders(document, default_runtime)
    transformed = _translate(document, dict(parameter_values or {}), region, source)
    _restore_code(transformed, originals)
    return make_explicit(transformed, order)


def _api_event_order(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(path, METHOD) of the functions' Api events in template order (the Body's own order is SAM's)."""
    order = []
    for resource in (document.get("Resources") or {}).values():
        if not isinstance(resource, dict) or resource.get("Type") != SAM_FUNCTION:
            continue
        events = (resource.get("Properties") or {}).get("Events") or {}
        for event in events.values() if isinstance(events, dict) else ():
            properties = event.get("Properties") if isinstance(event, dict) else None
            if isinstance(properties, dict) and isinstance(properties.get("Path"), str):
                order.append((properties["Path"], str(properties.get("Method", "any")).upper()))
    return order


def _refuse_repository_apps(template: Mapping[str, Any], source: str) -> None:
    """A nested app from the Serverless Application Repository would make the transform call AWS."""
    for logical_id, resource in (template.get("Resources") or {}).items():
        app = isinstance(resource, dict) and resource.get("Type") == "AWS::Serverless::Application"
        if app and isinstance((resource.get("Properties") or {}).get("Location"), dict):
            raise TemplateError(
                f"{source}: {logical_id} is an app of the Serverless Application Repository, which the "
                "transform would have to fetch from AWS: not supported here (use a template URL in S3)"
            )


def _code_placeholders(document: dict[str, Any], default_runtime: str) -> list[Any]:
    """Replace every local CodeUri / ContentUri by a placeholder S3 URI; returns the originals."""
    originals: list[Any] = []

    def placeholder(value: Any) -> str:
        originals.append(value)
        return f"s3://{PLACEHOLDER_BUCKET}/{len(originals) - 1}"

    globals_section = document.get("Globals")
    function_globals = globals_section.get("Function") if isinstance(globals_section, dict) else None
    function_globals = function_globals if isinstance(function_globals, dict) else {}
    # A folder in Globals goes to each function that names none (its own value wins, as in SAM).
    global_code = function_globals.pop("CodeUri", None)
    for resource in (document.get("Resources") or {}).values():
        if not isinstance(resource, dict) or resource.get("Type") not in (SAM_FUNCTION, SAM_LAYER):
            continue
        properties = resource.setdefault("Properties", {})
        if not isinstance(properties, dict):
            continue
        if resource["Type"] == SAM_LAYER:
            content = properties.get("ContentUri")
            if isinstance(content, str) and not content.startswith("s3://"):
                properties["ContentUri"] = placeholder(content)
            continue
        image = "Image" in (properties.get("PackageType"), function_globals.get("PackageType"))
        inline = "InlineCode" in properties or "InlineCode" in function_globals
        if not (image or inline or "ImageUri" in properties):
            code = properties.get("CodeUri", global_code if global_code is not None else DEFAULT_CODE_URI)
            if isinstance(code, str) and not code.startswith("s3://"):
                code = placeholder(code)
            properties["CodeUri"] = code
        if default_runtime and not image and "Runtime" not in properties and "Runtime" not in function_globals:
            properties["Runtime"] = default_runtime
    return originals


def _restore_code(template: dict[str, Any], originals: list[Any]) -> None:
    """Put each placeholder's original folder back, as `Code` / `Content` of the plain resource."""
    for resource in (template.get("Resources") or {}).values():
        if not isinstance(resource, dict):
            continue
        properties = resource.get("Properties") or {}
        key = {"AWS::Lambda::Function": "Code", "AWS::Lambda::LayerVersion": "Content"}.get(str(resource.get("Type")))
        location = properties.get(key) if key else None
        if isinstance(location, dict) and location.get("S3Bucket") == PLACEHOLDER_BUCKET:
            properties[key] = originals[int(str(location.get("S3Key")))]


def _translate(document: dict[str, Any], parameters: dict[str, Any], region: str, source: str) -> dict[str, Any]:
    import boto3
    from samtranslator.model.exceptions import ExceptionWithMessage, InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

    # A session only for its region: the translator reads nothing else from it, and calls no AWS.
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    to_py27_compatible_template(document, parameters)
    try:
        transformed = translator.translate(document, parameter_values=parameters, get_managed_policy_map=dict)
    except InvalidDocumentException as exc:
        reasons = "; ".join(cause.message for cause in exc.causes) or exc.message
        raise TemplateError(f"{source}: the SAM transform refused it: {reasons}") from exc
    except ExceptionWithMessage as exc:
        raise TemplateError(f"{source}: the SAM transform refused it: {exc.message}") from exc
    finally:
        translator.metrics.publish()  # to nowhere; unpublished metrics would log a warning
    result: dict[str, Any] = undo_mark_unicode_str_in_template(transformed)
    return result


__all__ = ["PLACEHOLDER_BUCKET", "SAM_FUNCTION", "to_cloudformation"]
