"""Staging a function before it is zipped: its folder plus lambdavision's runtime part (`RUNTIME_PARTS`),
compiled for /var/task; its dependencies (binary wheels of onnxruntime, numpy and Pillow for the Lambda
platform) unpacked, pruned and compiled by the runtime's CPython, cached by what decides their bytes;
a bundled model unpacked for serving."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lambdavision.builder import elf, prune, wheels, zipbuild
from lambdavision.builder.plan import PackageError, PlannedFunction
from lambdavision.builder.wheels import Interpreter, Target

if TYPE_CHECKING:
    from lambdavision.builder.zips import BuildOptions

Log = Callable[[str], None]

# The part of lambdavision the function runs, relative to the package folder. Everything else
# (cli/, aws/, local/, builder/, bench/, cfn/, export/) imports click, boto3, PyYAML or torch and stays out.
RUNTIME_PARTS: tuple[str, ...] = (
    "__init__.py",
    "py.typed",
    "core",
    "runtime",
    "handler.py",
    "resources",
)
OPTIONAL_RUNTIME_PARTS: frozenset[str] = frozenset({"py.typed", "resources"})

# The bundled model is unpacked into a serving folder at the zip's root (= LAMBDA_TASK_ROOT, where
# the loader looks): Lambda unzips it at deploy time, so the cold start neither gunzips the model
# nor copies its weights through Python — ONNX Runtime loads model/model.onnx by path.
BUNDLED_MODEL_NAME = "model"
TASK_ROOT = "/var/task"
LAYER_ROOT = "/opt/python"  # a layer's python/ folder, which Lambda puts on sys.path
# Bump when staging changes in a way the cache key does not capture.
STAGING_FORMAT = 3
# Names (files or folders, anywhere in a code folder) never copied into the package.
IGNORED_IN_CODE: tuple[str, ...] = ("__pycache__", "*.pyc", ".aws-sam", ".lambdavision", ".git", ".DS_Store")
_IGNORED_IN_CODE = shutil.ignore_patterns(*IGNORED_IN_CODE)


def runtime_files(package_dir: Path) -> dict[str, Path]:
    """lambdavision's runtime part: zip name (`lambdavision/...`) -> file, no bytecode."""
    files: dict[str, Path] = {}
    for part in RUNTIME_PARTS:
        path = package_dir / part
        if not path.exists():
            if part in OPTIONAL_RUNTIME_PARTS:
                continue
            raise PackageError(f"this lambdavision installation lacks {path}: reinstall lambdavision")
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in found:
            rel = file.relative_to(package_dir)
            if "__pycache__" in rel.parts or file.suffix == ".pyc":
                continue
            files[f"lambdavision/{rel.as_posix()}"] = file
    return files


def stage_code(
    spec: PlannedFunction,
    runtime_parts: Mapping[str, Path],
    dest: Path,
    python: Interpreter | None,
    warnings: list[str],
) -> None:
    """The function's folder + lambdavision's runtime part, compiled for /var/task."""
    shutil.copytree(spec.code_dir, dest, ignore=_IGNORED_IN_CODE)
    if (dest / "lambdavision").exists():
        raise PackageError(
            f"{spec.code_dir} has its own lambdavision/ folder, which would shadow the runtime "
            "that `package` adds: remove it"
        )
    for name, src in runtime_parts.items():
        out = dest / name
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)
    if python is not None:
        zipbuild.compile_pyc(dest, python.path, TASK_ROOT, _collect_warning(warnings))


def stage_dependencies(
    target: Target,
    run_dir: str,
    python: Interpreter | None,
    options: BuildOptions,
    log: Log,
    warnings: list[str],
) -> Path:
    """The dependencies for `target`, unpacked, pruned and compiled; cached by everything that
    decides their bytes, so a second `package` of unchanged dependencies only zips."""
    reqs = wheels.requirements(options.include_boto3)
    all_wheels = wheels.fetch_wheels(target, reqs, options.cache_dir, log, refresh=options.refresh)
    wanted = wheels.wanted_wheels(all_wheels)
    key_material = {
        "format": STAGING_FORMAT,
        "wheels": sorted(w.name for w in wanted),
        "run_dir": run_dir,
        "python": python.version if python else None,
        "prune": [prune.PRUNE_DIR_NAMES, prune.PRUNE_PATH_GLOBS, prune.PRUNE_FILE_GLOBS],
    }
    key = hashlib.sha256(json.dumps(key_material, sort_keys=True).encode()).hexdigest()[:16]
    parent = options.cache_dir / "staged" / target.slug
    staged = parent / key
    if staged.is_dir() and not options.refresh:
        log(f"reusing staged dependencies for {target.slug} ({staged})")
        return staged
    log(f"installing {len(wanted)} wheels for {target.slug}")
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
    try:
        for wheel in wanted:
            wheels.unpack_wheel(wheel, work)
        elf.check_native_libraries(work, target.architecture)
        pruned = prune.prune(work)
        log(f"pruned {len(pruned)} paths, {zipbuild.human(sum(p.size for p in pruned))} never used on Lambda")
        if python is not None:
            log(f"compiling .pyc with {python.path} ({python.version})")
            zipbuild.compile_pyc(work, python.path, run_dir, _collect_warning(warnings))
        if options.refresh and staged.exists():
            shutil.rmtree(staged)
        try:
            os.replace(work, staged)
        except OSError:
            if not staged.is_dir():
                raise
            # Another `package` staged the same key meanwhile: same bytes, keep theirs.
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return staged


def interpreter_for(target: Target, environ: Mapping[str, str], warnings: list[str]) -> Interpreter | None:
    python = wheels.find_python(target.python_version, environ)
    if python is None:
        message = (
            f"no CPython {target.python_version} found here (PATH, pyenv): shipping sources without "
            f".pyc, so every cold start compiles its imports (install Python {target.python_version} to fix)"
        )
        if message not in warnings:
            warnings.append(message)
    return python


def _collect_warning(warnings: list[str]) -> Log:
    def record(message: str) -> None:
        warnings.append(message.removeprefix("warning: "))

    return record


def unpacked_model(path: Path, folder: Path) -> dict[str, Path]:
    """Verify the artifact and unpack its serving files; zip member name -> file."""
    from lambdavision.runtime.artifact_files import unpack_for_serving

    artifact = unpack_for_serving(path, folder)  # raises ArtifactError naming the problem
    if artifact.onnx_path is None:
        raise PackageError(
            f"{path} holds no ONNX model, and the Lambda package has no torch: re-export it with `lambdavision export`"
        )
    return {f"{BUNDLED_MODEL_NAME}/{file.name}": file for file in sorted(folder.iterdir())}


__all__ = [
    "BUNDLED_MODEL_NAME",
    "IGNORED_IN_CODE",
    "LAYER_ROOT",
    "OPTIONAL_RUNTIME_PARTS",
    "RUNTIME_PARTS",
    "STAGING_FORMAT",
    "TASK_ROOT",
    "interpreter_for",
    "runtime_files",
    "stage_code",
    "stage_dependencies",
    "unpacked_model",
]
