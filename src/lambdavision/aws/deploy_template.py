"""The template `deploy` sends: the file as packaged, deploy's overrides applied, plain CloudFormation.

A SAM template (the guide's, packaged by `sam package` or `aws cloudformation package`) goes
through AWS's own transform here (`cfn.plain_template`), so what CloudFormation receives has no
`Transform` and deploys the same way on AWS and on moto, which does not run the transform.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lambdavision.aws.deploy import check_packaged
from lambdavision.aws.template_edits import DeployOverrides, apply_overrides
from lambdavision.cfn import check_overrides, is_sam, plain_template


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


__all__ = ["deployable_template"]
