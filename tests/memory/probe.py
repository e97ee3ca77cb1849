"""A child process that answers requests with the real handler and reports how much each raised peak memory.

`python -m tests.memory.probe ARTIFACT` reads one JSON line per case on stdin,
`{"shapes": [Shape fields, ...], "batch": false}`, and answers one JSON line:
`{"statuses": [...], "raise_mib": ..., "seconds": ...}`. For each case it builds the images and
the API Gateway event first, then resets the process's peak RSS (Linux `/proc/self/clear_refs`),
calls the handler, and reports its max RSS since then (`VmHWM`) minus the RSS it had just before
the call. Not `ru_maxrss`: the kernel folds into it peaks that clear_refs does not reset (at exec,
the RSS of the process that started this one: the whole pytest process, 1.5 GB late in a run).

The parent sets MALLOC_MMAP_THRESHOLD_ so glibc serves every big allocation with mmap and gives
it back on free: memory one case freed is then not reused, unseen, by the next.
"""

from __future__ import annotations

import base64
import functools
import gc
import io
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from lambdavision.core.event_builders import invocation_event
from lambdavision.runtime.app import App
from lambdavision.runtime.fetch import FetchPolicy
from lambdavision.runtime.loader import load_classifier
from tests.memory.shapes import Shape, from_dict


@functools.lru_cache(maxsize=2)
def _build(shape: Shape) -> bytes:
    return shape.build()  # a batch of 16 copies builds its image once


def _status_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (the peak since the last reset) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _event(images: list[bytes], batch: bool) -> dict[str, object]:
    if batch:
        return invocation_event({"images": [base64.b64encode(i).decode() for i in images]})
    return invocation_event(images[0], "application/octet-stream")


def main() -> None:
    app = App(load_classifier(sys.argv[1]), FetchPolicy(), out=io.StringIO())
    context = SimpleNamespace(aws_request_id="probe")
    app(_event([from_dict({"fmt": "PNG", "width": 64, "height": 48}).build()], False), context)  # warm up
    for line in sys.stdin:
        case = json.loads(line)
        images = [_build(from_dict(shape)) for shape in case["shapes"]]
        event = _event(images, bool(case.get("batch")))
        del images
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # the peak RSS starts again from now
        before = _status_mib("VmRSS")
        started = time.perf_counter()
        result = app(event, context)
        seconds = time.perf_counter() - started
        peak = _status_mib("VmHWM")
        body = json.loads(result["body"])
        statuses = [r.get("status", 200) for r in body["results"]] if "results" in body else [result["statusCode"]]
        answer = {"status": result["statusCode"], "statuses": statuses, "raise_mib": peak - before, "seconds": seconds}
        answer["error"] = body.get("error")
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
