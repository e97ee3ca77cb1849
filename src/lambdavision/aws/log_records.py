"""What the function logs, read: one CloudWatch event (`LogEvent`), lambdavision's JSON line and EMF
record per request as one compact line (`ReadableLog`), and a window's EMF records summarised into
request, error and cold-start counts and latency percentiles (`summarise_metrics`). Pure."""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class LogEvent:
    event_id: str
    timestamp_ms: int
    stream: str
    message: str

    def format(self) -> str:
        """`stream time message`, the layout `sam logs` prints."""
        return f"{self.stream} {_stamp(self.timestamp_ms)} {self.message.rstrip()}"


def _stamp(timestamp_ms: int) -> str:
    when = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _json_object(message: str) -> dict[str, Any] | None:
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _is_emf(record: dict[str, Any]) -> bool:
    return isinstance(record.get("_aws"), dict) and "CloudWatchMetrics" in record["_aws"]


def _ms(value: Any) -> str:
    return f"{float(value):.1f} ms" if isinstance(value, (int, float)) else "? ms"


class ReadableLog:
    """Log events as people read them: one compact line per request, other lines as they are.

    A request's JSON log line becomes `stream time request-id status what total-ms [cold]`, where
    `what` is the top class and its confidence, the error, `page` or `N images`; its EMF record
    then adds nothing and is left out (it is shown, shorter, only when LOG_LEVEL hid the log line).
    Other JSON lines (e.g. `model loaded`) show as `LEVEL message key=value ...`.
    """

    def __init__(self, remembered: int = 10_000) -> None:
        self._shown: deque[str] = deque(maxlen=remembered)
        self._shown_set: set[str] = set()

    def format(self, event: LogEvent) -> str | None:
        record = _json_object(event.message)
        if record is None:
            return event.format()
        if _is_emf(record):
            request_id = str(record.get("request_id", ""))
            if request_id in self._shown_set:
                return None
            text = self._request_line(
                request_id, record.get("status"), "-", record.get("Latency"), record.get("ColdStart")
            )
        elif record.get("message") == "request" and "request_id" in record:
            request_id = str(record["request_id"])
            timings = record.get("timings_ms")
            timings = timings if isinstance(timings, dict) else {}
            text = self._request_line(
                request_id, record.get("status"), _outcome(record), timings.get("total"), record.get("cold_start")
            )
        else:
            level = str(record.pop("level", "")).upper()
            message = str(record.pop("message", ""))
            details = " ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in record.items())
            text = " ".join(part for part in (level, message, details) if part)
        return f"{event.stream} {_stamp(event.timestamp_ms)} {text}"

    def _request_line(self, request_id: str, status: Any, what: str, total: Any, cold: Any) -> str:
        if request_id and request_id not in self._shown_set:
            if len(self._shown) == self._shown.maxlen:
                self._shown_set.discard(self._shown[0])
            self._shown.append(request_id)
            self._shown_set.add(request_id)
        return f"{request_id or '-'} {status if status is not None else '-'} {what} {_ms(total)}" + (
            " cold" if cold else ""
        )


def _outcome(record: dict[str, Any]) -> str:
    """The top class and confidence, or the error, or what kind of answer it was."""
    if record.get("error_type"):
        error = " ".join(str(record.get("error") or "").split())
        error = error if len(error) <= 160 else error[:159] + "…"
        return f"{record['error_type']}: {error}" if error else str(record["error_type"])
    if record.get("class") is not None:
        confidence = record.get("confidence")
        percent = f" {float(confidence) * 100:.1f}%" if isinstance(confidence, (int, float)) else ""
        return f"{record['class']}{percent}"
    if record.get("input_kind") == "page":
        return "page"
    images = record.get("images")
    if isinstance(images, int) and images > 1:
        return f"{images} images"
    return str(record.get("input_kind") or "-")


@dataclass(frozen=True)
class MetricsSummary:
    """What the EMF records of a window say: counts and latency percentiles (nearest rank)."""

    requests: int
    errors: int
    client_errors: int
    cold_starts: int
    latencies_ms: tuple[float, ...]
    first_ms: int | None
    last_ms: int | None

    def percentile(self, q: float) -> float | None:
        """The nearest-rank q-th percentile (0 < q <= 100) of the latencies, None without any."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]

    def lines(self) -> list[str]:
        if not self.requests:
            return ["requests       0  (no EMF records in this window: has the function been called?)"]
        span = f"{_stamp(self.first_ms or 0)} .. {_stamp(self.last_ms or 0)}"

        def share(count: int) -> str:
            return f"{count:<6} ({count / self.requests * 100:.1f}%)"

        rows = [
            ("window", span),
            ("requests", str(self.requests)),
            ("errors", f"{share(self.errors)} 5xx"),
            ("client errors", f"{share(self.client_errors)} 4xx"),
            ("cold starts", share(self.cold_starts)),
        ]
        for q in (50, 95, 99):
            rows.append((f"latency p{q}", _ms(self.percentile(q))))
        rows.append(("latency max", _ms(max(self.latencies_ms, default=None))))
        return [f"{label:<14} {value}" for label, value in rows]


def summarise_metrics(events: Iterable[LogEvent]) -> MetricsSummary:
    """Counts and latencies from the EMF records among `events` (other lines are ignored)."""
    requests = errors = client_errors = cold_starts = 0
    latencies: list[float] = []
    stamps: list[int] = []
    for event in events:
        record = _json_object(event.message)
        if record is None or not _is_emf(record):
            continue
        requests += 1
        errors += _count(record.get("Errors"))
        client_errors += _count(record.get("ClientErrors"))
        cold_starts += _count(record.get("ColdStart"))
        if isinstance(record.get("Latency"), (int, float)):
            latencies.append(float(record["Latency"]))
        stamps.append(event.timestamp_ms)
    return MetricsSummary(
        requests=requests,
        errors=errors,
        client_errors=client_errors,
        cold_starts=cold_starts,
        latencies_ms=tuple(latencies),
        first_ms=min(stamps) if stamps else None,
        last_ms=max(stamps) if stamps else None,
    )


def _count(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


__all__ = ["LogEvent", "MetricsSummary", "ReadableLog", "summarise_metrics"]
