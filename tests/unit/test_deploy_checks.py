"""The pure parts of the checks before deploy and of the local runs: handler imports, the head of a
model tarball, retired runtimes, IAM capabilities, and whether this host can run a package."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from datetime import date
from pathlib import Path

import pytest

from lambdavision.aws.model_check import classify_head
from lambdavision.aws.preflight import Preflight, StackTemplate, capability_problem
from lambdavision.builder.handler_source import defines, top_level_imports
from lambdavision.builder.host import HostPlatform, HostTarget, twin_reason, twin_target
from lambdavision.builder.imports_check import check_zip, describe, handler_module_file, importable_names
from lambdavision.builder.runtimes import retired_reason
from lambdavision.builder.wheels import Target
from lambdavision.cfn import parse_template
from lambdavision.cfn.functions import lambda_functions
from lambdavision.core.errors import LambdaVisionError

GUIDE_APP = Path("/work/shared/reference/guide-app/pytorch/app.py")

# --- handler imports ------------------------------------------------------------------------------


def test_module_level_imports_count_optional_and_type_only_ones_do_not() -> None:
    source = """
import os, json
import torch.nn.functional as F
from torchvision import models
from . import sibling
try:
    import unzip_requirements
except ImportError:
    pass
try:
    import required_anyway
finally:
    pass
if TYPE_CHECKING:
    import typing_only
if os.environ.get("X"):
    import conditional
else:
    from other.sub import thing
with open(__file__):
    import in_with
def later():
    import inside_function
class K:
    import inside_class
"""
    names = [imp.name for imp in top_level_imports(source)]
    assert names == ["os", "json", "torch", "torchvision", "required_anyway", "conditional", "other", "in_with"]
    assert top_level_imports("def broken(:\n") == []  # the runtime reports a syntax error itself


def test_the_guides_app_imports_torch_torchvision_requests_boto3() -> None:
    imports = {imp.name: imp.line for imp in top_level_imports(GUIDE_APP.read_text())}
    assert {"torch", "torchvision", "requests", "boto3", "PIL"} <= set(imports)
    assert "unzip_requirements" not in imports  # guarded by `except ImportError`
    assert imports["torch"] == 20 and imports["requests"] == 17


def test_what_a_zip_provides() -> None:
    members = [
        "app.py", "numpy/__init__.py", "numpy/core/x.py", "numpy.libs/libgfortran.so", "PIL/Image.py",
        "_cffi_backend.cpython-312-x86_64-linux-gnu.so", "six.pyc", "nspkg/mod.py", "numpy-2.4.dist-info/METADATA",
        "python/not-a-layer-here.py",
    ]  # fmt: skip
    assert importable_names(members) == {"app", "numpy", "PIL", "_cffi_backend", "six", "nspkg", "python"}
    layer = ["python/requests/__init__.py", "python/lib/python3.12/site-packages/torch/__init__.py", "python/x.py"]
    assert importable_names(layer, ["python/", "python/lib/python3.12/site-packages/"]) == {
        "requests", "torch", "x", "lib",
    }  # fmt: skip


def test_handler_module_and_function() -> None:
    assert handler_module_file("app.lambda_handler", ["app.py"]) == "app.py"
    assert handler_module_file("src.app.handler", ["src/app.py"]) == "src/app.py"
    assert handler_module_file("pkg.handler", ["pkg/__init__.py"]) == "pkg/__init__.py"
    assert handler_module_file("app.lambda_handler", ["other.py"]) is None
    assert defines("from lambdavision.handler import lambda_handler\n", "lambda_handler")
    assert defines("def lambda_handler(e, c): pass\n", "lambda_handler")
    assert defines("lambda_handler = make()\n", "lambda_handler")
    assert defines("from x import *\n", "lambda_handler")  # cannot tell: not refused
    assert not defines("def handler(e, c): pass\n", "lambda_handler")


def write_zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def test_the_guides_app_in_a_package_without_torch(tmp_path: Path) -> None:
    package = write_zip(tmp_path / "fn.zip", {"app.py": GUIDE_APP.read_text(), "PIL/__init__.py": ""})
    report = check_zip(package, "app.lambda_handler", "3.12")
    assert sorted(imp.name for imp in report.missing) == ["requests", "torch", "torchvision"]  # boto3: the runtime's
    message = describe("PyTorchFunction", "app.lambda_handler", report, "python3.12")
    assert message is not None
    assert "requests (line 17), torch (line 20), torchvision (line 22)" in message
    assert "torch and torchvision cannot ship in a Lambda zip" in message and "\n" not in message

    # A layer that holds them satisfies the check.
    layer = write_zip(
        tmp_path / "layer.zip",
        {"python/torch/__init__.py": "", "python/torchvision/__init__.py": "", "python/requests/__init__.py": ""},
    )
    assert check_zip(package, "app.lambda_handler", "3.12", [layer]).ok


def test_a_module_removed_from_the_runtimes_stdlib_is_missing(tmp_path: Path) -> None:
    package = write_zip(tmp_path / "fn.zip", {"app.py": "import imp\nimport json\ndef handler(e, c): pass\n"})
    assert [i.name for i in check_zip(package, "app.handler", "3.12").missing] == ["imp"]
    assert check_zip(package, "app.handler", "3.11").ok  # still there in 3.11


def test_missing_module_and_missing_function_are_named(tmp_path: Path) -> None:
    package = write_zip(tmp_path / "fn.zip", {"app.py": "def other(e, c): pass\n"})
    no_module = describe("Fn", "main.handler", check_zip(package, "main.handler", "3.12"), "python3.12")
    assert no_module is not None and "needs main.py, which is not in its package" in no_module
    no_function = describe("Fn", "app.handler", check_zip(package, "app.handler", "3.12"), "python3.12")
    assert no_function is not None and "app.py defines no handler" in no_function


# --- the head of a model tarball -------------------------------------------------------------------


def tarball(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_classic_full_and_broken_heads(demo_artifact: Path, classic_artifact: Path) -> None:
    assert classify_head(demo_artifact.read_bytes()[:65536]).kind == "onnx"
    classic = classify_head(classic_artifact.read_bytes()[:65536])
    assert classic.kind == "classic" and classic.detail == "resnet50_jit.pth"
    # classes.txt first, then the weights (tar czf classes.txt model.pth): the .pth is seen next.
    reordered = tarball([("./classes.txt", b"a\nb\n"), ("./model.pth", b"\0" * 4096)])
    assert classify_head(reordered).kind == "classic"
    assert classify_head(b"not gzip at all").kind == "not-artifact"
    assert classify_head(gzip.compress(b"x" * 2000)).kind == "not-artifact"
    with tarfile.open(demo_artifact) as tar:
        manifest = json.loads(tar.extractfile("lambdavision.json").read())  # type: ignore[union-attr]
    del manifest["sha256"]["model.onnx"]
    del manifest["sha256"]["model.onnx.data"]
    onnx_less = tarball([("lambdavision.json", json.dumps(manifest).encode()), ("classes.txt", b"a\n")])
    assert classify_head(onnx_less).kind == "classic"


# --- runtimes, capabilities ------------------------------------------------------------------------


def test_retired_runtimes_are_judged_on_the_day() -> None:
    today = date(2026, 12, 3)
    reason = retired_reason("python3.6", today)
    assert reason is not None and "new functions refused since 2022-07-18" in reason
    assert "no security patches" in (retired_reason("python3.9", today) or "")
    assert retired_reason("python3.12", today) is None
    assert retired_reason("python3.12", date(2029, 1, 1)) is not None
    assert retired_reason("nodejs22.x", today) is None  # not in the table: not judged


def test_iam_resources_need_capabilities() -> None:
    role = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}}
    named = {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "fixed"}}
    sam = {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "app.h"}}
    template = {"Resources": {"Role": role}}
    problem = capability_problem(template, [])
    assert problem is not None and "Role (AWS::IAM::Role)" in problem and "add --capabilities CAPABILITY_IAM" in problem
    assert capability_problem(template, ["CAPABILITY_IAM"]) is None
    assert capability_problem(template, ["CAPABILITY_NAMED_IAM"]) is None
    assert "CAPABILITY_NAMED_IAM" in (capability_problem({"Resources": {"R": named}}, ["CAPABILITY_IAM"]) or "")
    assert "FnRole (the role SAM creates for Fn)" in (capability_problem({"Resources": {"Fn": sam}}, []) or "")
    assert capability_problem({"Resources": {"Fn": {**sam, "Properties": {"Role": "arn:x"}}}}, []) is None


# --- this host and a package -----------------------------------------------------------------------

LINUX_X86 = HostPlatform("Linux", "x86_64", (2, 36))


def test_a_linux_host_of_the_same_architecture_runs_the_package() -> None:
    assert twin_reason(Target("python3.12", "x86_64"), LINUX_X86) is None


def test_another_architecture_gets_the_hosts_wheels() -> None:
    target = Target("python3.12", "arm64")
    assert twin_reason(target, LINUX_X86) == "the package is built for arm64 and this host is x86_64"
    assert twin_target(target, LINUX_X86) == Target("python3.12", "x86_64")


def test_an_older_glibc_gets_wheels_it_can_load() -> None:
    old = HostPlatform("Linux", "x86_64", (2, 31))
    target = Target("python3.12", "x86_64")
    assert "glibc 2.34" in (twin_reason(target, old) or "")
    twin = twin_target(target, old)
    assert isinstance(twin, HostTarget)
    assert twin.platform_tags[0] == "manylinux_2_31_x86_64" and twin.platform_tags[-1] == "manylinux2014_x86_64"
    assert "manylinux_2_34_x86_64" not in twin.platform_tags


def test_macos_gets_macos_wheels_and_other_systems_a_clear_error() -> None:
    mac = HostPlatform("Darwin", "arm64", None, (14, 5))
    target = Target("python3.13", "x86_64")
    assert "Darwin arm64" in (twin_reason(target, mac) or "")
    twin = twin_target(target, mac)
    assert twin.platform_tags == ["macosx_14_0_arm64"] and twin.python_version == "3.13"
    assert twin.slug == "python3.13-macosx_14_0_arm64"
    with pytest.raises(LambdaVisionError, match="--use-venv"):
        twin_target(target, HostPlatform("Windows", "x86_64", None))


def test_the_checks_read_a_sam_template_through_the_transform_and_resolve_only_what_is_known() -> None:
    """deploy hands the checks plain CloudFormation; given SAM, they see SAM's own Globals merge (the
    function's variables over the Globals', Layers appended) and resolve only what is known before
    the deploy (a parameter, the region; not the account)."""
    template = parse_template("""
Transform: AWS::Serverless-2016-10-31
Parameters: {Bucket: {Type: String}}
Globals:
  Function:
    Layers: [arn:aws:lambda:eu-west-1:123456789012:layer:shared:1]
    Environment: {Variables: {MODEL_BUCKET: !Ref Bucket, MODEL_KEY: global.tar.gz, OWNER: !Ref AWS::AccountId}}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://code/fn.zip
      Handler: app.handler
      Runtime: python3.12
      Layers: [arn:aws:lambda:eu-west-1:123456789012:layer:own:2]
      Environment: {Variables: {MODEL_KEY: !Sub "models/${AWS::Region}/model.tar.gz"}}
""")
    stack = StackTemplate.of(Preflight(template, {"Bucket": "models"}, [], "eu-west-1"))
    [(function_id, props)] = list(lambda_functions(stack.template, stack.resolver))
    variables = props["Environment"]["Variables"]
    assert function_id == "Fn"
    assert stack.value(variables["MODEL_BUCKET"]) == "models"
    assert stack.value(variables["MODEL_KEY"]) == "models/eu-west-1/model.tar.gz"
    assert stack.value(variables["OWNER"]) is None
    assert [stack.value(layer) for layer in props["Layers"]] == [
        "arn:aws:lambda:eu-west-1:123456789012:layer:shared:1",
        "arn:aws:lambda:eu-west-1:123456789012:layer:own:2",
    ]
    assert stack.value(props["Code"]["S3Bucket"]) == "code" and stack.value(props["Code"]["S3Key"]) == "fn.zip"
