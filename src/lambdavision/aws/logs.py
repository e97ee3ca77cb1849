"""`logs`: a function's CloudWatch Logs, found from the stack as `sam logs` does.

`-n` is the function's logical id in the stack; its physical name gives the log group
`/aws/lambda/<name>`. `--filter` is CloudWatch's filter syntax, passed through unchanged.
Tailing polls `filter_log_events` from a moving start time, re-reading a short window behind it
(events can arrive late) and remembering event ids there, so no event is printed twice.

What the handler logs is read by `aws.log_records` (one compact line per request, `--metrics`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdavision.aws.log_records import LogEvent
from lambdavision.core.errors import BadRequest

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_logs import CloudWatchLogsClient

# Events can be ingested a little after their timestamp; tailing re-reads this far back.
LATE_EVENT_WINDOW_MS = 10_000

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
_AGO = re.compile(r"(\d+)\s*([a-z]+)\s+ago")


def parse_time(text: str, *, now: datetime) -> datetime:
    """`now`, `10m ago`, `2 hours ago`, or ISO 8601 (no zone = local time) -> an aware datetime."""
    cleaned = text.strip().lower()
    if cleaned == "now":
        return now
    match = _AGO.fullmatch(cleaned)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        if unit not in _UNITS:
            raise BadRequest(f"unknown time unit {unit!r} in {text!r}: use s, m, h, d or w (e.g. '10m ago')")
        return now - timedelta(seconds=amount * _UNITS[unit])
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadRequest(
            f"cannot read the time {text!r}: use '10m ago', '2h ago', '1d ago' or ISO 8601 (2024-05-01T12:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.astimezone()


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def function_log_group(cfn: CloudFormationClient, stack_name: str, name: str) -> str:
    """The log group of the function whose logical id in `stack_name` is `name`."""
    try:
        detail = cfn.describe_stack_resource(StackName=stack_name, LogicalResourceId=name)["StackResourceDetail"]
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if "does not exist" in message and "Resource" in message:
            raise BadRequest(
                f"stack '{stack_name}' has no resource {name!r}: "
                "-n takes the function's logical id (e.g. PyTorchFunction)"
            ) from exc
        raise
    if detail.get("ResourceType") != "AWS::Lambda::Function":
        raise BadRequest(f"{name!r} in stack '{stack_name}' is a {detail.get('ResourceType')}, not a Lambda function")
    physical = detail.get("PhysicalResourceId")
    if not physical:
        raise BadRequest(f"{name!r} in stack '{stack_name}' has not been created yet ({detail.get('ResourceStatus')})")
    return f"/aws/lambda/{physical}"


def fetch_events(
    logs: CloudWatchLogsClient,
    log_group: str,
    *,
    pattern: str | None,
    start_ms: int | None,
    end_ms: int | None,
) -> Iterator[LogEvent]:
    """Every matching event in the time range, page after page."""
    kwargs: dict[str, Any] = {"logGroupName": log_group}
    if pattern:
        kwargs["filterPattern"] = pattern
    if start_ms is not None:
        kwargs["startTime"] = start_ms
    if end_ms is not None:
        kwargs["endTime"] = end_ms
    for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
        for raw in page.get("events", []):
            yield LogEvent(
                event_id=str(raw.get("eventId", "")),
                timestamp_ms=int(raw.get("timestamp", 0)),
                stream=str(raw.get("logStreamName", "")),
                message=str(raw.get("message", "")),
            )


def tail_events(
    logs: CloudWatchLogsClient,
    log_group: str,
    *,
    pattern: str | None,
    start_ms: int,
    on_event: Callable[[LogEvent], None],
    poll_seconds: float = 1.0,
    stop_after_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Print events as they come until interrupted (or `stop_after_seconds`), each exactly once."""
    cursor = start_ms
    seen: dict[str, int] = {}  # event id -> timestamp, for the window re-read behind the cursor
    deadline = None if stop_after_seconds is None else clock() + stop_after_seconds
    while True:
        window_start = max(start_ms, cursor - LATE_EVENT_WINDOW_MS)
        batch = sorted(
            fetch_events(logs, log_group, pattern=pattern, start_ms=window_start, end_ms=None),
            key=lambda e: (e.timestamp_ms, e.event_id),
        )
        for event in batch:
            key = event.event_id or f"{event.stream}/{event.timestamp_ms}/{event.message}"
            if key in seen:
                continue
            seen[key] = event.timestamp_ms
            on_event(event)
            cursor = max(cursor, event.timestamp_ms)
        horizon = cursor - LATE_EVENT_WINDOW_MS
        for key in [k for k, ts in seen.items() if ts < horizon]:
            del seen[key]
        if deadline is not None and clock() >= deadline:
            return
        sleep(poll_seconds)


__all__ = [
    "fetch_events",
    "function_log_group",
    "parse_time",
    "tail_events",
    "to_ms",
]
