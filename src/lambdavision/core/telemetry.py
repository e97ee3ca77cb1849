"""What the function says about each request: one JSON log line and one EMF metrics record.

CloudWatch Embedded Metric Format (EMF) turns a printed JSON line into metrics with no API call and
no extra dependency, so a deployed function gets latency, cold-start and error metrics for free.
Both records are built here as plain dicts; the handler prints them to stdout, where Lambda's
runtime sends them to CloudWatch Logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NAMESPACE = "lambdavision"
EMF_METRICS = (
    ("Latency", "Milliseconds"),
    ("FetchTime", "Milliseconds"),
    ("DecodeTime", "Milliseconds"),
    ("InferenceTime", "Milliseconds"),
    ("ColdStart", "Count"),
    ("Errors", "Count"),
    ("ClientErrors", "Count"),
    ("Images", "Count"),
)


@dataclass
class RequestRecord:
    """Facts of one request, filled in as it is handled."""

    request_id: str
    source: str = "unknown"
    input_kind: str | None = None
    status: int = 0
    cold_start: bool = False
    latency_ms: float = 0.0
    fetch_ms: float = 0.0
    decode_ms: float = 0.0
    inference_ms: float = 0.0
    images: int = 0
    image_bytes: int | None = None
    image_size: str | None = None
    top_class: str | None = None
    confidence: float | None = None
    error_type: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def log_line(self, level: str = "INFO") -> dict[str, Any]:
        record: dict[str, Any] = {
            "level": level,
            "message": "request",
            "request_id": self.request_id,
            "event_source": self.source,
            "input_kind": self.input_kind,
            "status": self.status,
            "cold_start": self.cold_start,
            "timings_ms": {
                "total": round(self.latency_ms, 2),
                "fetch": round(self.fetch_ms, 2),
                "decode": round(self.decode_ms, 2),
                "inference": round(self.inference_ms, 2),
            },
            "images": self.images,
            "image_bytes": self.image_bytes,
            "image_size": self.image_size,
            "class": self.top_class,
            "confidence": self.confidence,
            "error_type": self.error_type,
        }
        if self.error:
            record["error"] = self.error
        record.update(self.extra)
        return record

    def emf(self, function_name: str, timestamp_ms: int) -> dict[str, Any]:
        return {
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [["FunctionName"]],
                        "Metrics": [{"Name": name, "Unit": unit} for name, unit in EMF_METRICS],
                    }
                ],
            },
            "FunctionName": function_name,
            "Latency": round(self.latency_ms, 2),
            "FetchTime": round(self.fetch_ms, 2),
            "DecodeTime": round(self.decode_ms, 2),
            "InferenceTime": round(self.inference_ms, 2),
            "ColdStart": 1 if self.cold_start else 0,
            "Errors": 1 if self.status >= 500 else 0,
            "ClientErrors": 1 if 400 <= self.status < 500 else 0,
            "Images": self.images,
            "request_id": self.request_id,
            "status": self.status,
        }
