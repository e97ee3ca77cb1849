"""The template `deploy` sends: the file as packaged (read, refused while its code is still local, kept
within CloudFormation's inline size), deploy's overrides applied, plain CloudFormation; and the
parameter values the stack will have.

A SAM template (the guide's, packaged by `sam package` or `aws cloudformation package`) goes
through AWS's own transform here (`cfn.plain_template`), so what CloudFormation receives has no
`Transform` and deploys the same way on AWS and on moto, which does not run the transform.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lambdavision.aws.deploy import NotPackagedError
from lambdavision.aws.template_edits import DeployOverrides, apply_overrides
from lambdavision.cfn import (
    check_overrides,
    dump_template,
    is_sam,
    local_code,
    parse_template,
    plain_template,
    read_template_text,
)
from lambdavision.core.errors import BadRequest

# CloudFormation's limit for an inline TemplateBody.
TEMPLATE_BODY_LIMIT = 51_200


def read_template_file(path: Path) -> tuple[str, dict[str, Any]]:
    """The template's text (sent as is) and its parsed form (checked here)."""
    text = read_template_text(path)
    if len(text.encode("utf-8")) > TEMPLATE_BODY_LIMIT:
        raise BadRequest(
            f"{path} is {len(text.encode())} bytes, over CloudFormation's {TEMPLATE_BODY_LIMIT}-byte "
            "limit for a template sent inline"
        )
    return text, parse_template(text, source=str(path))


def template_body(template: Mapping[str, Any], source: str) -> str:
    """An edited template as the YAML sent to CloudFormation, within its inline size limit."""
    text = dump_template(dict(template))
    if len(text.encode("utf-8")) > TEMPLATE_BODY_LIMIT:
        raise BadRequest(
            f"{source} with deploy's overrides is {len(text.encode())} bytes, over CloudFormation's "
            f"{TEMPLATE_BODY_LIMIT}-byte limit for a template sent inline"
        )
    return text


def effective_parameters(
    template: Mapping[str, Any], stack: Mapping[str, Any] | None, overrides: Mapping[str, str]
) -> dict[str, str]:
    """The parameter values the stack will have after this deploy: an override, else the stack's
    current value (CloudFormation keeps it), else the template's default."""
    current = {p["ParameterKey"]: str(p.get("ParameterValue", "")) for p in (stack or {}).get("Parameters", [])}
    values: dict[str, str] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        if name in overrides:
            values[name] = overrides[name]
        elif name in current:
            values[name] = current[name]
        elif isinstance(spec, Mapping) and "Default" in spec:
            values[name] = str(spec["Default"])
    return values


def check_packaged(template: Mapping[str, Any], source: str) -> None:
    """Refuse a template whose code is still a local folder: CloudFormation cannot read it."""
    local = [f"{logical_id} ({code})" for logical_id, code in local_code(template)]
    if local:
        raise NotPackagedError(
            f"{source} still points at local code: {', '.join(local)}; run `lambdavision package "
            "--output-template-file packaged.yaml --s3-bucket BUCKET` and deploy packaged.yaml"
        )


def deployable_template(
    template: Mapping[str, Any],
    changes: DeployOverrides,
    overrides: Mapping[str, str],
    *,
    region: str,
    source: str,
) -> tuple[dict[str, Any], list[str]]:
    """(the template with `changes`, SAM transformed; what was done to it, for the user).

    NotPackagedError while a function's code is still a local folder.
    """
    check_overrides(template, overrides, source)  # before the checks and the transform: one line, first
    edited = apply_overrides(template, changes, source=source)
    notes = []
    if is_sam(edited):
        edited = plain_template(edited, overrides, region=region, source=source)
        notes.append(f"{source} is a SAM template: transformed to plain CloudFormation (aws-sam-translator)")
    check_packaged(edited, source)
    return edited, notes


__all__ = [
    "TEMPLATE_BODY_LIMIT",
    "check_packaged",
    "deployable_template",
    "effective_parameters",
    "read_template_file",
    "template_body",
]
