"""Run the built package locally, as Lambda would: `prepare` makes a function's `LambdaLayout`.

1. The runtime's CPython: `Runtime: python3.12` needs a CPython 3.12 on this machine (PATH names
   first, then pyenv's versions; aws/wheels.find_python). Without one: a one-line error naming it.
2. The package: `lambdavision build`'s zip for the function (built now, or reused when its inputs
   are unchanged), with the settings the build folder recorded (--layer, --bundle-model...).
3. When this host cannot run that zip (builder/host.py: macOS, another architecture, an older glibc),
   its host twin instead, built the same way for this host, and the output says so.
4. The zip (and its layer) extracted into the build folder's run/<sha256>/ (/var/task, /opt).
5. The runtime folder: awslambdaric and the SDK for that CPython (builder/runtime_client.py).

The environment then runs `python -I -S bootstrap.py HANDLER` with PYTHONPATH = the package, its
layers and the runtime folder, in Lambda's order (local/environment.py, local/bootstrap.py).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lambdavision.core.errors import LambdaVisionError, MissingInterpreter
from lambdavision.local.template import FunctionSpec

Log = Callable[[str], None]

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
RUN_KEEP = 4  # extracted zips kept in run/ (the newest), so the folder does not grow without end


@dataclass(frozen=True)
class LambdaLayout:
    """Where and how a built package runs locally."""

    python: Path  # the runtime's CPython
    python_version: str  # "3.12.1"
    task_root: Path  # the function's zip, extracted (Lambda's /var/task)
    layer_roots: tuple[Path, ...]  # its layers' python/ folders (Lambda's /opt/python)
    runtime_dir: Path  # awslambdaric + the SDK (Lambda's /var/runtime)
    description: tuple[str, ...]  # what the output says about the run

    @property
    def python_path(self) -> list[str]:
        """sys.path before the standard library, in Lambda's order."""
        version = ".".join(self.python_version.split(".")[:2])
        layers: list[str] = []
        for root in self.layer_roots:
            site = root / "lib" / f"python{version}" / "site-packages"
            layers += [*([str(site)] if site.is_dir() else []), str(root)]
        return [str(self.task_root), *layers, str(self.runtime_dir)]

    def command(self, handler: str) -> list[str]:
        return [str(self.python), "-I", "-S", str(BOOTSTRAP), handler]


def missing_interpreter(spec: FunctionSpec, environ: Mapping[str, str]) -> MissingInterpreter:
    version = spec.runtime.removeprefix("python")
    pyenv = environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    return MissingInterpreter(
        f"{spec.logical_id} has Runtime {spec.runtime}, and no CPython {version} was found to run it as Lambda "
        f"does (looked for python{version} on PATH and in {pyenv}/versions/{version}.*): install it (e.g. "
        f"`pyenv install {version}`), or pass --use-venv (this venv's Python "
        f"{sys.version_info[0]}.{sys.version_info[1]}, not what Lambda runs)"
    )


def prepare(template_path: Path, spec: FunctionSpec, environ: Mapping[str, str], log: Log) -> LambdaLayout:
    """Build (or reuse) `spec`'s package, its host twin if needed, and lay it out to run here."""
    from lambdavision.builder import runtime_client, wheels
    from lambdavision.builder.folder import (
        RUN_DIR,
        BuildSettings,
        build_functions,
        default_build_dir,
        recorded_settings,
        twin_dir,
    )
    from lambdavision.builder.host import current_host, runnable_target, twin_reason, twin_target
    from lambdavision.builder.zips import BuildOptions
    from lambdavision.cfn import read_template

    if not spec.runtime.startswith("python"):
        raise LambdaVisionError(f"function {spec.logical_id} has Runtime {spec.runtime}: lambdavision runs Python only")
    python = wheels.find_python(spec.runtime.removeprefix("python"), environ)
    if python is None:
        raise missing_interpreter(spec, environ)
    build_dir = default_build_dir(template_path.parent)
    settings = recorded_settings(build_dir) or BuildSettings()
    if settings.bundle_model is not None and not settings.bundle_model.is_file():
        raise LambdaVisionError(
            f"the last `lambdavision build` in {build_dir} bundled {settings.bundle_model}, which is gone: "
            "build again (`lambdavision build`, with or without --bundle-model)"
        )
    cache_dir = wheels.default_cache_dir(environ)
    options = BuildOptions(
        cache_dir=cache_dir,
        output_dir=build_dir,
        environ=dict(environ),
        include_boto3=settings.include_boto3,
        layer=settings.layer,
        bundle_model=settings.bundle_model,
    )
    template = read_template(template_path)
    [package] = build_functions(template, template_path.parent, options, log, only=[spec.logical_id]).functions
    target = package.spec.target
    host = current_host()
    reason = twin_reason(target, host)
    description: list[str] = []
    if reason is not None:
        twin = twin_target(target, host)
        twin_options = dataclasses.replace(
            options, output_dir=twin_dir(build_dir, twin), retarget=lambda t: twin_target(t, host)
        )
        [twin_package] = build_functions(
            template, template_path.parent, twin_options, log, only=[spec.logical_id]
        ).functions
        pins = ", ".join(wheels.requirements(settings.include_boto3))
        description.append(
            f"{spec.logical_id}: {reason}, so this runs its HOST TWIN {twin_package.zip.path} (sha256 "
            f"{twin_package.zip.sha256[:12]}): the same code and pinned versions ({pins}) built from this "
            f"host's wheels ({twin.slug}), not the {target.architecture} package {package.zip.path} itself"
        )
        package = twin_package
    run_dir = build_dir / RUN_DIR
    task_root = extract(package.zip.path, package.zip.sha256, run_dir)
    layer_roots = (
        (extract(package.layer.path, package.layer.sha256, run_dir) / "python",) if package.layer is not None else ()
    )
    _prune_runs(run_dir, keep={task_root, *(root.parent for root in layer_roots)})
    client_target = runnable_target(wheels.Target(target.runtime, host.architecture), host)
    client = runtime_client.runtime_dir(python, client_target, cache_dir, log)
    what = "its host twin" if reason is not None else "the built package"
    description.append(
        f"{spec.logical_id}: running {what} {package.zip.path} (sha256 {package.zip.sha256[:12]}) "
        f"on CPython {python.version} ({python.path} -I -S), as Lambda runs it: only the package"
        f"{' and its layer' if layer_roots else ''} and the runtime's {runtime_client.versions(client)} are importable"
    )
    return LambdaLayout(python.path, python.version, task_root, layer_roots, client, tuple(description))


def venv_description(spec: FunctionSpec, python: str) -> str:
    """What `--use-venv` runs, said plainly."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}.{sys.version_info[2]}"
    return (
        f"{spec.logical_id}: running the code folder {spec.code_dir} on this venv's Python {version} ({python}) "
        "with --use-venv: NOT what Lambda runs (everything this venv has installed, torch included, is importable "
        "here and absent on Lambda); drop --use-venv to run the built package"
    )


def extract(zip_path: Path, sha256: str, run_dir: Path) -> Path:
    """`zip_path` unpacked in run_dir/<sha256[:16]>, once; the folder."""
    folder = run_dir / sha256[:16]
    if folder.is_dir():
        os.utime(folder)  # most recently used: kept by _prune_runs
        return folder
    run_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".extracting-", dir=run_dir))
    try:
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(work)
        try:
            os.replace(work, folder)
        except OSError:
            if not folder.is_dir():
                raise
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return folder


def _prune_runs(run_dir: Path, keep: set[Path]) -> None:
    """Remove all but the RUN_KEEP most recently used extractions (and never those in `keep`)."""
    entries = sorted(
        (p for p in run_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in entries[RUN_KEEP:]:
        if stale not in keep:
            shutil.rmtree(stale, ignore_errors=True)


__all__ = ["BOOTSTRAP", "LambdaLayout", "MissingInterpreter", "extract", "prepare", "venv_description"]
