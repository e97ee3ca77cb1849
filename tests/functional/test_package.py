"""`lambdavision package` end to end: real wheels for Lambda's platform, a real CPython 3.12 running
the extracted zip in isolation, and uploads and stacks on a real moto server.

Wheels come from the package registry once per architecture per session, into a cache folder
under pytest's tmp; every later build in the session reuses them (and the staged dependencies).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from lambdavision.builder.installed import installed_closure, installed_sizes
from lambdavision.builder.plan import PackageError
from lambdavision.builder.wheels import find_python
from lambdavision.builder.zipbuild import sizes
from lambdavision.cfn import parse_template as load_template

REPO = Path(__file__).resolve().parents[2]
LAMBDAVISION = Path(sys.executable).with_name("lambdavision")
REST_EVENT = REPO / "tests" / "events" / "apigw-rest-v1.json"
EM_X86_64, EM_AARCH64 = 62, 183
# With these, any pip run fails at once instead of reaching an index: proof that a build used
# only the wheel cache.
OFFLINE_PIP = {
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_NO_INDEX": "1",
    "PIP_FIND_LINKS": "",
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
}

ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    },
}


def write_app(folder: Path, runtime: str = "python3.12", architecture: str = "x86_64") -> Path:
    """What `lambdavision init` writes, reduced to what `package` reads: a function folder and a template."""
    (folder / "function").mkdir(parents=True)
    (folder / "function" / "app.py").write_text("from lambdavision.handler import lambda_handler  # noqa: F401\n")
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {"Architecture": {"Type": "String", "Default": architecture}},
        "Resources": {
            "PyTorchFunctionRole": ROLE,
            "PyTorchFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Code": "function/",
                    "Handler": "app.lambda_handler",
                    "Runtime": runtime,
                    "Architectures": [{"Ref": "Architecture"}],
                    "MemorySize": 1024,
                    "Role": {"Fn::GetAtt": ["PyTorchFunctionRole", "Arn"]},
                },
            },
        },
        "Outputs": {"FunctionArn": {"Value": {"Fn::GetAtt": ["PyTorchFunction", "Arn"]}}},
    }
    path = folder / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


def run_package(
    args: list[str], cwd: Path, cache: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAMBDAVISION_CACHE_DIR": str(cache), **(extra_env or {})}
    return subprocess.run(
        [str(LAMBDAVISION), "package", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


@pytest.fixture(scope="module")
def x86_build(tmp_path_factory: pytest.TempPathFactory, package_cache: Path, demo_artifact: Path) -> dict[str, Any]:
    """python3.12 x86_64 with the demo model bundled, built without uploading."""
    folder = tmp_path_factory.mktemp("x86-app")
    write_app(folder)
    proc = run_package(
        ["--no-upload", "--output-dir", "dist", "--bundle-model", str(demo_artifact),
         "--output-template-file", "packaged.yaml"],
        folder, package_cache,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {"folder": folder, "zip": folder / "dist" / "PyTorchFunction.zip", "proc": proc}


@pytest.fixture
def fresh_cache(tmp_path: Path) -> Path:
    return tmp_path / "empty-cache"


# --- the x86_64 package ------------------------------------------------------------------------


RUNNER = textwrap.dedent(
    """
    import base64, json, sys
    root, event_path, *images = sys.argv[1:]
    assert not [p for p in sys.path if "site-packages" in p], sys.path  # -I -S: the stdlib only
    sys.path.insert(0, root)
    import app  # the function module, as Lambda imports it from /var/task
    template = json.load(open(event_path))
    answers = []
    for image in images:
        body = json.dumps({"image": base64.b64encode(open(image, "rb").read()).decode()})
        response = app.lambda_handler(dict(template, body=body), None)
        answers.append({"status": response["statusCode"], "body": json.loads(response["body"])})
    modules = {name: getattr(mod, "__file__", None) for name, mod in sys.modules.items()}
    print("RESULT " + json.dumps({"answers": answers, "modules": modules}))
    """
)


def test_package_runs_isolated_under_cpython_312_and_classifies(
    x86_build: dict[str, Any], tmp_path: Path, demo_samples: list[tuple[Path, str]]
) -> None:
    python312 = find_python("3.12", os.environ)
    assert python312 is not None, "these machines have CPython 3.12 (pyenv); the test needs it"
    root = tmp_path / "task"
    root.mkdir()
    with zipfile.ZipFile(x86_build["zip"]) as zf:
        zf.extractall(root)
    before = {p for p in root.rglob("*") if p.is_file()}
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)

    proc = subprocess.run(
        [str(python312.path), "-I", "-S", str(runner), str(root), str(REST_EVENT), *(str(p) for p, _ in demo_samples)],
        env={"PATH": "/usr/bin:/bin", "LAMBDA_TASK_ROOT": str(root)},
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr + proc.stdout
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    for (image, expected), answer in zip(demo_samples, result["answers"], strict=True):
        assert answer["status"] == 200, (image.name, answer)
        assert answer["body"]["class"] == expected, (image.name, answer)
    modules = result["modules"]
    for name in ("numpy", "onnxruntime", "PIL.Image", "lambdavision.handler", "app"):
        assert modules[name].startswith(str(root)), (name, modules[name])
    assert not {"torch", "boto3", "botocore", "click", "rich", "yaml"} & {m.split(".")[0] for m in modules}
    # Every module imported had a valid .pyc of the runtime's version: nothing was compiled again.
    assert {p for p in root.rglob("*") if p.is_file()} == before


def test_x86_package_holds_only_what_runs(x86_build: dict[str, Any]) -> None:
    names = zip_names(x86_build["zip"])
    files = [n for n in names if not n.endswith("/")]
    # The bundled model arrives unpacked for serving: no gunzip and no TorchScript copy at cold start.
    assert {
        "model/lambdavision.json",
        "model/classes.txt",
        "model/model.onnx",
        "model/model.onnx.data",
        "app.py",
    } <= set(files)
    assert not [n for n in files if n.endswith((".pth", ".tar.gz"))]
    assert "lambdavision/handler.py" in files and "lambdavision/core/preprocess.py" in files
    tops = {n.split("/")[0] for n in files}
    assert {"numpy", "onnxruntime", "PIL", "numpy.libs", "pillow.libs"} <= tops
    assert not tops & {"torch", "boto3", "botocore", "google", "flatbuffers", "sympy"}
    lambdavision_parts = {n.split("/")[1] for n in files if n.startswith("lambdavision/")}
    assert not lambdavision_parts & {"cli", "aws", "local", "export", "export.py", "zoo.py"}
    assert not [n for n in files if "/tests/" in n or n.endswith((".pyi", ".h"))]
    assert not [n for n in files if n.startswith("onnxruntime/capi/libonnxruntime.so")]
    assert not [n for n in files if n.startswith(("onnxruntime/tools/", "onnxruntime/transformers/"))]
    pycs = [n for n in files if n.endswith(".pyc")]
    assert pycs and all(".cpython-312." in n for n in pycs)
    assert "lambdavision/__pycache__/handler.cpython-312.pyc" in pycs and "__pycache__/app.cpython-312.pyc" in pycs
    with zipfile.ZipFile(x86_build["zip"]) as zf:
        # compiled as Lambda will find them: tracebacks name /var/task paths
        assert b"/var/task/app.py" in zf.read("__pycache__/app.cpython-312.pyc")
        for info in zf.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 in (0o100644, 0o040755)
            if info.filename.endswith(".so") or ".so." in info.filename:
                assert zipbuild_machine(zf.read(info)[:20]) == EM_X86_64, info.filename


def zipbuild_machine(header: bytes) -> int | None:
    # Read independently of the code under test: e_machine is the 16-bit word at offset 18.
    return int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else None


def test_size_table_is_printed_and_within_lambda_limits(x86_build: dict[str, Any]) -> None:
    measured = sizes(x86_build["zip"])
    out = x86_build["proc"].stdout
    assert "PyTorchFunction (function)" in out
    assert f"{measured.zipped / 2**20:.1f} MB" in out and f"{measured.unzipped / 2**20:.1f} MB" in out
    assert "50.0 MB zipped" in out and "250.0 MB unzipped" in out
    assert measured.zipped < 50 * 2**20 and measured.unzipped < 250 * 2**20
    assert measured.unzipped == sum(size for _, size in measured.parts)
    assert measured.parts[0][0] == "onnxruntime/"
    packaged = load_template((x86_build["folder"] / "packaged.yaml").read_text())
    assert packaged["Resources"]["PyTorchFunction"]["Properties"]["Code"] == "dist/PyTorchFunction.zip"


# --- second build: offline, reproducible, uploaded ----------------------------------------------


def test_second_package_is_offline_reproducible_and_uploads_once(
    x86_build: dict[str, Any], package_cache: Path, demo_artifact: Path, aws_env: dict[str, str], tmp_path: Path
) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lambda-code")
    write_app(tmp_path)
    args = [
        "--s3-bucket", "lambda-code", "--s3-prefix", "apps/demo", "--output-dir", "dist",
        "--bundle-model", str(demo_artifact), "--output-template-file", "packaged.yaml",
    ]  # fmt: skip

    # A cache holding only the downloaded wheels: everything else (unpack, prune, compile, zip)
    # is done again from scratch, and must give the same bytes.
    wheels_only = tmp_path / "cache"
    shutil.copytree(package_cache / "wheels", wheels_only / "wheels")

    proc = run_package(args, tmp_path, wheels_only, {**aws_env, **OFFLINE_PIP})

    assert proc.returncode == 0, proc.stderr
    assert "wheel cache hit for python3.12-x86_64" in proc.stdout and "downloading" not in proc.stdout
    assert "installing 3 wheels for python3.12-x86_64" in proc.stdout
    zip_path = tmp_path / "dist" / "PyTorchFunction.zip"
    digest = sha256_of(zip_path)
    assert digest == sha256_of(x86_build["zip"])  # same inputs, same bytes
    key = f"apps/demo/{digest}.zip"
    head = s3.head_object(Bucket="lambda-code", Key=key)
    assert head["ContentLength"] == zip_path.stat().st_size
    assert head["Metadata"]["sha256"] == digest
    packaged = load_template((tmp_path / "packaged.yaml").read_text())
    function = packaged["Resources"]["PyTorchFunction"]["Properties"]
    assert function["Code"] == {"S3Bucket": "lambda-code", "S3Key": key}
    assert function["Role"] == {"Fn::GetAtt": ["PyTorchFunctionRole", "Arn"]}  # the rest round-trips

    # The stack built from the packaged template runs the uploaded code (moto checks the key exists).
    cfn = boto3.client("cloudformation")
    cfn.create_stack(StackName="pkg", TemplateBody=(tmp_path / "packaged.yaml").read_text())
    assert wait_for_stack(cfn, "pkg") == "CREATE_COMPLETE"
    function_name = physical_id(cfn, "pkg", "PyTorchFunction")
    config = boto3.client("lambda").get_function(FunctionName=function_name)["Configuration"]
    assert config["CodeSize"] == zip_path.stat().st_size
    assert config["CodeSha256"] == base64.b64encode(bytes.fromhex(digest)).decode()

    again = run_package(args, tmp_path, wheels_only, {**aws_env, **OFFLINE_PIP})
    assert again.returncode == 0, again.stderr
    # Nothing changed: the build folder's zip is reused as it is (not even restaged), and not uploaded.
    assert "PyTorchFunction: inputs unchanged, reusing dist/PyTorchFunction.zip" in again.stdout
    assert "installing" not in again.stdout and "writing" not in again.stdout
    assert f"s3://lambda-code/{key} is already there" in again.stdout and "uploaded" not in again.stdout


def wait_for_stack(cfn: Any, name: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        status = str(cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])
        if not status.endswith("IN_PROGRESS") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def physical_id(cfn: Any, stack: str, logical_id: str) -> str:
    resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    return str(next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == logical_id))


# --- arm64 --------------------------------------------------------------------------------------


def test_arm64_package_holds_only_aarch64_libraries(tmp_path: Path, package_cache: Path) -> None:
    write_app(tmp_path, architecture="arm64")
    proc = run_package(["--no-upload", "--output-dir", "dist", "-q"], tmp_path, package_cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("AWSTemplateFormatVersion")  # -q: only the packaged template
    machines: dict[str, int | None] = {}
    with zipfile.ZipFile(tmp_path / "dist" / "PyTorchFunction.zip") as zf:
        for info in zf.infolist():
            machine = zipbuild_machine(zf.read(info)[:20]) if not info.is_dir() else None
            if machine is not None:
                machines[info.filename] = machine
    assert len(machines) >= 10  # onnxruntime, numpy and Pillow's extensions and vendored libraries
    assert set(machines.values()) == {EM_AARCH64}, {n: m for n, m in machines.items() if m != EM_AARCH64}
    assert any(n.startswith("onnxruntime/capi/onnxruntime_pybind11_state") for n in machines)


# --- limits and refusals ------------------------------------------------------------------------


def test_over_the_limit_is_refused_naming_the_biggest_parts(
    x86_build: dict[str, Any], tmp_path: Path, package_cache: Path
) -> None:
    write_app(tmp_path)
    proc = run_package(
        ["--no-upload", "--output-dir", "dist", "--max-unzipped-bytes", str(60 * 2**20)], tmp_path, package_cache
    )
    assert proc.returncode == 1
    [message] = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert "over Lambda's 60.0 MB limit" in message and "biggest parts: onnxruntime/" in message
    parts = message.split("biggest parts: ")[1].split(", ")
    assert len(parts) == 5 and "numpy.libs/" in message
    assert not (tmp_path / "dist" / "PyTorchFunction.zip").exists()


def test_python311_is_refused_before_any_download(tmp_path: Path, fresh_cache: Path) -> None:
    write_app(tmp_path, runtime="python3.11")
    proc = run_package(["--no-upload"], tmp_path, fresh_cache)
    assert proc.returncode == 1
    assert "glibc 2.28" in proc.stderr and "python3.12" in proc.stderr and "Traceback" not in proc.stderr
    assert not fresh_cache.exists()


def test_missing_bucket_is_one_line_before_building(tmp_path: Path, fresh_cache: Path, aws_env: dict[str, str]) -> None:
    write_app(tmp_path)
    proc = run_package(["--s3-bucket", "no-such-bucket"], tmp_path, fresh_cache, aws_env)
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert "no-such-bucket" in line and "does not exist" in line
    assert not fresh_cache.exists()


def test_bad_model_and_missing_bucket_option_are_clear(tmp_path: Path, fresh_cache: Path) -> None:
    write_app(tmp_path)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball")
    proc = run_package(["--no-upload", "--bundle-model", str(junk)], tmp_path, fresh_cache)
    assert proc.returncode == 1 and "junk.tar.gz" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_package([], tmp_path, fresh_cache)
    assert proc.returncode == 2 and "--s3-bucket" in proc.stderr
    assert not fresh_cache.exists()


# --- --layer, --include-boto3 -------------------------------------------------------------------


def test_layer_with_boto3_deploys_on_moto(
    x86_build: dict[str, Any], tmp_path: Path, package_cache: Path, aws_env: dict[str, str]
) -> None:
    boto3.client("s3").create_bucket(Bucket="layers")
    template = write_app(tmp_path)
    args = ["--layer", "--include-boto3", "--s3-bucket", "layers", "--output-dir", "dist",
            "--output-template-file", "packaged.yaml"]  # fmt: skip

    proc = run_package(args, tmp_path, package_cache, aws_env)

    assert proc.returncode == 0, proc.stderr
    layer_id = "LambdaVisionDepsPython312X8664Boto3"
    layer_zip, function_zip = tmp_path / "dist" / f"{layer_id}.zip", tmp_path / "dist" / "PyTorchFunction.zip"
    layer_names, function_names = zip_names(layer_zip), zip_names(function_zip)
    assert all(n.startswith("python/") for n in layer_names)
    layer_tops = {n.split("/")[1] for n in layer_names if n.count("/") > 1}
    assert {"boto3", "botocore", "numpy", "onnxruntime", "PIL"} <= layer_tops
    with zipfile.ZipFile(layer_zip) as zf:
        assert b"/opt/python/numpy/__init__.py" in zf.read("python/numpy/__pycache__/__init__.cpython-312.pyc")
    assert {n.split("/")[0] for n in function_names} == {"app.py", "__pycache__", "lambdavision"}
    assert function_zip.stat().st_size < 1_000_000  # the code alone: kilobytes
    assert not {"boto3", "botocore"} & {n.split("/")[0] for n in zip_names(x86_build["zip"])}  # only when asked
    assert f"{layer_id} (layer)" in proc.stdout

    packaged = load_template((tmp_path / "packaged.yaml").read_text())
    resources = packaged["Resources"]
    layer_sha, function_sha = sha256_of(layer_zip), sha256_of(function_zip)
    assert resources[layer_id] == {
        "Type": "AWS::Lambda::LayerVersion",
        "Properties": {
            "Description": "lambdavision dependencies for python3.12 x86_64",
            "Content": {"S3Bucket": "layers", "S3Key": f"{layer_sha}.zip"},
            "CompatibleRuntimes": ["python3.12"],
            "CompatibleArchitectures": ["x86_64"],
        },
    }
    function = resources["PyTorchFunction"]["Properties"]
    assert function["Layers"] == [{"Ref": layer_id}]
    assert function["Code"] == {"S3Bucket": "layers", "S3Key": f"{function_sha}.zip"}
    lint = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(tmp_path / "packaged.yaml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr

    # moto creates the layer (it drops CompatibleArchitectures and the function's Layers: see above).
    cfn, lam = boto3.client("cloudformation"), boto3.client("lambda")
    cfn.create_stack(StackName="layered", TemplateBody=(tmp_path / "packaged.yaml").read_text())
    assert wait_for_stack(cfn, "layered") == "CREATE_COMPLETE"
    [layer] = lam.list_layers()["Layers"]
    [version] = lam.list_layer_versions(LayerName=layer["LayerName"])["LayerVersions"]
    assert version["CompatibleRuntimes"] == ["python3.12"]
    content = lam.get_layer_version(LayerName=layer["LayerName"], VersionNumber=version["Version"])["Content"]
    assert content["CodeSize"] == layer_zip.stat().st_size
    assert content["CodeSha256"] == base64.b64encode(bytes.fromhex(layer_sha)).decode()

    # A code change uploads the function's kilobytes only; the layer is reused as it is.
    (tmp_path / "function" / "app.py").write_text("from lambdavision.handler import lambda_handler  # v2\n")
    again = run_package(args, tmp_path, package_cache, {**aws_env, **OFFLINE_PIP})
    assert again.returncode == 0, again.stderr
    assert f"s3://layers/{layer_sha}.zip is already there" in again.stdout
    assert "uploaded PyTorchFunction.zip" in again.stdout
    assert sha256_of(layer_zip) == layer_sha and sha256_of(function_zip) != function_sha
    assert template.read_text().count("function/") == 1  # the source template is never rewritten


# --- another deployment's sizes (the benchmark's baseline) ---------------------------------------


def test_installed_sizes_measure_a_pip_style_deployment(tmp_path: Path) -> None:
    closure = {d.metadata["Name"].lower() for d in installed_closure(["boto3"])}
    assert {"boto3", "botocore", "s3transfer", "jmespath"} <= closure

    measured = installed_sizes(["click"], tmp_path / "click.zip")

    dist = importlib.metadata.distribution("click")
    files = [f for f in dist.files or [] if "__pycache__" not in f.parts and ".." not in f.parts]
    assert measured.unzipped == sum(Path(str(dist.locate_file(f))).stat().st_size for f in files)
    assert measured.parts[0][0] == "click/"
    assert not [n for n in zip_names(tmp_path / "click.zip") if n.endswith(".pyc")]
    with pytest.raises(PackageError, match="not installed"):
        installed_sizes(["no-such-distribution"], tmp_path / "none.zip")
