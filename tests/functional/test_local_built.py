"""`local invoke` runs the built package as Lambda would: on the runtime's CPython, isolated from this
venv, the zip extracted; a host twin where this host cannot run the zip; `--use-venv` labelled.
A classic tarball then fails locally exactly as the packaged function fails, and deploy refuses it."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import boto3

from lambdavision.builder.wheels import find_python
from tests.fixtures.image_server import ImageServer

LAMBDAVISION = str(Path(sys.executable).with_name("lambdavision"))
PROBE = Path(__file__).resolve().parents[1] / "functions" / "probe"
REST_EVENT = Path(__file__).resolve().parents[1] / "events" / "apigw-rest-v1.json"
EM_X86_64, EM_AARCH64 = 62, 183
KEY = "fastai-models/lesson1/model.tar.gz"


def lv(*args: str, cwd: Path, cache: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**(env or os.environ), "LAMBDAVISION_CACHE_DIR": str(cache)}
    return subprocess.run(
        [LAMBDAVISION, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def probe_app(folder: Path, runtime: str = "python3.12") -> Path:
    (folder / "fn").mkdir(parents=True)
    (folder / "fn" / "app.py").write_text((PROBE / "app.py").read_text())
    (folder / "template.yaml").write_text(
        "Resources:\n"
        "  Probe:\n"
        "    Type: AWS::Lambda::Function\n"
        f"    Properties: {{Code: fn/, Handler: app.lambda_handler, Runtime: {runtime}, MemorySize: 512}}\n"
    )
    return folder


def test_local_invoke_runs_the_built_package_on_cpython_312_isolated_from_the_venv(
    tmp_path: Path, package_cache: Path
) -> None:
    app = probe_app(tmp_path)
    result = lv("local", "invoke", "Probe", cwd=app, cache=package_cache)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    python312 = find_python("3.12", os.environ)
    assert python312 is not None
    assert answer["python"] == python312.version and answer["python"].startswith("3.12.")
    assert (answer["isolated"], answer["no_site"]) == (1, 1)
    assert Path(answer["executable"]).resolve() == python312.path.resolve()
    assert answer["importable"] == {
        "numpy": True, "onnxruntime": True, "lambdavision": True,  # the package
        "boto3": True, "awslambdaric": True,  # the runtime folder
        "click": False, "torch": False, "yaml": False, "pytest": False,  # this venv's: not there
    }  # fmt: skip
    task_root = Path(answer["path"][0])
    assert task_root.parent == app / ".lambdavision" / "build" / "run"
    assert not [p for p in answer["path"] if "site-packages" in p or ".venv" in p]
    # The log says what ran, and the function's own init line shows the interpreter.
    stderr = result.stderr.splitlines()
    assert any(line.startswith("Probe: running the built package") and "on CPython 3.12." in line for line in stderr)
    assert re.search(r"^[0-9a-f-]{36} PROBE init on Python 3\.12\.\d+$", result.stderr, re.M)
    [report] = [line for line in stderr if line.startswith("REPORT RequestId:")]
    assert "Memory Size: 512 MB" in report and "Init Duration" in report
    # The extracted package is the built zip, untouched (no __pycache__ written into it).
    with zipfile.ZipFile(app / ".lambdavision" / "build" / "Probe.zip") as zf:
        files = {n for n in zf.namelist() if not n.endswith("/")}
    assert {p.relative_to(task_root).as_posix() for p in task_root.rglob("*") if p.is_file()} == files

    # --use-venv: the fast loop, on this venv's Python, labelled as not what Lambda runs.
    venv = lv("local", "invoke", "Probe", "--use-venv", cwd=app, cache=package_cache)
    assert venv.returncode == 0, venv.stderr
    venv_answer = json.loads(venv.stdout)
    assert venv_answer["python"] == ".".join(map(str, sys.version_info[:3]))
    assert venv_answer["importable"]["click"] and venv_answer["importable"]["torch"]
    assert "with --use-venv: NOT what Lambda runs" in venv.stderr


def test_a_runtime_without_its_cpython_here_is_one_line_naming_it(tmp_path: Path, package_cache: Path) -> None:
    app = probe_app(tmp_path, runtime="python3.13")
    empty = tmp_path / "no-pyenv"
    empty.mkdir()
    env = {**os.environ, "PATH": "/usr/bin:/bin", "PYENV_ROOT": str(empty)}
    result = lv("local", "invoke", "Probe", cwd=app, cache=package_cache, env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: Probe has Runtime python3.13, and no CPython 3.13 was found")
    assert f"python3.13 on PATH and in {empty}/versions/3.13.*" in line and "--use-venv" in line
    assert not (app / ".lambdavision").exists()  # refused before building anything


def elf_machines(zip_path: Path) -> set[int]:
    machines = set()
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            head = zf.read(info)[:20] if not info.is_dir() else b""
            if head[:4] == b"\x7fELF":
                machines.add(int.from_bytes(head[18:20], "little"))
    return machines


def non_native_members(zip_path: Path) -> dict[str, bytes]:
    """Members that are the same on every platform: code, pure-Python modules, dist-info names."""
    with zipfile.ZipFile(zip_path) as zf:
        return {
            n: zf.read(n)
            for n in zf.namelist()
            if n.startswith(("app.py", "lambdavision/")) or n.endswith(".dist-info/METADATA")
        }


def upload_model(artifact: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(artifact), "models", KEY)


def test_an_arm64_package_runs_as_its_host_twin_and_says_so(
    tmp_path: Path,
    package_cache: Path,
    aws_env: dict[str, str],
    demo_artifact: Path,
    demo_samples: list[tuple[Path, str]],
    image_server: ImageServer,
) -> None:
    upload_model(demo_artifact)
    image, expected = demo_samples[0]
    url = image_server.add("/photo.png", image.read_bytes())
    env = {**aws_env, "LAMBDAVISION_ALLOW_PRIVATE_URLS": "1"}
    init = lv(
        "init", "app", "--bucket", "models", "--arch", "arm64", "--image-url", url, cwd=tmp_path, cache=package_cache
    )
    assert init.returncode == 0, init.stderr
    app = tmp_path / "app"

    result = lv(
        "local",
        "invoke",
        "PyTorchFunction",
        "-n",
        "env.json",
        "-e",
        "event.json",
        cwd=app,
        cache=package_cache,
        env=env,
    )

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["class"] == expected
    build = app / ".lambdavision" / "build"
    package, twin = build / "PyTorchFunction.zip", build / "host-twin" / "python3.12-x86_64" / "PyTorchFunction.zip"
    [said] = [line for line in result.stderr.splitlines() if "HOST TWIN" in line]
    assert said.startswith(
        f"PyTorchFunction: the package is built for arm64 and this host is x86_64, so this runs its HOST TWIN {twin} "
    )
    assert "the same code and pinned versions (onnxruntime==" in said and "from this host's wheels" in said
    assert said.endswith(f"not the arm64 package {package} itself")
    assert f"PyTorchFunction: running its host twin {twin}" in result.stderr
    # The package `package` would upload stays arm64; the twin is its x86_64 copy: same code, same versions.
    assert elf_machines(package) == {EM_AARCH64} and elf_machines(twin) == {EM_X86_64}
    assert non_native_members(package) == non_native_members(twin)


RUNNER = textwrap.dedent(
    """
    import json, sys
    root, event_path = sys.argv[1:]
    sys.path.insert(0, root)
    import app  # as Lambda imports it from /var/task
    response = app.lambda_handler(json.load(open(event_path)), None)
    print("RESULT " + json.dumps(response))
    """
)


def run_packaged_function(zip_bytes: bytes, env: dict[str, str], tmp: Path) -> tuple[dict[str, Any], str]:
    """The uploaded zip, extracted and called as Lambda calls it: CPython 3.12 -I -S, its folder
    first on sys.path, the variables Lambda sets (no Runtime API: the handler loads on the call).
    (its answer, its log on stderr)"""
    root = tmp / "task"
    root.mkdir()
    (tmp / "fn.zip").write_bytes(zip_bytes)
    with zipfile.ZipFile(tmp / "fn.zip") as zf:
        zf.extractall(root)
    (tmp / "runner.py").write_text(RUNNER)
    python312 = find_python("3.12", os.environ)
    assert python312 is not None
    lambda_env = {
        **{k: v for k, v in env.items() if k.startswith("AWS_")},
        "LAMBDA_TASK_ROOT": str(root),
        "AWS_LAMBDA_FUNCTION_NAME": "PyTorchFunction",
        "MODEL_BUCKET": "models",
        "MODEL_KEY": KEY,
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [str(python312.path), "-I", "-S", str(tmp / "runner.py"), str(root), str(REST_EVENT)],
        env=lambda_env, cwd=root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result, proc.stderr


def test_a_classic_tarball_fails_locally_as_the_packaged_function_does_and_deploy_refuses_it(
    tmp_path: Path,
    package_cache: Path,
    aws_env: dict[str, str],
    classic_artifact: Path,
    demo_samples: list[tuple[Path, str]],
) -> None:
    photo = demo_samples[0][0].read_bytes()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    assert lv("init", "app", "--bucket", "models", cwd=tmp_path, cache=package_cache).returncode == 0
    app = tmp_path / "app"
    uploaded = lv("upload", str(classic_artifact), f"s3://models/{KEY}", cwd=app, cache=package_cache, env=aws_env)
    assert uploaded.returncode == 0, uploaded.stderr
    assert "is a classic tarball" in uploaded.stderr and "upload with --convert" in uploaded.stderr  # not silent

    local = lv("local", "invoke", "PyTorchFunction", "-n", "env.json", cwd=app, cache=package_cache, env=aws_env)
    assert local.returncode == 1
    error = json.loads(local.stdout)
    message = error["errorMessage"]
    assert message == (
        f"s3://models/{KEY} is a classic tarball (TorchScript .pth + classes.txt, no model.onnx), and a Lambda "
        "package carries no torch to run it: run `lambdavision convert model.tar.gz model-onnx.tar.gz` (it adds "
        "ONNX) and upload that, or upload with `lambdavision upload --convert`"
    )  # advice that is right on Lambda: no "pip install torch"
    assert local.stderr.strip().splitlines()[-1] == f"Error: PyTorchFunction failed: ArtifactError: {message}"

    # The packaged function, as uploaded, fails the same way.
    s3.create_bucket(Bucket="code")
    packaged = lv(
        "package",
        "--s3-bucket",
        "code",
        "--output-template-file",
        "packaged.yaml",
        cwd=app,
        cache=package_cache,
        env=aws_env,
    )
    assert packaged.returncode == 0, packaged.stderr
    digest = json.loads((app / ".lambdavision" / "build" / "build.json").read_text())["functions"]["PyTorchFunction"][
        "sha256"
    ]
    zip_bytes = s3.get_object(Bucket="code", Key=f"{digest}.zip")["Body"].read()
    on_lambda, lambda_log = run_packaged_function(zip_bytes, aws_env, tmp_path)
    assert on_lambda["statusCode"] == 500
    # The caller gets a generic answer and a request id (SECURITY.md); the same reason is in the log.
    assert json.loads(on_lambda["body"]) == {
        "error": "function unavailable: it could not load its model or settings",
        "request_id": "local",
    }
    assert message in lambda_log

    # deploy refuses it, in one line with the fix; nothing is created.
    deploy = lv(
        "deploy", "--template-file", "packaged.yaml", "--stack-name", "classic", "--capabilities", "CAPABILITY_IAM",
        cwd=app, cache=package_cache, env=aws_env,
    )  # fmt: skip
    assert deploy.returncode == 1 and "Traceback" not in deploy.stderr
    [refusal] = [line for line in deploy.stderr.splitlines() if line.startswith("Error: ")]
    assert refusal.startswith(f"Error: PyTorchFunction: the model s3://models/{KEY} is a classic tarball")
    assert "run `lambdavision convert model.tar.gz model-onnx.tar.gz`" in refusal and "--convert" in refusal
    assert boto3.client("cloudformation").describe_stacks()["Stacks"] == []

    # The fast loop serves it (torch is in this venv), and says that is not what Lambda runs.
    venv = lv(
        "local", "invoke", "PyTorchFunction", "-n", "env.json", "--use-venv", cwd=app, cache=package_cache, env=aws_env
    )
    assert venv.returncode == 0, venv.stderr
    assert "NOT what Lambda runs" in venv.stderr

    # `upload --convert` converts on the way: the built package serves it, and deploy goes through.
    converted = lv(
        "upload", "--convert", str(classic_artifact), f"s3://models/{KEY}", cwd=app, cache=package_cache, env=aws_env
    )
    assert converted.returncode == 0, converted.stderr
    assert "Converted" in converted.stderr and "added ONNX" in converted.stderr
    event = {**json.loads(REST_EVENT.read_text()), "body": json.dumps({"image": base64.b64encode(photo).decode()})}
    (app / "photo-event.json").write_text(json.dumps(event))
    served = lv(
        "local", "invoke", "PyTorchFunction", "-n", "env.json", "-e", "photo-event.json",
        cwd=app, cache=package_cache, env=aws_env,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr
    answer = json.loads(served.stdout)
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["class"] in ("cat", "dog", "fish")
    again = lv(
        "deploy", "--template-file", "packaged.yaml", "--stack-name", "classic", "--capabilities", "CAPABILITY_IAM",
        cwd=app, cache=package_cache, env=aws_env,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr


def test_the_guides_own_template_is_refused_locally_as_lambda_would_refuse_it(
    tmp_path: Path, package_cache: Path
) -> None:
    guide = tmp_path / "guide-app"
    shutil.copytree(Path("/work/shared/reference/guide-app"), guide)
    result = lv("local", "invoke", "PyTorchFunction", "-e", "event.json", cwd=guide, cache=package_cache)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line == (
        "Error: PyTorchFunction: cannot package for python3.6: python3.6 is retired on Lambda (deprecated 2022-07-18; "
        "new functions refused since 2022-07-18); use Runtime: python3.12 or python3.13 (to run the code folder on "
        "this venv's Python instead, not what Lambda runs: --use-venv)"
    )
