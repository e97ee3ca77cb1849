"""A child process that answers requests with the real handler and reports how much each raised peak memory.

`python -m tests.memory.probe ARTIFACT` reads one JSON line per case on stdin,
`{"shapes": [Shape fields, ...], "batch": false}`, and answers one JSON line:
`{"statuses": [...], "raise_mib": ..., "seconds": ...}`. For each case it builds the images and
the API Gateway event first, then resets the process's peak RSS (Linux `/proc/self/clear_refs`),
calls the handler, and reports max RSS (`ru_maxrss`) minus the RSS it had just before the call.

The parent sets MALLOC_MMAP_THRESHOLD_ so glibc serves every big allocation with mmap and gives
it back on free: memory one case freed is then not reused, unseen, by the next.
"""

from __future__ import annotations

import base64
import functools
import gc
import io
import json
import os
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from lambdavision.core.events import build_rest_v1_event
from lambdavision.core.fetch import FetchPolicy
from lambdavision.handler import App
from lambdavision.loader import load_classifier
from tests.memory.shapes import Shape, from_dict


@functools.lru_cache(maxsize=2)
def _build(shape: Shape) -> bytes:
    return shape.build()  # a batch of 16 copies builds its image once


def _rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _event(images: list[bytes], batch: bool) -> dict[str, object]:
    if batch:
        body = json.dumps({"images": [base64.b64encode(i).decode() for i in images]}).encode()
        headers, binary = [("Content-Type", "application/json")], False
    else:
        body, headers, binary = images[0], [("Content-Type", "application/octet-stream")], True
    return build_rest_v1_event(
        method="POST",
        path="/invocations",
        resource="/invocations",
        path_parameters=None,
        query=[],
        headers=headers,
        body=body,
        binary=binary,
    )


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
        before = _rss_mib()
        started = time.perf_counter()
        result = app(event, context)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        body = json.loads(result["body"])
        statuses = [r.get("status", 200) for r in body["results"]] if "results" in body else [result["statusCode"]]
        answer = {"status": result["statusCode"], "statuses": statuses, "raise_mib": peak - before, "seconds": seconds}
        answer["error"] = body.get("error")
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
