"""`make demo`: the main job on the bundled demo model, end to end on this machine.

1. Classify the sample images through `lambda_handler` with API Gateway events (as on AWS).
2. The same through `lambdavision local start-api` over real HTTP (AWS's runtime client, warm).
3. The whole deploy lifecycle against simulated AWS (an embedded moto server), unless
   LAMBDAVISION_DEMO_AWS=1 and real credentials are set.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
MODEL = DEMO / "model.tar.gz"
SAMPLES = sorted(p for p in (DEMO / "samples").glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
console = Console()


def api_gateway_event(image: bytes) -> dict[str, object]:
    from lambdavision.core.events import build_rest_v1_event

    body = json.dumps({"image": base64.b64encode(image).decode("ascii")}).encode()
    return build_rest_v1_event(
        method="POST",
        path="/invocations",
        resource="/invocations",
        path_parameters=None,
        query=[],
        headers=[("Content-Type", "application/json")],
        body=body,
        binary=False,
    )


def classify_in_process() -> dict[str, object]:
    os.environ["MODEL_URI"] = str(MODEL)
    from lambdavision.handler import lambda_handler

    table = Table(title="lambda_handler on API Gateway events (in process)")
    for column in ("image", "expected", "class", "confidence", "ms"):
        table.add_column(column, justify="right" if column in ("confidence", "ms") else "left")
    last: dict[str, object] = {}
    correct = 0
    logs = io.StringIO()
    for path in SAMPLES:
        event = api_gateway_event(path.read_bytes())
        started = time.perf_counter()
        with contextlib.redirect_stdout(logs):  # the function's JSON log + EMF lines, shown once below
            last = lambda_handler(event, None)
        elapsed = (time.perf_counter() - started) * 1000
        answer = json.loads(str(last["body"]))
        expected = path.stem.rsplit("_", 1)[0]
        correct += answer["class"] == expected
        mark = "[green]" if answer["class"] == expected else "[red]"
        table.add_row(path.name, expected, f"{mark}{answer['class']}", f"{answer['confidence']:.3f}", f"{elapsed:.1f}")
    console.print(table)
    console.print(f"{correct}/{len(SAMPLES)} correct (the first call includes loading the model)")
    lines = logs.getvalue().splitlines()
    console.print(
        f"Each request printed a JSON log line and an EMF metrics record ({len(lines)} lines); the last log line:"
    )
    console.print(lines[-2] if len(lines) >= 2 else "(none)", markup=False, soft_wrap=True)
    console.print("The guide-style answer of the last one:")
    console.print_json(json.dumps({"statusCode": last["statusCode"], "body": last["body"]}))
    return last


def classify_over_http(workdir: Path) -> None:
    """`lambdavision local start-api` in process: real HTTP, real awslambdaric environments."""
    import urllib.request

    from lambdavision.appdir import AppOptions, app_files, write_app_dir
    from lambdavision.cli.start_api import LocalApi
    from lambdavision.local.template import load_template

    write_app_dir(workdir, app_files(AppOptions()), force=True)
    env_file = workdir / "env.json"
    env_file.write_text(json.dumps({"PyTorchFunction": {"MODEL_URI": str(MODEL)}}))
    console.rule("lambdavision local start-api (AWS's runtime client, no Docker)")
    log = io.StringIO()
    with LocalApi(load_template(workdir / "template.yaml"), env_file=env_file, port=0, log_stream=log) as api:
        base = api.url.rstrip("/")
        table = Table(title=f"POST {base}/invocations (raw image bytes)")
        for column in ("image", "class", "confidence", "ms", "cold start"):
            table.add_column(column)
        for path in SAMPLES:
            ctype = "image/png" if path.suffix == ".png" else "image/jpeg"
            request = urllib.request.Request(
                f"{base}/invocations", data=path.read_bytes(), headers={"Content-Type": ctype}
            )
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read())
                cold = response.headers.get("X-Cold-Start") == "1"
            elapsed = (time.perf_counter() - started) * 1000
            table.add_row(
                path.name, answer["class"], f"{answer['confidence']:.3f}", f"{elapsed:.1f}", "yes" if cold else ""
            )
        console.print(table)
        console.print(f"The upload page is at [bold]{base}/[/bold] while the server runs; this demo stops it now.")
        reports = [line for line in log.getvalue().splitlines() if line.startswith("REPORT")]
        if reports:
            console.print("Lambda's REPORT line of the last request:", markup=False)
            console.print(reports[-1], markup=False, soft_wrap=True)


def main() -> int:
    if not MODEL.is_file():
        console.print(f"[red]No demo model at {MODEL}: run `python scripts/train_demo.py`[/red]")
        return 1
    classify_in_process()
    with tempfile.TemporaryDirectory(prefix="lambdavision-demo-") as tmp:
        classify_over_http(Path(tmp) / "app")
    return 0


if __name__ == "__main__":
    sys.exit(main())
