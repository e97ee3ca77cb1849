"""`lambdavision build`: each function's package in a build folder, rebuilt only when its inputs change.

The build folder (SAM's `.aws-sam/build`), beside the template unless `--build-dir` says otherwise:

    .lambdavision/build/
      build.json                      what was built: per function its inputs hash, zip and sha256,
                                      and the settings (--layer, --include-boto3, --bundle-model)
      PyTorchFunction.zip             exactly the bytes `package` uploads for PyTorchFunction
      LambdaVisionDeps<Platform>.zip  its dependencies' layer, with --layer
      host-twin/<platform>/           the same layout, built for this host when it cannot run the
                                      package as built (builder/host.py; `local` only)
      run/<sha256>/                   a zip extracted for `local` (local/built.py)

`builder.zips.build` is the one code path that makes a zip; this module decides whether to call it. A
function's inputs hash covers everything that decides its zip's bytes: the code folder's files
(names and contents, minus what `package` ignores), lambdavision's runtime part, the target
(runtime, architecture, wheel platforms), the pinned requirements, the CPython that compiles the
.pyc, the staging and pruning rules, the bundled model's sha256 and --layer. Equal hash and an
intact zip (its sha256 re-read) = reused; anything else = rebuilt. `package` calls
`build_functions` too, so what it uploads is the built zip, byte for byte.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lambdavision
from lambdavision.builder import prune, wheels, zipbuild
from lambdavision.builder.plan import LAMBDA_FUNCTION, SAM_FUNCTION, PlannedFunction, plan_functions
from lambdavision.builder.stage import IGNORED_IN_CODE, STAGING_FORMAT, runtime_files
from lambdavision.builder.wheels import Interpreter, Target
from lambdavision.builder.zips import BuildOptions, BuildResult, BuiltZip, FunctionPackage, build
from lambdavision.core.errors import PackageError

Log = Callable[[str], None]

BUILD_DIR = Path(".lambdavision") / "build"
RECORD_NAME = "build.json"
RECORD_FORMAT = 1
TWIN_DIR = "host-twin"
RUN_DIR = "run"


def default_build_dir(template_dir: Path) -> Path:
    return template_dir / BUILD_DIR


@dataclass(frozen=True)
class BuildSettings:
    """The flags that decide a build's bytes besides the template, as build.json records them."""

    include_boto3: bool = False
    layer: bool = False
    bundle_model: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "include_boto3": self.include_boto3,
            "layer": self.layer,
            "bundle_model": str(self.bundle_model) if self.bundle_model else None,
        }


def recorded_settings(build_dir: Path) -> BuildSettings | None:
    """The settings of the last build in `build_dir`, or None when there was none."""
    settings = _read_record(build_dir).get("settings")
    if not isinstance(settings, Mapping):
        return None
    model = settings.get("bundle_model")
    return BuildSettings(
        bool(settings.get("include_boto3")), bool(settings.get("layer")), Path(model) if model else None
    )


# --- inputs --------------------------------------------------------------------------------------


def code_files(code_dir: Path) -> dict[str, Path]:
    """The code folder's files as `package` copies them (IGNORED_IN_CODE left out): relative name -> file."""
    import fnmatch

    def ignored(name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED_IN_CODE)

    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(code_dir, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not ignored(d))
        for name in filenames:
            if not ignored(name):
                path = Path(dirpath) / name
                found[path.relative_to(code_dir).as_posix()] = path
    return found


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inputs_key(
    spec: PlannedFunction,
    *,
    runtime_parts: Mapping[str, Path],
    python: Interpreter | None,
    options: BuildOptions,
    model_sha256: str | None,
) -> str:
    """The hash of everything that decides `spec`'s zip (see the module's docstring)."""
    digest = hashlib.sha256()
    header = {
        "record": RECORD_FORMAT,
        "staging": STAGING_FORMAT,
        "lambdavision": lambdavision.__version__,
        "runtime": spec.target.runtime,
        "architecture": spec.target.architecture,
        "platforms": spec.target.platform_tags,
        "requirements": wheels.requirements(options.include_boto3),
        "python": python.version if python else None,
        "layer": options.layer,
        "model": model_sha256,
        "prune": [prune.PRUNE_DIR_NAMES, prune.PRUNE_PATH_GLOBS, prune.PRUNE_FILE_GLOBS],
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for prefix, files in (("code/", code_files(spec.code_dir)), ("", dict(runtime_parts))):
        for name, path in sorted(files.items()):
            digest.update(f"\0{prefix}{name}\0{file_sha256(path)}".encode())
    return digest.hexdigest()


# --- the build -----------------------------------------------------------------------------------


def build_functions(
    template: Mapping[str, Any],
    template_dir: Path,
    options: BuildOptions,
    log: Log,
    *,
    only: Collection[str] | None = None,
) -> BuildResult:
    """Every function's zip (or those in `only`) in `options.output_dir`, reusing what is up to date."""
    specs = plan_functions(template, template_dir)
    if only is not None:
        missing = sorted(set(only) - {s.logical_id for s in specs})
        if missing:
            have = ", ".join(s.logical_id for s in specs)
            raise PackageError(f"no function {', '.join(missing)} with a local code folder to build (there is: {have})")
        specs = [s for s in specs if s.logical_id in only]
    if options.retarget is not None:
        specs = [dataclasses.replace(s, target=options.retarget(s.target)) for s in specs]
    out = options.output_dir
    record = _read_record(out)
    entries: dict[str, Any] = dict(record.get("functions") or {})
    pythons: dict[str, Interpreter | None] = {}
    model_sha256 = file_sha256(options.bundle_model) if options.bundle_model else None
    parts = runtime_files(Path(lambdavision.__file__).parent)
    keys: dict[str, str] = {}
    for spec in specs:
        version = spec.target.python_version
        if version not in pythons:
            pythons[version] = wheels.find_python(version, options.environ)
        keys[spec.logical_id] = inputs_key(
            spec, runtime_parts=parts, python=pythons[version], options=options, model_sha256=model_sha256
        )
    stale = [s for s in specs if options.refresh or not _up_to_date(entries.get(s.logical_id), keys[s.logical_id], out)]
    built: dict[str, FunctionPackage] = {}
    result = BuildResult(functions=[])
    if stale:
        fresh_build = build(_only_functions(template, {s.logical_id for s in stale}), template_dir, options, log)
        built = {p.spec.logical_id: p for p in fresh_build.functions}
        result.layers.update(fresh_build.layers)
        result.warnings.extend(fresh_build.warnings)
    for spec in specs:
        package = built.get(spec.logical_id)
        if package is None:
            package = _reused(spec, entries[spec.logical_id], out, result)
            log(f"{spec.logical_id}: inputs unchanged, reusing {package.zip.path} (sha256 {package.zip.sha256[:12]})")
        entries[spec.logical_id] = _entry(package, keys[spec.logical_id], out, result.warnings)
        result.functions.append(package)
    settings = BuildSettings(options.include_boto3, options.layer, options.bundle_model)
    _write_record(out, {"format": RECORD_FORMAT, "settings": settings.to_json(), "functions": entries})
    result.warnings[:] = list(dict.fromkeys(result.warnings))
    return result


def _only_functions(template: Mapping[str, Any], keep: set[str]) -> dict[str, Any]:
    """The template without the functions that need no build (the others' resources stay)."""
    resources = {
        logical_id: resource
        for logical_id, resource in (template.get("Resources") or {}).items()
        if logical_id in keep
        or not (isinstance(resource, Mapping) and resource.get("Type") in (LAMBDA_FUNCTION, SAM_FUNCTION))
    }
    return {**template, "Resources": resources}


def _up_to_date(entry: Any, key: str, out: Path) -> bool:
    if not isinstance(entry, Mapping) or entry.get("inputs") != key:
        return False
    zips = [entry, *([entry["layer"]] if isinstance(entry.get("layer"), Mapping) else [])]
    return all(_intact(out / str(z.get("zip")), str(z.get("sha256"))) for z in zips)


def _intact(path: Path, sha256: str) -> bool:
    return path.is_file() and file_sha256(path) == sha256


def _reused(spec: PlannedFunction, entry: Mapping[str, Any], out: Path, result: BuildResult) -> FunctionPackage:
    path = out / str(entry["zip"])
    function_zip = BuiltZip("function", spec.logical_id, path, str(entry["sha256"]), zipbuild.sizes(path), spec.target)
    layer: BuiltZip | None = None
    if isinstance(entry.get("layer"), Mapping):
        layer_id = str(entry["layer"]["id"])
        if layer_id not in result.layers:
            layer_path = out / str(entry["layer"]["zip"])
            result.layers[layer_id] = BuiltZip(
                "layer", layer_id, layer_path, str(entry["layer"]["sha256"]), zipbuild.sizes(layer_path), spec.target
            )
        layer = result.layers[layer_id]
    result.warnings.extend(str(w) for w in entry.get("warnings") or [])
    return FunctionPackage(spec, function_zip, layer)


def _entry(package: FunctionPackage, key: str, out: Path, warnings: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "inputs": key,
        "zip": package.zip.path.relative_to(out).as_posix(),
        "sha256": package.zip.sha256,
        "runtime": package.spec.target.runtime,
        "architecture": package.spec.target.architecture,
        "handler": package.spec.handler,
        "layer": None,
        "warnings": list(dict.fromkeys(warnings)),
    }
    if package.layer is not None:
        entry["layer"] = {
            "id": package.layer.logical_id,
            "zip": package.layer.path.relative_to(out).as_posix(),
            "sha256": package.layer.sha256,
        }
    return entry


def _read_record(build_dir: Path) -> dict[str, Any]:
    try:
        record = json.loads((build_dir / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        return {}  # another version's record: rebuild everything
    return record


def _write_record(build_dir: Path, record: Mapping[str, Any]) -> None:
    build_dir.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{RECORD_NAME}.", dir=build_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(partial, build_dir / RECORD_NAME)


def twin_dir(build_dir: Path, target: Target) -> Path:
    return build_dir / TWIN_DIR / target.slug


def zips_by_sha256(build_dir: Path) -> Iterator[tuple[str, Path]]:
    """(sha256, zip) of every zip a build in `build_dir` recorded (function and layer zips)."""
    for entry in (_read_record(build_dir).get("functions") or {}).values():
        if not isinstance(entry, Mapping):
            continue
        for item in (entry, entry.get("layer")):
            if isinstance(item, Mapping) and item.get("zip") and item.get("sha256"):
                yield str(item["sha256"]), build_dir / str(item["zip"])


__all__ = [
    "BUILD_DIR",
    "RECORD_NAME",
    "BuildSettings",
    "build_functions",
    "code_files",
    "default_build_dir",
    "inputs_key",
    "recorded_settings",
    "twin_dir",
    "zips_by_sha256",
]
