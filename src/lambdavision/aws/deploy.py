"""`deploy`, `endpoint`, `delete`: one CloudFormation stack, created or updated in place.

create_stack / update_stack rather than change sets: moto's change-set path ignores `DependsOn`
and fills no outputs, and a direct update answers "No updates are to be performed" when nothing
changed, which is reported as such. Waiting polls the stack and hands each new stack event to a
callback (the CLI prints them on a terminal). A stack left in ROLLBACK_COMPLETE by a failed
create cannot be updated; the next deploy deletes it, after saying so, and creates it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from lambdavision.aws.session import is_missing_stack
from lambdavision.cfn import check_overrides
from lambdavision.core.errors import AwsError, DeployError, NotPackagedError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

UPDATABLE = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}
SUCCEEDED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE"}

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class StackEvent:
    timestamp: datetime
    logical_id: str
    resource_type: str
    status: str
    reason: str

    @property
    def failed(self) -> bool:
        return self.status.endswith("_FAILED")


@dataclass(frozen=True)
class StackOutput:
    key: str
    value: str
    description: str


@dataclass(frozen=True)
class DeployResult:
    stack_name: str
    action: Literal["create", "update", "none"]
    status: str
    outputs: list[StackOutput]


EventCallback = Callable[[StackEvent], None]
NoticeCallback = Callable[[str], None]


# --- stacks -------------------------------------------------------------------------------------


def describe_stack(cfn: CloudFormationClient, stack_name: str) -> dict[str, Any] | None:
    """The stack, or None when it does not exist."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if is_missing_stack(exc):
            return None
        raise
    return dict(stacks[0]) if stacks else None


def stack_outputs(stack: Mapping[str, Any]) -> list[StackOutput]:
    return [
        StackOutput(o["OutputKey"], str(o.get("OutputValue", "")), str(o.get("Description", "")))
        for o in stack.get("Outputs", [])
    ]


def deploy_stack(
    cfn: CloudFormationClient,
    *,
    stack_name: str,
    template_body: str,
    template: Mapping[str, Any],
    overrides: Mapping[str, str],
    capabilities: Sequence[str],
    on_event: EventCallback,
    on_notice: NoticeCallback,
    poll_seconds: float = 2.0,
    sleep: Sleep = time.sleep,
) -> DeployResult:
    """Create the stack or update it, wait, and return its outputs; DeployError when it failed."""
    declared = list((template.get("Parameters") or {}).keys())
    check_overrides(template, overrides, "the template")
    stack = describe_stack(cfn, stack_name)
    status = stack["StackStatus"] if stack else None
    if status == "ROLLBACK_COMPLETE":
        on_notice(
            f"Stack {stack_name} is in ROLLBACK_COMPLETE (its creation failed) and cannot be updated: "
            "deleting it before creating it again."
        )
        delete_stack(cfn, stack_name, on_event=on_event, poll_seconds=poll_seconds, sleep=sleep)
        stack, status = None, None
    elif status is not None and status.endswith("_IN_PROGRESS"):
        raise DeployError(
            f"stack {stack_name} is busy ({status}): wait for it to finish and deploy again (if it is "
            f"stuck, `lambdavision delete --stack-name {stack_name}`)"
        )
    elif status is not None and status not in UPDATABLE:
        raise DeployError(
            f"stack {stack_name} is in {status} and cannot be updated: fix it in the CloudFormation "
            f"console or run `lambdavision delete --stack-name {stack_name}` and deploy again"
        )

    common: dict[str, Any] = {
        "StackName": stack_name,
        "TemplateBody": template_body,
        "Capabilities": list(capabilities),
    }
    marker = latest_event_id(cfn, str(stack["StackId"])) if stack else None
    if stack is None:
        parameters: list[dict[str, Any]] = [{"ParameterKey": k, "ParameterValue": v} for k, v in overrides.items()]
        stack_id = cfn.create_stack(**common, Parameters=parameters)["StackId"]  # type: ignore[arg-type]
        action: Literal["create", "update"] = "create"
    else:
        previous = {p["ParameterKey"] for p in stack.get("Parameters", [])}
        parameters = [
            {"ParameterKey": k, "ParameterValue": overrides[k]}
            if k in overrides
            else {"ParameterKey": k, "UsePreviousValue": True}
            for k in declared
            if k in overrides or k in previous
        ]
        try:
            stack_id = cfn.update_stack(**common, Parameters=parameters)["StackId"]  # type: ignore[arg-type]
        except ClientError as exc:
            if "No updates are to be performed" in str(exc.response.get("Error", {}).get("Message", "")):
                return DeployResult(stack_name, "none", str(status), stack_outputs(stack))
            raise
        action = "update"

    final = wait_for_stack(cfn, stack_id, after=marker, on_event=on_event, poll_seconds=poll_seconds, sleep=sleep)
    final_status = str(final["StackStatus"])
    raise_if_failed(cfn, stack_name, stack_id, action=action, status=final_status, after=marker)
    return DeployResult(stack_name, action, final_status, stack_outputs(final))


def raise_if_failed(
    cfn: CloudFormationClient, stack_name: str, stack_id: str, *, action: str, status: str, after: str | None
) -> None:
    """DeployError naming each failed resource and its reason, unless `status` is a success."""
    if status in SUCCEEDED:
        return
    reasons = failure_reasons(cfn, stack_id, after=after)
    next_step = (
        "fix the template or parameters and deploy again (the failed stack is deleted first)"
        if status == "ROLLBACK_COMPLETE"
        else "fix the template or parameters and deploy again"
    )
    raise DeployError(
        f"{action} of stack {stack_name} failed ({status}): {'; '.join(reasons) or 'no reason given'} — {next_step}"
    )


def wait_for_stack(
    cfn: CloudFormationClient,
    stack_id: str,
    *,
    after: str | None,
    on_event: EventCallback,
    poll_seconds: float,
    sleep: Sleep,
) -> dict[str, Any]:
    """Poll until the stack leaves *_IN_PROGRESS, passing on each event newer than the event id
    `after` once, oldest first (an id, not a time: the local clock and AWS's may disagree)."""
    seen: set[str] = set()
    while True:
        for event in _new_events(cfn, stack_id, after, seen):
            on_event(event)
        stack = describe_stack(cfn, stack_id)
        if stack is None:  # gone: a delete that finished (moto forgets deleted stacks at once)
            return {"StackStatus": "DELETE_COMPLETE", "Outputs": []}
        if not str(stack["StackStatus"]).endswith("_IN_PROGRESS"):
            for event in _new_events(cfn, stack_id, after, seen):
                on_event(event)
            return stack
        sleep(poll_seconds)


def latest_event_id(cfn: CloudFormationClient, stack_id: str) -> str | None:
    """The newest event's id: where the events of the next operation begin."""
    try:
        events = cfn.describe_stack_events(StackName=stack_id)["StackEvents"]
    except ClientError as exc:
        if is_missing_stack(exc):
            return None
        raise
    return events[0]["EventId"] if events else None


def _new_events(cfn: CloudFormationClient, stack_id: str, after: str | None, seen: set[str]) -> list[StackEvent]:
    """Events not yet seen, oldest first; pages are read newest first until the event `after`."""
    fresh: list[StackEvent] = []
    try:
        pages = cfn.get_paginator("describe_stack_events").paginate(StackName=stack_id)
        for page in pages:
            done = False
            for raw in page["StackEvents"]:
                if raw["EventId"] == after:
                    done = True
                    break
                if raw["EventId"] in seen:
                    continue
                seen.add(raw["EventId"])
                fresh.append(
                    StackEvent(
                        timestamp=raw["Timestamp"],
                        logical_id=raw.get("LogicalResourceId", ""),
                        resource_type=raw.get("ResourceType", ""),
                        status=raw.get("ResourceStatus", ""),
                        reason=raw.get("ResourceStatusReason", "") or "",
                    )
                )
            if done:
                break
    except ClientError as exc:
        if is_missing_stack(exc):
            return []
        raise
    fresh.reverse()
    return fresh


def failure_reasons(cfn: CloudFormationClient, stack_id: str, *, after: str | None) -> list[str]:
    """`LogicalId (Type): reason` for each resource that failed, oldest first (the cause comes first)."""
    events = _new_events(cfn, stack_id, after, set())
    return [f"{e.logical_id} ({e.resource_type}): {e.reason}" for e in events if e.failed and e.reason]


def delete_stack(
    cfn: CloudFormationClient,
    stack_name: str,
    *,
    on_event: EventCallback,
    poll_seconds: float = 2.0,
    sleep: Sleep = time.sleep,
) -> bool:
    """Delete and wait; False when there was no such stack."""
    try:
        stack = describe_stack(cfn, stack_name)
    except ResponseParserError:
        # An endpoint that cannot even describe the stack (moto, after a create it could not
        # finish): delete it by name all the same, so `delete` stays the way out.
        stack = {"StackId": stack_name}
    if stack is None:
        return False
    stack_id = str(stack["StackId"])
    marker = latest_event_id(cfn, stack_id)
    cfn.delete_stack(StackName=stack_id)
    final = wait_for_stack(cfn, stack_id, after=marker, on_event=on_event, poll_seconds=poll_seconds, sleep=sleep)
    if final["StackStatus"] != "DELETE_COMPLETE":
        reasons = failure_reasons(cfn, stack_id, after=marker)
        raise DeployError(
            f"deleting stack {stack_name} failed ({final['StackStatus']}): {'; '.join(reasons) or 'no reason given'}"
            " — empty or release what blocks it (e.g. a non-empty bucket) and delete again"
        )
    return True


def stack_output(cfn: CloudFormationClient, stack_name: str, key: str) -> str:
    """One output's value; an error names the outputs the stack has."""
    stack = describe_stack(cfn, stack_name)
    if stack is None:
        raise AwsError(
            f"stack '{stack_name}' does not exist in this account and region: check --stack-name and "
            "--region, or create it with `lambdavision deploy`"
        )
    outputs = {o.key: o.value for o in stack_outputs(stack)}
    if key not in outputs:
        status = stack["StackStatus"]
        have = ", ".join(outputs) or "none"
        raise AwsError(f"stack '{stack_name}' ({status}) has no output {key!r} (its outputs: {have})")
    return outputs[key]


__all__ = [
    "DeployError",
    "DeployResult",
    "NotPackagedError",
    "StackEvent",
    "StackOutput",
    "check_overrides",
    "delete_stack",
    "deploy_stack",
    "describe_stack",
    "latest_event_id",
    "raise_if_failed",
    "stack_output",
    "stack_outputs",
    "wait_for_stack",
]
