"""The lines and error payloads Lambda itself writes, built from measurements (pure).

`REPORT` is the line CloudWatch shows after each invocation; the error payloads are what a
caller of `Invoke` receives when the platform, not the handler, ends an invocation.
"""

from __future__ import annotations

import json
import math
import signal
from datetime import UTC, datetime

# Lambda's synchronous response limit; its own message quotes 6291556 bytes, the documented
# limit is 6 MB.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024

ERROR_UNHANDLED = "Unhandled"
ERROR_TIMEOUT = "Sandbox.Timedout"
ERROR_EXIT = "Runtime.ExitError"
ERROR_OUT_OF_MEMORY = "Runtime.OutOfMemory"
ERROR_RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"


def billed_ms(duration_ms: float, init_duration_ms: float | None) -> int:
    """1 ms billing granularity; INIT is billed on a cold start (on-demand, since 2025-08)."""
    return max(1, math.ceil(duration_ms + (init_duration_ms or 0.0)))


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    billed_duration_ms: int,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
    cpu_share: str | None = None,
) -> str:
    """`REPORT RequestId: ...` exactly as Lambda writes it (tab separated).

    `cpu_share` (local runs only: Lambda's line has no such field) says which CPU share the
    environment was held to, e.g. "0.58 vCPU" or "unlimited (--no-cpu-share)"; it comes last.
    """
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {billed_duration_ms} ms",
        f"Memory Size: {memory_size_mb} MB",
        f"Max Memory Used: {max_memory_used_mb} MB",
    ]
    if init_duration_ms is not None:
        fields.append(f"Init Duration: {init_duration_ms:.2f} ms")
    if status is not None:
        fields.append(f"Status: {status}")
    if error_type is not None:
        fields.append(f"Error Type: {error_type}")
    if cpu_share is not None:
        fields.append(f"CPU Share: {cpu_share}")
    return "\t".join(fields)


def _error(message: str, error_type: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def timeout_error(request_id: str, timeout_s: float, now: datetime | None = None) -> bytes:
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return _error(f"{stamp} {request_id} Task timed out after {timeout_s:.2f} seconds", ERROR_TIMEOUT)


def describe_exit(returncode: int) -> str:
    """Go-style wording, as Lambda's `Runtime exited with error: ...` uses it."""
    if returncode >= 0:
        return f"exit status {returncode}"
    names = {
        signal.SIGKILL: "killed",
        signal.SIGSEGV: "segmentation fault",
        signal.SIGABRT: "aborted",
        signal.SIGTERM: "terminated",
        signal.SIGBUS: "bus error",
        signal.SIGFPE: "floating point exception",
    }
    try:
        return f"signal: {names.get(signal.Signals(-returncode), signal.Signals(-returncode).name)}"
    except ValueError:
        return f"signal: {-returncode}"


def exit_error(request_id: str, returncode: int) -> bytes:
    return _error(f"RequestId: {request_id} Error: Runtime exited with error: {describe_exit(returncode)}", ERROR_EXIT)


def out_of_memory_error(request_id: str, memory_mb: int) -> bytes:
    return _error(
        f"RequestId: {request_id} Error: Runtime exited with error: signal: killed "
        f"(memory over the function's MemorySize of {memory_mb} MB)",
        ERROR_OUT_OF_MEMORY,
    )


def response_too_large_error(size: int) -> bytes:
    return _error(
        f"Response payload size ({size} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
        ERROR_RESPONSE_TOO_LARGE,
    )


def runtime_error(message: str, error_type: str) -> bytes:
    return _error(message, error_type)
