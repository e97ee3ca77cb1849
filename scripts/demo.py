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
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
MODEL = DEMO / "model.tar.gz"
SAMPLES = sorted(p for p in (DEMO / "samples").glob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
console = Console()


def api_gateway_event(image: bytes) -> dict[str, object]:
    from lambdavision.core.event_builders import invocation_event

    return invocation_event({"image": base64.b64encode(image).decode("ascii")})


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

    from lambdavision.aws.appdir import AppOptions, app_files, write_app_dir
    from lambdavision.cfn import load_app as load_template
    from lambdavision.local.api_server import LocalApi

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


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    console.print(f"[bold cyan]$ {' '.join(cmd)}[/bold cyan]", soft_wrap=True)
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    output = (done.stdout + done.stderr).strip()
    if output:
        console.print(output, markup=False, highlight=False, soft_wrap=True)
    if done.returncode != 0:
        raise SystemExit(f"demo step failed (exit {done.returncode}): {' '.join(cmd)}")
    return done.stdout


@contextlib.contextmanager
def simulated_aws() -> Iterator[dict[str, str]]:
    """An embedded moto server on loopback, with fake credentials: simulated AWS, nothing real."""
    from lambdavision.local.simulated_aws import FAKE_CREDENTIALS, moto_server

    with moto_server() as url:
        yield {**os.environ, **FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": url}


def lifecycle(workdir: Path, env: dict[str, str], bucket: str) -> None:
    """The guide's deploy loop, every command as the guide writes it with `sam` -> `lambdavision`."""
    bin_dir = Path(sys.executable).parent
    lv, aws = str(bin_dir / "lambdavision"), str(bin_dir / "aws")
    key = "fastai-models/lesson1/model.tar.gz"
    workdir.mkdir(parents=True, exist_ok=True)
    if "AWS_ENDPOINT_URL" in env:
        run([aws, "s3", "mb", f"s3://{bucket}"], workdir, env)
    run([lv, "upload", str(MODEL), f"s3://{bucket}/{key}"], workdir, env)
    run([lv, "init", "app", "--bucket", bucket, "--key", key, "--force"], workdir, env)
    app = workdir / "app"
    run([lv, "package", "--output-template-file", "packaged.yaml", "--s3-bucket", bucket], app, env)
    stack = "pytorch-sam-app"
    run(
        [
            lv,
            "deploy",
            "--template-file",
            "packaged.yaml",
            "--stack-name",
            stack,
            "--capabilities",
            "CAPABILITY_IAM",
            "--parameter-overrides",
            f"BucketName={bucket}",
            f"ObjectKey={key}",
        ],
        app,
        env,
    )
    query = "Stacks[].Outputs[?OutputKey==`PyTorchApi`]"
    run(
        [aws, "cloudformation", "describe-stacks", "--stack-name", stack, "--query", query, "--output", "table"],
        app,
        env,
    )
    run([lv, "endpoint", "--stack-name", stack], app, env)
    run([lv, "logs", "-n", "PyTorchFunction", "--stack-name", stack, "--start-time", "10m ago"], app, env)
    run([lv, "delete", "--stack-name", stack], app, env)


def main() -> int:
    if not MODEL.is_file():
        console.print(f"[red]No demo model at {MODEL}: run `python scripts/train_demo.py`[/red]")
        return 1
    classify_in_process()
    with tempfile.TemporaryDirectory(prefix="lambdavision-demo-") as tmp:
        classify_over_http(Path(tmp) / "app")
        if os.environ.get("LAMBDAVISION_DEMO_AWS") == "1":
            bucket = os.environ.get("LAMBDAVISION_DEMO_BUCKET")
            if not bucket:
                console.print("[red]LAMBDAVISION_DEMO_AWS=1 needs LAMBDAVISION_DEMO_BUCKET (an existing bucket)[/red]")
                return 1
            console.rule("The deploy lifecycle on REAL AWS (LAMBDAVISION_DEMO_AWS=1)")
            lifecycle(Path(tmp) / "aws", dict(os.environ), bucket)
        else:
            console.rule("The deploy lifecycle on SIMULATED AWS (an embedded moto server; nothing leaves this machine)")
            with simulated_aws() as env:
                lifecycle(Path(tmp) / "aws", env, "my-bucket")
            console.print(
                "Simulated AWS cannot run the function (moto needs Docker for that): local start-api above did."
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
