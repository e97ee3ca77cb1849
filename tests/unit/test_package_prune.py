"""The packaging rules on small fake trees: prune, zip, sizes, ELF checks, targets, templates."""

from __future__ import annotations

import hashlib
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest

from lambdavision.aws import package, wheels, zipbuild
from lambdavision.aws.package import BuildResult, BuiltZip, FunctionPackage, PackageError
from lambdavision.aws.wheels import Target
from lambdavision.core.errors import LambdaVisionError


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def tree_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --- pruning -----------------------------------------------------------------------------------

KEPT = {
    "numpy/__init__.py",
    "numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu.so",
    "numpy/testing/__init__.py",  # not a test suite: numpy.testing is a public module
    "numpy.libs/libscipy_openblas64_-ff651d7f.so",
    "numpy-2.4.6.dist-info/METADATA",
    "numpy-2.4.6.dist-info/WHEEL",
    "numpy-2.4.6.dist-info/licenses/numpy/_core/include/numpy/libdivide/LICENSE.txt",
    "numpy-2.4.6.dist-info/licenses/vendored.h",  # licence texts stay, whatever their name
    "onnxruntime/__init__.py",
    "onnxruntime/capi/onnxruntime_pybind11_state.cpython-312-x86_64-linux-gnu.so",
    "onnxruntime/capi/libonnxruntime_providers_shared.so",
    "onnxruntime/capi/_pybind_state.py",
    "onnxruntime/ThirdPartyNotices.txt",
    "PIL/Image.py",
    "PIL/py.typed",
    "PIL/_imagingcms.cpython-312-x86_64-linux-gnu.so",
    "pillow.libs/libjpeg-45e70d75.so.62.4.0",
    "latest/contest.py",  # "tests" only as a whole directory name
}
PRUNED = {
    "numpy/_core/tests/test_multiarray.py",
    "numpy/tests/data/x.npy",
    "numpy/_core/include/numpy/ndarrayobject.h",
    "numpy/_core/lib/libnpymath.a",
    "numpy/_core/lib/pkgconfig/numpy.pc",
    "numpy/f2py/__init__.py",
    "numpy/_pyinstaller/hook-numpy.py",
    "numpy/__init__.pyi",
    "numpy/random/bit_generator.pxd",
    "numpy/__pycache__/__init__.cpython-311.pyc",
    "numpy-2.4.6.dist-info/RECORD",
    "numpy-2.4.6.dist-info/entry_points.txt",
    "onnxruntime/tools/convert_onnx_models_to_ort.py",
    "onnxruntime/quantization/quantize.py",
    "onnxruntime/transformers/optimizer.py",
    "onnxruntime/capi/libonnxruntime.so.1.32.0",
    "PIL/Image.pyi",
    "PIL/_avif.cpython-312-x86_64-linux-gnu.so",
    "PIL/_imagingft.cpython-312-x86_64-linux-gnu.so",
    "numpy/_core/_simd.cpython-312-x86_64-linux-gnu.so",
    "numpy/_core/_umath_tests.cpython-312-x86_64-linux-gnu.so",
    "PIL/stray.cpython-313.pyc",
    "tests/test_top_level.py",
}


def test_prune_removes_what_never_runs_and_keeps_the_rest(tmp_path: Path) -> None:
    make_tree(tmp_path, {name: b"x" * 10 for name in KEPT | PRUNED})

    removed = zipbuild.prune(tmp_path)

    assert tree_files(tmp_path) == KEPT
    removed_paths = {r.path for r in removed}
    # Whole directories are reported once, files inside them are not listed separately.
    assert "numpy/_core/tests" in removed_paths
    assert "numpy/_core/tests/test_multiarray.py" not in removed_paths
    assert "onnxruntime/capi/libonnxruntime.so.1.32.0" in removed_paths
    assert sum(r.size for r in removed) == 10 * len(PRUNED)
    assert all(r.reason for r in removed)
    assert [r.path for r in removed] == sorted(removed_paths)
    assert not (tmp_path / "numpy/_core/tests").exists()


def test_prune_is_idempotent(tmp_path: Path) -> None:
    make_tree(tmp_path, {name: b"x" for name in KEPT | PRUNED})
    zipbuild.prune(tmp_path)
    assert zipbuild.prune(tmp_path) == []
    assert tree_files(tmp_path) == KEPT


@pytest.mark.parametrize(
    ("path", "is_dir", "pruned"),
    [
        ("numpy/linalg/tests", True, True),
        ("numpy/linalg/tests", False, False),  # a file called "tests" is not a test suite
        ("onnxruntime/capi/libonnxruntime.so", False, True),
        ("onnxruntime/capi/libonnxruntime_providers_shared.so", False, False),
        ("onnxruntime/backend", True, False),
        ("x.dist-info/METADATA", False, False),
        ("x.dist-info/INSTALLER", False, True),
        ("x.dist-info/licenses/include/a.h", False, False),
        ("pkg/include/a.h", False, True),
        ("pkg/module.py", False, False),
    ],
)
def test_prune_reason(path: str, is_dir: bool, pruned: bool) -> None:
    assert (zipbuild.prune_reason(path, is_dir) is not None) is pruned


# --- the reproducible zip -----------------------------------------------------------------------


def test_zip_is_byte_for_byte_reproducible_with_fixed_metadata(tmp_path: Path) -> None:
    make_tree(tmp_path / "a", {"pkg/mod.py": b"print(1)\n", "pkg/sub/data.bin": bytes(range(256)) * 50})
    make_tree(tmp_path / "b", {"app.py": b"x = 1\n"})
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"model")
    (tmp_path / "a/pkg/mod.py").chmod(0o600)  # permissions on disk do not leak into the zip

    members = zipbuild.collect(
        [zipbuild.Source(tmp_path / "a"), zipbuild.Source(tmp_path / "b")], {"model.tar.gz": model}
    )
    zipbuild.write_reproducible_zip(members, tmp_path / "one.zip")
    (tmp_path / "b/app.py").touch()  # a new mtime changes nothing
    zipbuild.write_reproducible_zip(dict(reversed(list(members.items()))), tmp_path / "two.zip")

    one, two = (tmp_path / "one.zip").read_bytes(), (tmp_path / "two.zip").read_bytes()
    assert hashlib.sha256(one).hexdigest() == hashlib.sha256(two).hexdigest()
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names)
        assert names == ["app.py", "model.tar.gz", "pkg/", "pkg/mod.py", "pkg/sub/", "pkg/sub/data.bin"]
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            mode = info.external_attr >> 16
            assert mode == (0o040755 if info.is_dir() else 0o100644)
        assert zf.read("pkg/sub/data.bin") == bytes(range(256)) * 50
        assert zf.getinfo("pkg/sub/data.bin").compress_type == zipfile.ZIP_DEFLATED


def test_collect_refuses_two_files_with_one_name(tmp_path: Path) -> None:
    make_tree(tmp_path / "a", {"app.py": b"1"})
    make_tree(tmp_path / "b", {"app.py": b"2"})
    with pytest.raises(LambdaVisionError, match=r"app\.py"):
        zipbuild.collect([zipbuild.Source(tmp_path / "a"), zipbuild.Source(tmp_path / "b")])


def test_sizes_name_the_biggest_top_level_parts(tmp_path: Path) -> None:
    make_tree(tmp_path / "f", {"numpy/a.so": b"n" * 3000, "numpy/b.py": b"n" * 1000, "app.py": b"a" * 10})
    make_tree(tmp_path / "l", {"PIL/x.so": b"p" * 2000, "onnxruntime/y.so": b"o" * 5000})
    zipbuild.write_reproducible_zip(zipbuild.collect([zipbuild.Source(tmp_path / "f")]), tmp_path / "f.zip")
    layer_members = zipbuild.collect([zipbuild.Source(tmp_path / "l", "python/")])
    zipbuild.write_reproducible_zip(layer_members, tmp_path / "l.zip")

    function_sizes = zipbuild.sizes(tmp_path / "f.zip")
    layer_sizes = zipbuild.sizes(tmp_path / "l.zip")

    assert function_sizes.unzipped == 4010
    assert function_sizes.zipped == (tmp_path / "f.zip").stat().st_size
    assert function_sizes.parts == (("numpy/", 4000), ("app.py", 10))
    assert layer_sizes.parts == (("python/onnxruntime/", 5000), ("python/PIL/", 2000))
    biggest = zipbuild.biggest_parts([function_sizes.parts, layer_sizes.parts], count=2)
    assert biggest == [("python/onnxruntime/", 5000), ("numpy/", 4000)]


def test_sizes_of_a_broken_zip_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(LambdaVisionError, match="cannot read package"):
        zipbuild.sizes(bad)


# --- native libraries ---------------------------------------------------------------------------


def elf_header(machine: int) -> bytes:
    return b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little") + bytes(44)


def test_elf_machine_reads_the_header() -> None:
    assert zipbuild.elf_machine(elf_header(183)) == 183
    assert zipbuild.elf_machine(elf_header(62)) == 62
    assert zipbuild.elf_machine(b"#!/bin/sh\n" + bytes(20)) is None
    assert zipbuild.elf_machine(b"\x7fELF") is None


def fake_elf(needed: list[str], machine: int = 62) -> bytes:
    """A minimal 64-bit little-endian ELF: one PT_LOAD over the file, a PT_DYNAMIC with DT_NEEDED."""
    strtab = b"\0" + b"".join(name.encode() + b"\0" for name in needed)
    offsets = [1 + sum(len(n) + 1 for n in needed[:i]) for i in range(len(needed))]
    vaddr, strtab_off = 0x400000, 64 + 2 * 56
    dyn_off = strtab_off + len(strtab)
    dynamic = b"".join(struct.pack("<qQ", 1, off) for off in offsets)
    dynamic += struct.pack("<qQ", 5, vaddr + strtab_off) + struct.pack("<qQ", 0, 0)
    total = dyn_off + len(dynamic)
    header = (
        b"\x7fELF\x02\x01\x01"
        + bytes(9)
        + struct.pack("<HHIQQQIHHHHHH", 3, machine, 1, 0, 64, 0, 0, 64, 56, 2, 64, 0, 0)
    )
    load = struct.pack("<IIQQQQQQ", 1, 5, 0, vaddr, vaddr, total, total, 0x1000)
    dyn = struct.pack("<IIQQQQQQ", 2, 6, dyn_off, vaddr + dyn_off, vaddr + dyn_off, len(dynamic), len(dynamic), 8)
    return header + load + dyn + strtab + dynamic


def test_elf_needed_reads_the_dynamic_section() -> None:
    assert zipbuild.elf_needed(fake_elf(["libfoo.so.1", "libc.so.6"])) == ["libfoo.so.1", "libc.so.6"]
    assert zipbuild.elf_needed(fake_elf([])) == []
    assert zipbuild.elf_needed(b"not an elf" * 10) is None
    assert zipbuild.elf_needed(fake_elf(["libfoo.so"])[:100]) is None  # truncated: unknown, not "none"


def test_elf_needed_on_a_real_extension_module() -> None:
    import PIL

    [imaging] = Path(PIL.__file__).parent.glob("_imaging.cpython-*.so")
    needed = zipbuild.elf_needed(imaging.read_bytes())
    assert needed is not None and any(name.startswith("libjpeg") for name in needed)


def test_unlinked_vendored_libraries_go_with_their_module(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "PIL/_imaging.so": fake_elf(["libjpeg-1.so", "libxcb-2.so", "libc.so.6"]),
            "pillow.libs/libjpeg-1.so": fake_elf(["libc.so.6"]),
            "pillow.libs/libxcb-2.so": fake_elf(["libXau-3.so"]),  # reached through another library
            "pillow.libs/libXau-3.so": fake_elf([]),
            "pillow.libs/libavif-4.so": fake_elf(["libc.so.6"]),  # its module _avif was pruned
            "PIL/Image.py": b"",
        },
    )
    removed = zipbuild.prune_unlinked_libraries(tmp_path)
    assert [r.path for r in removed] == ["pillow.libs/libavif-4.so"]
    assert "pillow.libs/libXau-3.so" in tree_files(tmp_path)


def test_unreadable_native_file_prunes_no_library(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {"PIL/_odd.so": b"\x7fELF" + bytes(10), "pillow.libs/libavif-4.so": fake_elf([])},
    )
    assert zipbuild.prune_unlinked_libraries(tmp_path) == []
    assert "pillow.libs/libavif-4.so" in tree_files(tmp_path)


def test_native_libraries_must_match_the_architecture(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a/x.so": elf_header(183), "b/y.so.1": elf_header(183), "c.py": b"pass"})
    assert zipbuild.check_native_libraries(tmp_path, "arm64") == 2
    with pytest.raises(LambdaVisionError, match="not x86_64"):
        zipbuild.check_native_libraries(tmp_path, "x86_64")


# --- targets and wheels -------------------------------------------------------------------------


def test_python311_is_refused_with_the_reason() -> None:
    with pytest.raises(LambdaVisionError, match=r"glibc 2\.28.*Amazon Linux 2"):
        Target.parse("python3.11", "x86_64")
    with pytest.raises(LambdaVisionError, match=r"nodejs20\.x"):
        Target.parse("nodejs20.x", "x86_64")
    with pytest.raises(LambdaVisionError, match="architecture"):
        Target.parse("python3.12", "aarch64")  # Lambda spells it arm64


def test_platform_tags_reach_glibc_2_34_for_the_right_machine() -> None:
    arm = Target.parse("python3.13", "arm64")
    assert arm.platform_tags[0] == "manylinux_2_34_aarch64"
    assert "manylinux_2_28_aarch64" in arm.platform_tags
    assert arm.platform_tags[-1] == "manylinux2014_aarch64"
    assert all("aarch64" in tag for tag in arm.platform_tags)
    x86 = Target.parse("python3.12", "x86_64")
    assert (x86.python_version, x86.abi, x86.slug) == ("3.12", "cp312", "python3.12-x86_64")


def test_distribution_names_and_unused_wheels() -> None:
    names = [
        "onnxruntime-1.32.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "protobuf-7.36.2-cp310-abi3-manylinux2014_x86_64.whl",
        "python_dateutil-2.9.0.post0-py2.py3-none-any.whl",
        "flatbuffers-25.12.19-py2.py3-none-any.whl",
    ]
    paths = [Path(n) for n in names]
    assert wheels.distribution_name(paths[2]) == "python-dateutil"
    assert [p.name for p in wheels.wanted_wheels(paths)] == [names[0], names[2]]
    with pytest.raises(LambdaVisionError):
        wheels.distribution_name(Path("notawheel.zip"))


def test_requirements_pin_what_is_installed_here() -> None:
    import importlib.metadata

    reqs = wheels.requirements(include_boto3=False)
    assert reqs == [f"{n}=={importlib.metadata.version(n)}" for n in ("onnxruntime", "numpy", "pillow")]
    assert wheels.requirements(include_boto3=True)[-1].startswith("boto3==")


def test_cache_dir_follows_the_environment(tmp_path: Path) -> None:
    assert wheels.default_cache_dir({"LAMBDAVISION_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert wheels.default_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "lambdavision"
    assert wheels.default_cache_dir({}) == Path.home() / ".cache" / "lambdavision"


def make_wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_unpack_wheel_lays_out_like_pip_target(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "demo-1.0-py3-none-any.whl",
        {
            "demo/__init__.py": b"",
            "demo-1.0.dist-info/METADATA": b"Name: demo",
            "demo-1.0.data/purelib/extra_mod.py": b"",
            "demo-1.0.data/scripts/demo-cli": b"#!python",
            "demo-1.0.data/headers/demo.h": b"",
        },
    )
    wheels.unpack_wheel(wheel, tmp_path / "out")
    assert tree_files(tmp_path / "out") == {"demo/__init__.py", "demo-1.0.dist-info/METADATA", "extra_mod.py"}


@pytest.mark.parametrize("name", ["../evil.py", "/abs.py", "a/../../evil.py"])
def test_unpack_wheel_refuses_paths_outside_the_folder(tmp_path: Path, name: str) -> None:
    wheel = make_wheel(tmp_path / "evil-1.0-py3-none-any.whl", {name: b""})
    with pytest.raises(LambdaVisionError, match="unsafe path"):
        wheels.unpack_wheel(wheel, tmp_path / "out")
    assert not (tmp_path / "evil.py").exists()


def test_unpack_wheel_reports_a_corrupt_wheel(tmp_path: Path) -> None:
    bad = tmp_path / "bad-1.0-py3-none-any.whl"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(LambdaVisionError, match="corrupt wheel"):
        wheels.unpack_wheel(bad, tmp_path / "out")


# --- reading templates and writing the packaged one ---------------------------------------------


def lambda_template(**props: Any) -> dict[str, Any]:
    return {
        "Parameters": {"Arch": {"Type": "String", "Default": "arm64"}},
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
            "PyTorchFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Code": "function/",
                    "Handler": "app.lambda_handler",
                    "Runtime": "python3.12",
                    "Architectures": [{"Ref": "Arch"}],
                    **props,
                },
            },
            "Elsewhere": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Code": {"S3Bucket": "b", "S3Key": "k"}, "Runtime": "nodejs20.x"},
            },
        },
    }


def test_plan_reads_runtime_and_architecture(tmp_path: Path) -> None:
    (tmp_path / "function").mkdir()
    [spec] = package.plan_functions(lambda_template(), tmp_path)
    assert spec.logical_id == "PyTorchFunction"
    assert spec.target == Target("python3.12", "arm64")  # through the parameter's Default
    assert spec.code_dir == (tmp_path / "function").resolve()
    assert spec.handler == "app.lambda_handler"


def test_plan_reads_sam_functions_and_their_globals(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Globals": {"Function": {"Runtime": "python3.13", "CodeUri": "src/"}},
        "Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "app.h"}}},
    }
    [spec] = package.plan_functions(template, tmp_path)
    assert (spec.resource_type, spec.target) == ("AWS::Serverless::Function", Target("python3.13", "x86_64"))


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"Runtime": "python3.11"}, "PyTorchFunction: cannot package for python3.11"),
        ({"Runtime": None}, "has no Runtime"),
        ({"Architectures": ["x86_64", "arm64"]}, "list of one value"),
        ({"Architectures": [{"Ref": "Nope"}]}, "not a parameter with a Default"),
        ({"Code": "missing/"}, "does not exist"),
    ],
)
def test_plan_errors_say_what_to_change(tmp_path: Path, props: dict[str, Any], message: str) -> None:
    (tmp_path / "function").mkdir()
    template = lambda_template(**props)
    if props.get("Runtime", "") is None:
        del template["Resources"]["PyTorchFunction"]["Properties"]["Runtime"]
    with pytest.raises(PackageError, match=message):
        package.plan_functions(template, tmp_path)


def test_plan_needs_a_local_function(tmp_path: Path) -> None:
    template = lambda_template(Code={"ZipFile": "def h(e, c): pass"})
    with pytest.raises(PackageError, match="no function with a local code folder"):
        package.plan_functions(template, tmp_path)


def built(kind: str, logical_id: str, target: Target, sha: str, key: str | None) -> BuiltZip:
    return BuiltZip(kind, logical_id, Path(f"/out/{logical_id}.zip"), sha, zipbuild.ZipSizes(1, 2, ()), target, key)


def test_packaged_template_points_at_s3_and_adds_the_layer(tmp_path: Path) -> None:
    (tmp_path / "function").mkdir()
    template = lambda_template(Layers=["arn:aws:lambda:us-east-1:123456789012:layer:other:1"])
    [spec] = package.plan_functions(template, tmp_path)
    target = spec.target
    layer = built("layer", "LambdaVisionDepsPython312Arm64", target, "aa", "p/aa.zip")
    function = built("function", "PyTorchFunction", target, "bb", "p/bb.zip")
    result = BuildResult([FunctionPackage(spec, function, layer)], {layer.logical_id: layer})

    out = package.packaged_template(template, result, "bkt")

    props = out["Resources"]["PyTorchFunction"]["Properties"]
    assert props["Code"] == {"S3Bucket": "bkt", "S3Key": "p/bb.zip"}
    assert props["Layers"] == [
        "arn:aws:lambda:us-east-1:123456789012:layer:other:1",
        {"Ref": "LambdaVisionDepsPython312Arm64"},
    ]
    assert out["Resources"]["LambdaVisionDepsPython312Arm64"] == {
        "Type": "AWS::Lambda::LayerVersion",
        "Properties": {
            "Description": "lambdavision dependencies for python3.12 arm64",
            "Content": {"S3Bucket": "bkt", "S3Key": "p/aa.zip"},
            "CompatibleRuntimes": ["python3.12"],
            "CompatibleArchitectures": ["arm64"],
        },
    }
    assert template["Resources"]["PyTorchFunction"]["Properties"]["Code"] == "function/"  # input untouched
    assert out["Resources"]["Elsewhere"] == template["Resources"]["Elsewhere"]


def test_packaged_sam_template_uses_an_s3_uri(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                # (a Handler too: SAM's transform, which reads the template now, refuses a function without one)
                "Properties": {"CodeUri": "src", "Runtime": "python3.12", "Handler": "app.h"},
            }
        }
    }
    [spec] = package.plan_functions(template, tmp_path)
    result = BuildResult([FunctionPackage(spec, built("function", "Fn", spec.target, "cc", "cc.zip"))])
    out = package.packaged_template(template, result, "bkt")
    assert out["Resources"]["Fn"]["Properties"]["CodeUri"] == "s3://bkt/cc.zip"


def test_packaged_template_without_upload_names_the_local_zip(tmp_path: Path) -> None:
    (tmp_path / "function").mkdir()
    template = lambda_template()
    [spec] = package.plan_functions(template, tmp_path)
    zip_path = tmp_path / "dist" / "PyTorchFunction.zip"
    function = BuiltZip("function", "PyTorchFunction", zip_path, "dd", zipbuild.ZipSizes(1, 2, ()), spec.target)
    out = package.packaged_template(template, BuildResult([FunctionPackage(spec, function)]), None, tmp_path)
    assert out["Resources"]["PyTorchFunction"]["Properties"]["Code"] == "dist/PyTorchFunction.zip"


def test_s3_keys_are_content_hashes_under_the_prefix() -> None:
    assert package.s3_key("", "ab") == "ab.zip"
    assert package.s3_key("/apps/x/", "ab") == "apps/x/ab.zip"


def test_runtime_part_is_exactly_the_listed_modules() -> None:
    import lambdavision

    files = package.runtime_files(Path(lambdavision.__file__).parent)
    tops = {name.split("/")[1] for name in files}
    assert tops <= set(package.RUNTIME_PARTS)
    assert {"__init__.py", "core", "handler.py", "backends.py", "loader.py", "model_source.py", "s3_ranges.py"} <= tops
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in files)
    assert not tops & {"cli", "aws", "local", "export", "export.py", "zoo.py"}
