"""`build(template, template_dir, options, log)`: a template's functions -> deployment zips (and layer zips
with `layer=True`) in a folder. Nothing here talks to AWS.

Every step is deterministic (sorted members, fixed times and modes, .pyc compiled with a fixed hash
seed), so the same inputs give a zip with the same sha256 and the same S3 key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lambdavision
from lambdavision.builder import zipbuild
from lambdavision.builder.plan import PackageError, PackageTooLarge, PlannedFunction, plan_functions
from lambdavision.builder.stage import (
    BUNDLED_MODEL_NAME,
    LAYER_ROOT,
    TASK_ROOT,
    interpreter_for,
    runtime_files,
    stage_code,
    stage_dependencies,
    unpacked_model,
)
from lambdavision.builder.wheels import Interpreter, Target
from lambdavision.builder.zipbuild import Source, ZipSizes

Log = Callable[[str], None]

MAX_LAYERS = 5


@dataclass(frozen=True)
class BuildOptions:
    cache_dir: Path
    output_dir: Path
    environ: Mapping[str, str]
    include_boto3: bool = False
    layer: bool = False
    bundle_model: Path | None = None
    unzipped_limit: int = zipbuild.UNZIPPED_LIMIT
    refresh: bool = False
    # Build for another platform than the template's (a host twin: builder/host.py), same code and pins.
    retarget: Callable[[Target], Target] | None = None


@dataclass
class BuiltZip:
    kind: str  # "function" | "layer"
    logical_id: str  # the function's, or the layer resource's
    path: Path
    sha256: str
    sizes: ZipSizes
    target: Target
    s3_key: str | None = None
    uploaded: bool = False


@dataclass
class FunctionPackage:
    spec: PlannedFunction
    zip: BuiltZip
    layer: BuiltZip | None = None

    @property
    def unzipped_total(self) -> int:
        return self.zip.sizes.unzipped + (self.layer.sizes.unzipped if self.layer else 0)


@dataclass
class BuildResult:
    functions: list[FunctionPackage]
    layers: dict[str, BuiltZip] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def zips(self) -> list[BuiltZip]:
        return [*self.layers.values(), *(f.zip for f in self.functions)]


def build(template: Mapping[str, Any], template_dir: Path, options: BuildOptions, log: Log) -> BuildResult:
    """Build every function's zip (and layer zips with `options.layer`) into `options.output_dir`.

    Progress goes to `log`; what the user should know about the result (no .pyc, a zip over the
    direct-upload limit, a handler module not found) is collected in `result.warnings`.
    """
    specs = plan_functions(template, template_dir)
    if options.retarget is not None:
        specs = [dataclasses.replace(spec, target=options.retarget(spec.target)) for spec in specs]
    result = BuildResult(functions=[])
    for spec in specs:
        _check_handler(spec, result.warnings)
        if options.layer and spec.existing_layers >= MAX_LAYERS:
            raise PackageError(f"{spec.logical_id} already uses {MAX_LAYERS} layers, Lambda's maximum")
    runtime_src = Path(lambdavision.__file__).parent
    runtime_parts = runtime_files(runtime_src)
    options.output_dir.mkdir(parents=True, exist_ok=True)
    staged: dict[tuple[Target, str], Path] = {}

    pythons: dict[Target, Interpreter | None] = {}

    def python_for(target: Target) -> Interpreter | None:
        if target not in pythons:
            pythons[target] = interpreter_for(target, options.environ, result.warnings)
        return pythons[target]

    def deps_for(target: Target, run_dir: str) -> Path:
        if (target, run_dir) not in staged:
            staged[target, run_dir] = stage_dependencies(
                target, run_dir, python_for(target), options, log, result.warnings
            )
        return staged[target, run_dir]

    with tempfile.TemporaryDirectory(prefix="lambdavision-package-") as tmp:
        model = unpacked_model(options.bundle_model, Path(tmp) / BUNDLED_MODEL_NAME) if options.bundle_model else {}
        for spec in specs:
            code_stage = Path(tmp) / spec.logical_id
            stage_code(spec, runtime_parts, code_stage, python_for(spec.target), result.warnings)
            extra = model
            if options.layer:
                layer_id = layer_logical_id(spec.target, options.include_boto3)
                layer_src = [Source(deps_for(spec.target, LAYER_ROOT), "python/")]
                function_src = [Source(code_stage)]
                layer_members = zipbuild.collect(layer_src)
                function_members = zipbuild.collect(function_src, extra)
                _check_limit(spec, [function_members, layer_members], options.unzipped_limit)
                if layer_id not in result.layers:
                    # The layer's bytes depend only on the staged folder: zip it once per cache entry.
                    staged_dir = deps_for(spec.target, LAYER_ROOT)
                    cached = staged_dir.with_name(staged_dir.name + ".layer.zip")
                    result.layers[layer_id] = _zip(
                        "layer", layer_id, layer_members, options.output_dir, spec.target, log,
                        cached=None if options.refresh else cached,
                    )  # fmt: skip
                layer = result.layers[layer_id]
            else:
                members = zipbuild.collect([Source(deps_for(spec.target, TASK_ROOT)), Source(code_stage)], extra)
                _check_limit(spec, [members], options.unzipped_limit)
                function_members, layer = members, None
            built = _zip("function", spec.logical_id, function_members, options.output_dir, spec.target, log)
            result.functions.append(FunctionPackage(spec, built, layer))
    for package in result.functions:
        if package.zip.sizes.zipped > zipbuild.ZIPPED_DIRECT_UPLOAD_LIMIT:
            message = (
                f"{package.spec.logical_id}'s zip is {zipbuild.human(package.zip.sizes.zipped)}, over the "
                f"{zipbuild.human(zipbuild.ZIPPED_DIRECT_UPLOAD_LIMIT)} limit of a direct upload: deploy it "
                "from S3 (as `package` does), not with `aws lambda update-function-code --zip-file`"
            )
            result.warnings.append(message)
    return result


def layer_logical_id(target: Target, include_boto3: bool) -> str:
    """One layer per platform: `LambdaVisionDepsPython312X8664` (+`Boto3`)."""
    words = [target.runtime.replace(".", ""), target.architecture.replace("_", "")]
    suffix = "".join(w[:1].upper() + w[1:] for w in words)
    return f"LambdaVisionDeps{suffix}{'Boto3' if include_boto3 else ''}"


def _check_handler(spec: PlannedFunction, warnings: list[str]) -> None:
    if not spec.handler or "." not in spec.handler:
        return
    module = spec.handler.rsplit(".", 1)[0].replace(".", "/")
    if not ((spec.code_dir / f"{module}.py").is_file() or (spec.code_dir / module / "__init__.py").is_file()):
        warnings.append(
            f"{spec.logical_id}'s Handler {spec.handler} names {module}.py, which is not in {spec.code_dir}"
        )


def _check_limit(spec: PlannedFunction, member_sets: Sequence[Mapping[str, Path]], limit: int) -> None:
    """Refuse before zipping when function + layer would exceed Lambda's unzipped limit."""
    sized = [{name: path.stat().st_size for name, path in members.items()} for members in member_sets]
    total = sum(sum(s.values()) for s in sized)
    if total <= limit:
        return
    biggest = zipbuild.biggest_parts([zipbuild.parts_of(s) for s in sized])
    listing = ", ".join(f"{name} {zipbuild.human(size)}" for name, size in biggest)
    raise PackageTooLarge(
        f"{spec.logical_id} would be {zipbuild.human(total)} unzipped, over Lambda's "
        f"{zipbuild.human(limit)} limit (function and layers together); biggest parts: {listing}"
    )


def _zip(
    kind: str,
    logical_id: str,
    members: Mapping[str, Path],
    out_dir: Path,
    target: Target,
    log: Log,
    cached: Path | None = None,
) -> BuiltZip:
    out = out_dir / f"{logical_id}.zip"
    if cached is not None and cached.is_file():
        log(f"reusing {cached.name} for {out}")
        shutil.copyfile(cached, out)
    else:
        log(f"writing {out} ({len(members)} files)")
        zipbuild.write_reproducible_zip(members, out)
        if cached is not None:
            fd, partial = tempfile.mkstemp(prefix=f".{cached.name}.", dir=cached.parent)
            os.close(fd)
            shutil.copyfile(out, partial)
            os.replace(partial, cached)  # atomic: a concurrent run sees a whole zip or none
    digest = hashlib.sha256()
    with out.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return BuiltZip(kind, logical_id, out, digest.hexdigest(), zipbuild.sizes(out), target)


__all__ = ["MAX_LAYERS", "BuildOptions", "BuildResult", "BuiltZip", "FunctionPackage", "build", "layer_logical_id"]
