"""`lambdavision package`: a template's functions -> deployment zips on S3 -> a packaged template.

Three steps, each usable alone:

1. `plan_functions(template, template_dir)` reads which functions to build, for which runtime and
   architecture, from which folder (pure).
2. `build(template, template_dir, options, log)` stages and zips them: the function's folder, lambdavision's
   runtime part (`RUNTIME_PARTS`), and binary wheels of onnxruntime, numpy and Pillow for the
   Lambda platform, pruned and compiled to `.pyc` by the runtime's CPython; with `layer=True` the
   dependencies go into a layer zip of their own. Nothing here talks to AWS.
3. `upload_zips(...)` puts each zip on S3 under its content hash, and `packaged_template(...)`
   points the template at the uploaded (or local) zips.

For measurements (the benchmark): `zipbuild.sizes(zip)` gives any package's zipped and unzipped
sizes and biggest parts; `installed_sizes(["torch", ...], out_zip)` measures a deployment made of
distributions installed here, zipped the same way (the guide's torch app as a baseline).

Every build step is deterministic (sorted members, fixed times and modes, .pyc compiled with a
fixed hash seed), so the same inputs give a zip with the same sha256 and the same S3 key.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import lambdavision
from lambdavision import cfn
from lambdavision.aws import wheels, zipbuild
from lambdavision.aws.wheels import Interpreter, Target
from lambdavision.aws.zipbuild import Source, ZipSizes
from lambdavision.core.errors import LambdaVisionError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Log = Callable[[str], None]

# The part of lambdavision the function runs, relative to the package folder. Everything else
# (cli/, aws/, local/, export.py, zoo.py) imports click, boto3 or torch and stays out.
RUNTIME_PARTS: tuple[str, ...] = (
    "__init__.py",
    "py.typed",
    "core",
    "handler.py",
    "backends.py",
    "loader.py",
    "model_source.py",
    "s3_ranges.py",
    "resources",
)
OPTIONAL_RUNTIME_PARTS: frozenset[str] = frozenset({"py.typed", "resources"})

# The bundled model is unpacked into a serving folder at the zip's root (= LAMBDA_TASK_ROOT, where
# the loader looks): Lambda unzips it at deploy time, so the cold start neither gunzips the model
# nor copies its weights through Python — ONNX Runtime loads model/model.onnx by path.
BUNDLED_MODEL_NAME = "model"
TASK_ROOT = "/var/task"
LAYER_ROOT = "/opt/python"  # a layer's python/ folder, which Lambda puts on sys.path
MAX_LAYERS = 5
# Bump when staging changes in a way the cache key does not capture.
STAGING_FORMAT = 3

LAMBDA_FUNCTION = "AWS::Lambda::Function"
SAM_FUNCTION = "AWS::Serverless::Function"
LAYER_VERSION = "AWS::Lambda::LayerVersion"
# Names (files or folders, anywhere in a code folder) never copied into the package.
IGNORED_IN_CODE: tuple[str, ...] = ("__pycache__", "*.pyc", ".aws-sam", ".lambdavision", ".git", ".DS_Store")
_IGNORED_IN_CODE = shutil.ignore_patterns(*IGNORED_IN_CODE)


class PackageError(LambdaVisionError):
    """The template or the package cannot be built as asked; the message says what to change."""

    status = 400


class PackageTooLarge(PackageError):
    """A package would exceed Lambda's size limit; the message names the biggest parts."""


# --- 1. what to build --------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedFunction:
    """One function to build: its spec (read by `lambdavision.cfn`) and the Lambda platform of its zip."""

    spec: cfn.FunctionSpec
    target: Target

    @property
    def logical_id(self) -> str:
        return self.spec.logical_id

    @property
    def resource_type(self) -> str:  # LAMBDA_FUNCTION or SAM_FUNCTION
        return self.spec.resource_type

    @property
    def code_dir(self) -> Path:
        return self.spec.code_dir

    @property
    def handler(self) -> str | None:
        return self.spec.handler or None

    @property
    def existing_layers(self) -> int:
        return len(self.spec.layers)


def plan_functions(template: Mapping[str, Any], template_dir: Path) -> list[PlannedFunction]:
    """The functions whose code is a local folder, with their Lambda platform.

    Functions already pointing at S3, inline code or a container image are left alone.
    """
    try:
        specs = cfn.load_functions(template, template_dir, default_runtime="")
    except cfn.TemplateError as exc:
        raise PackageError(exc.message) from exc
    planned = []
    for spec in specs.values():
        if not spec.code_uri:
            continue  # S3 location, ZipFile, InlineCode, an image: nothing local to build
        if not spec.code_dir.is_dir():
            raise PackageError(
                f"{spec.logical_id}: code folder {spec.code_uri!r} does not exist (relative to {template_dir})"
            )
        if not spec.runtime:
            raise PackageError(f"{spec.logical_id} has no Runtime: set Runtime: python3.12 (or python3.13)")
        try:
            target = Target.parse(spec.runtime, spec.architecture)
        except LambdaVisionError as exc:
            raise PackageError(f"{spec.logical_id}: {exc.message}") from exc
        planned.append(PlannedFunction(spec, target))
    if not planned:
        raise PackageError(
            "the template has no function with a local code folder to package "
            f"({LAMBDA_FUNCTION} Code: or {SAM_FUNCTION} CodeUri: naming a folder)"
        )
    return planned


# --- 2. building -------------------------------------------------------------------------------


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
    # Build for another platform than the template's (a host twin: aws/host.py), same code and pins.
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
            pythons[target] = _interpreter(target, options.environ, result.warnings)
        return pythons[target]

    def deps_for(target: Target, run_dir: str) -> Path:
        if (target, run_dir) not in staged:
            staged[target, run_dir] = stage_dependencies(
                target, run_dir, python_for(target), options, log, result.warnings
            )
        return staged[target, run_dir]

    with tempfile.TemporaryDirectory(prefix="lambdavision-package-") as tmp:
        model = _unpacked_model(options.bundle_model, Path(tmp) / BUNDLED_MODEL_NAME) if options.bundle_model else {}
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
        "prune": [zipbuild.PRUNE_DIR_NAMES, zipbuild.PRUNE_PATH_GLOBS, zipbuild.PRUNE_FILE_GLOBS],
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
        zipbuild.check_native_libraries(work, target.architecture)
        pruned = zipbuild.prune(work)
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


def _interpreter(target: Target, environ: Mapping[str, str], warnings: list[str]) -> Interpreter | None:
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


def layer_logical_id(target: Target, include_boto3: bool) -> str:
    """One layer per platform: `LambdaVisionDepsPython312X8664` (+`Boto3`)."""
    words = [target.runtime.replace(".", ""), target.architecture.replace("_", "")]
    suffix = "".join(w[:1].upper() + w[1:] for w in words)
    return f"LambdaVisionDeps{suffix}{'Boto3' if include_boto3 else ''}"


def _unpacked_model(path: Path, folder: Path) -> dict[str, Path]:
    """Verify the artifact and unpack its serving files; zip member name -> file."""
    from lambdavision.core.artifact import unpack_for_serving

    artifact = unpack_for_serving(path, folder)  # raises ArtifactError naming the problem
    if artifact.onnx_path is None:
        raise PackageError(
            f"{path} holds no ONNX model, and the Lambda package has no torch: re-export it with `lambdavision export`"
        )
    return {f"{BUNDLED_MODEL_NAME}/{file.name}": file for file in sorted(folder.iterdir())}


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


# --- sizes of other deployments (the benchmark's baseline) ------------------------------------


def installed_closure(names: Sequence[str]) -> list[importlib.metadata.Distribution]:
    """Installed distributions `names` and everything they require (extras left out), by name.

    Requirements that are not installed here (another platform's, say) are skipped.
    """
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = _normalise(pending.pop())
        if name in found:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            if name in map(_normalise, names):
                raise PackageError(f"{name} is not installed here, so its deployment size cannot be measured") from None
            continue
        found[name] = dist
        for requirement in dist.requires or []:
            spec, _, marker = requirement.partition(";")
            if "extra" in marker:
                continue
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
            if match:
                pending.append(match.group(1))
    return [found[name] for name in sorted(found)]


def installed_sizes(names: Sequence[str], out_zip: Path) -> ZipSizes:
    """Zip the installed files of `names` and their requirements the way `package` zips its own,
    unpruned and without bytecode, and measure it: a deployment as `pip install --target` would
    ship it (the guide's torch app: `installed_sizes(["torch", "numpy", "pillow"], ...)`).
    """
    members: dict[str, Path] = {}
    for dist in installed_closure(names):
        for file in dist.files or []:
            parts = PurePosixPath(str(file)).parts
            if ".." in parts or "__pycache__" in parts or str(file).endswith(".pyc"):
                continue  # console scripts outside site-packages; this interpreter's bytecode
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                members[PurePosixPath(*parts).as_posix()] = path
    zipbuild.write_reproducible_zip(members, out_zip)
    return zipbuild.sizes(out_zip)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- 3. upload and the packaged template --------------------------------------------------------


def s3_key(prefix: str, sha256: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{sha256}.zip" if prefix else f"{sha256}.zip"


def check_bucket(s3: S3Client, bucket: str) -> None:
    """Fail early, with a one-line AwsError saying what to do, if `bucket` cannot take uploads."""
    from lambdavision.aws.session import aws_errors

    with aws_errors(bucket=bucket):
        s3.head_bucket(Bucket=bucket)


def upload_zips(
    zips: Iterable[BuiltZip],
    s3: S3Client,
    bucket: str,
    prefix: str,
    log: Log,
    progress: Callable[[BuiltZip], Callable[[int], None] | None] | None = None,
) -> None:
    """Put each zip at `<prefix>/<sha256>.zip`, skipping keys already there (same name = same bytes).

    AWS errors become one-line AwsErrors (a missing bucket says how to create it).
    """
    from botocore.exceptions import ClientError

    from lambdavision.aws.session import aws_errors
    from lambdavision.aws.upload import DEFAULT_TRANSFER

    check_bucket(s3, bucket)
    with aws_errors(bucket=bucket):
        for built in zips:
            key = s3_key(prefix, built.sha256)
            built.s3_key = key
            try:
                head = s3.head_object(Bucket=bucket, Key=key)
                if head.get("ContentLength") == built.sizes.zipped:
                    log(f"s3://{bucket}/{key} is already there (same content): not uploading {built.path.name}")
                    continue
            except ClientError as exc:
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
                    raise
            s3.upload_file(
                str(built.path), bucket, key,
                ExtraArgs={
                    "ChecksumAlgorithm": "SHA256",  # S3 verifies every part
                    "ContentType": "application/zip",
                    "Metadata": {"sha256": built.sha256},
                },
                Callback=progress(built) if progress else None,
                Config=DEFAULT_TRANSFER,
            )  # fmt: skip
            built.uploaded = True
            log(f"uploaded {built.path.name} to s3://{bucket}/{key}")


def packaged_template(
    template: Mapping[str, Any],
    result: BuildResult,
    bucket: str | None,
    template_out_dir: Path | None = None,
) -> dict[str, Any]:
    """A copy of `template` with each packaged function's code pointing at its zip.

    With a bucket (and uploaded zips' keys), S3 locations; without, the local zip paths, relative
    to the folder the template is written to (`aws cloudformation package`'s convention).
    """
    out = copy.deepcopy(dict(template))
    resources = out["Resources"]

    def location(built: BuiltZip, sam: bool) -> Any:
        if bucket and built.s3_key:
            return f"s3://{bucket}/{built.s3_key}" if sam else {"S3Bucket": bucket, "S3Key": built.s3_key}
        path = built.path.resolve()
        if template_out_dir is not None:
            path = Path(os.path.relpath(path, template_out_dir.resolve()))
        return PurePosixPath(path).as_posix()

    for layer_id, layer in result.layers.items():
        if layer_id in resources:
            raise PackageError(f"the template already has a resource named {layer_id}")
        resources[layer_id] = {
            "Type": LAYER_VERSION,
            "Properties": {
                "Description": f"lambdavision dependencies for {layer.target.runtime} {layer.target.architecture}",
                "Content": location(layer, sam=False),
                "CompatibleRuntimes": [layer.target.runtime],
                "CompatibleArchitectures": [layer.target.architecture],
            },
        }
    for package in result.functions:
        resource = resources[package.spec.logical_id]
        props = resource.setdefault("Properties", {})
        sam = package.spec.resource_type == SAM_FUNCTION
        props["CodeUri" if sam else "Code"] = location(package.zip, sam)
        if package.layer is not None:
            props["Layers"] = [*(props.get("Layers") or []), {"Ref": package.layer.logical_id}]
    return out


__all__ = [
    "BUNDLED_MODEL_NAME",
    "IGNORED_IN_CODE",
    "RUNTIME_PARTS",
    "BuildOptions",
    "BuildResult",
    "BuiltZip",
    "FunctionPackage",
    "PackageError",
    "PackageTooLarge",
    "PlannedFunction",
    "build",
    "check_bucket",
    "installed_closure",
    "installed_sizes",
    "packaged_template",
    "plan_functions",
    "runtime_files",
    "s3_key",
    "upload_zips",
]
