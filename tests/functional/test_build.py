"""`lambdavision build` as a subprocess: the build folder, what makes it rebuild, and `package`
uploading exactly the bytes it built (one code path builds)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3

from lambdavision.cfn import parse_template as load_template

LAMBDAVISION = str(Path(sys.executable).with_name("lambdavision"))


def lv(*args: str, cwd: Path, cache: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**(env or os.environ), "LAMBDAVISION_CACHE_DIR": str(cache)}
    return subprocess.run([LAMBDAVISION, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_reuses_until_an_input_changes_and_package_uploads_the_built_bytes(
    tmp_path: Path, package_cache: Path, aws_env: dict[str, str]
) -> None:
    assert lv("init", "app", "--bucket", "models", cwd=tmp_path, cache=package_cache).returncode == 0
    app = tmp_path / "app"
    built = app / ".lambdavision" / "build" / "PyTorchFunction.zip"

    first = lv("build", cwd=app, cache=package_cache)
    assert first.returncode == 0, first.stderr
    assert "writing .lambdavision/build/PyTorchFunction.zip" in first.stdout
    digest, mtime = sha256(built), built.stat().st_mtime_ns
    record = json.loads((app / ".lambdavision" / "build" / "build.json").read_text())
    entry = record["functions"]["PyTorchFunction"]
    assert (entry["zip"], entry["sha256"], entry["runtime"], entry["architecture"]) == (
        "PyTorchFunction.zip", digest, "python3.12", "x86_64",
    )  # fmt: skip
    with zipfile.ZipFile(built) as zf:
        names = set(zf.namelist())
    assert {"app.py", "lambdavision/handler.py", "onnxruntime/__init__.py", "numpy/__init__.py"} <= names

    # Unchanged inputs: nothing is rebuilt, not even the file's time changes.
    second = lv("build", cwd=app, cache=package_cache)
    assert second.returncode == 0, second.stderr
    assert (
        f"PyTorchFunction: inputs unchanged, reusing .lambdavision/build/PyTorchFunction.zip (sha256 {digest[:12]})"
        in (second.stdout)
    )
    assert "writing" not in second.stdout and built.stat().st_mtime_ns == mtime

    # `package` reuses the built zip: S3 gets exactly its bytes, under their sha256.
    boto3.client("s3").create_bucket(Bucket="code")
    packaged = lv(
        "package", "--s3-bucket", "code", "--output-template-file", "packaged.yaml", cwd=app, cache=package_cache,
        env=aws_env,
    )  # fmt: skip
    assert packaged.returncode == 0, packaged.stderr
    assert "inputs unchanged, reusing" in packaged.stdout and "writing" not in packaged.stdout
    uploaded = boto3.client("s3").get_object(Bucket="code", Key=f"{digest}.zip")["Body"].read()
    assert uploaded == built.read_bytes()
    code = load_template((app / "packaged.yaml").read_text())["Resources"]["PyTorchFunction"]["Properties"]["Code"]
    assert code == {"S3Bucket": "code", "S3Key": f"{digest}.zip"}

    # What `package` ignores (bytecode, .git) is no input; a code change is.
    (app / "function" / "__pycache__").mkdir()
    (app / "function" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"stale")
    assert "inputs unchanged" in lv("build", cwd=app, cache=package_cache).stdout
    (app / "function" / "helper.py").write_text("VALUE = 1\n")
    changed = lv("build", cwd=app, cache=package_cache)
    assert changed.returncode == 0, changed.stderr
    assert "writing .lambdavision/build/PyTorchFunction.zip" in changed.stdout
    assert sha256(built) != digest
    with zipfile.ZipFile(built) as zf:
        assert "helper.py" in zf.namelist() and not [n for n in zf.namelist() if "cpython-311" in n]

    # A zip edited in the build folder is not trusted: rebuilt, and reproducibly the same bytes again.
    digest = sha256(built)
    built.write_bytes(b"corrupted")
    repaired = lv("build", cwd=app, cache=package_cache)
    assert "writing" in repaired.stdout and sha256(built) == digest

    # A setting that changes the bytes rebuilds: --layer moves the dependencies into a layer zip.
    layered = lv("build", "--layer", cwd=app, cache=package_cache)
    assert layered.returncode == 0, layered.stderr
    layer = app / ".lambdavision" / "build" / "LambdaVisionDepsPython312X8664.zip"
    assert layer.is_file() and built.stat().st_size < 1_000_000
    entry = json.loads((app / ".lambdavision" / "build" / "build.json").read_text())["functions"]["PyTorchFunction"]
    assert entry["layer"] == {"id": "LambdaVisionDepsPython312X8664", "zip": layer.name, "sha256": sha256(layer)}
    assert "inputs unchanged" in lv("build", "--layer", cwd=app, cache=package_cache).stdout


def test_build_names_functions_and_refuses_unknown_ones(tmp_path: Path, package_cache: Path) -> None:
    assert lv("init", "app", "--bucket", "models", cwd=tmp_path, cache=package_cache).returncode == 0
    unknown = lv("build", "NoSuchFunction", cwd=tmp_path / "app", cache=package_cache)
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert unknown.stderr.strip() == (
        "Error: no function NoSuchFunction with a local code folder to build (there is: PyTorchFunction)"
    )
    assert not (tmp_path / "app" / ".lambdavision").exists()


def test_build_and_package_warn_when_the_handler_imports_what_the_package_lacks(
    tmp_path: Path, package_cache: Path
) -> None:
    assert lv("init", "app", "--bucket", "models", cwd=tmp_path, cache=package_cache).returncode == 0
    app = tmp_path / "app"
    (app / "function" / "app.py").write_text("import requests\nfrom lambdavision.handler import lambda_handler\n")
    result = lv("build", cwd=app, cache=package_cache)
    assert result.returncode == 0, result.stderr
    [warning] = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert "app.py imports requests (line 1), which is not in its package" in warning
