"""`init --from-sam GUIDE_DIR APP_DIR`: a SAM app (the guide's own folder) turned into a lambdavision app.

`convert_sam_app` is pure apart from reading GUIDE_DIR: it returns every file of the new folder and
one line per change. For each Python function with a local code folder (found with the one
template reader, `lambdavision.cfn`, so SAM's Globals count):

- its Runtime becomes python3.12 (or `runtime`): python3.6 is retired, and onnxruntime needs the
  glibc of Amazon Linux 2023;
- its Layers go (the guide's is a PyTorch layer for python3.6 that no longer exists;
  `lambdavision package` ships the function's dependencies itself), and with them any parameter
  nothing refers to any more (`LambdaLayerArn`);
- its handler module becomes lambdavision's handler (the original is kept beside it as
  `<module>_original.py`, for reference);
- the template has `BucketName` / `ObjectKey` parameters and the function `MODEL_BUCKET` /
  `MODEL_KEY` from them.

Logical ids, outputs, events and every other file are kept, so the guide's commands
(`describe-stacks ... PyTorchApi`, `logs -n PyTorchFunction`, `-n env.json -e event.json`) work
unchanged; an `env.json` is written when the folder has none. The template stays SAM: `package`,
`deploy` and `local` run it through AWS's transform.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdavision.aws.appdir import FUNCTION_APP
from lambdavision.aws.template_names import check_runtime
from lambdavision.cfn import dump_template, find_default_template, is_sam, load_functions
from lambdavision.cfn import parse_template as parse_template_text
from lambdavision.cfn.intrinsics import referenced_ids
from lambdavision.core.errors import BadRequest, TemplateError

# Lambda's deprecated Python runtimes (no new functions); any other older one cannot load onnxruntime either.
RETIRED = frozenset({"python2.7", "python3.6", "python3.7", "python3.8"})
DEFAULT_BUCKET = "my-bucket"
DEFAULT_KEY = "fastai-models/lesson1/model.tar.gz"
_SKIPPED = frozenset({".aws-sam", ".lambdavision", "__pycache__", ".git", ".DS_Store"})


@dataclass(frozen=True)
class Conversion:
    files: dict[str, bytes]  # relative path -> content, every file of the new folder
    changes: list[str]  # what differs from GUIDE_DIR, one line each


def convert_sam_app(
    guide_dir: Path, *, runtime: str = "python3.12", bucket: str | None = None, key: str | None = None
) -> Conversion:
    """The lambdavision app made of the SAM app in `guide_dir` (see the module's docstring)."""
    check_runtime(runtime)
    if not guide_dir.is_dir():
        raise BadRequest(f"{guide_dir} is not a folder (--from-sam takes the SAM app's folder)")
    template_path = find_default_template(guide_dir)
    name = template_path.name
    files = dict(_files_of(guide_dir))
    template = parse_template_text(files[name].decode("utf-8"), str(template_path))
    if not is_sam(template):
        raise BadRequest(f"{template_path} is not a SAM template (no Transform: AWS::Serverless-2016-10-31)")
    changes: list[str] = []
    used_before = _used_parameters(template)
    resources: dict[str, Any] = template["Resources"]
    parameters: dict[str, Any] = template.setdefault("Parameters", {})
    bucket_default = _parameter(parameters, "BucketName", bucket, "S3 bucket holding the model artifact", changes)
    key_default = _parameter(parameters, "ObjectKey", key, "S3 key of the model artifact (model.tar.gz)", changes)
    converted: list[str] = []
    for spec in load_functions(template, guide_dir, source=str(template_path)).values():
        if (
            not spec.code_uri
            or not spec.runtime.startswith("python")
            or spec.resource_type != "AWS::Serverless::Function"
        ):
            continue
        properties = resources[spec.logical_id].setdefault("Properties", {})
        fid = spec.logical_id
        written = properties.get("Runtime", ((template.get("Globals") or {}).get("Function") or {}).get("Runtime"))
        if written != runtime:
            _set_runtime(template, properties, runtime)
            why = f"{written} is retired" if written in RETIRED else "onnxruntime needs Amazon Linux 2023's glibc"
            changes.append(f"{name}: {fid} Runtime {written or 'unset'} -> {runtime} ({why})")
        if properties.pop("Layers", None) is not None:
            layers = ", ".join(spec.layers) or "?"
            changes.append(f"{name}: {fid} Layers removed ({layers}): `lambdavision package` ships the dependencies")
        variables = properties.setdefault("Environment", {}).setdefault("Variables", {})
        for variable, parameter in (("MODEL_BUCKET", "BucketName"), ("MODEL_KEY", "ObjectKey")):
            if variables.get(variable) != {"Ref": parameter}:
                variables[variable] = {"Ref": parameter}
                changes.append(f"{name}: {fid} environment {variable} = !Ref {parameter}")
        changes += _replace_handler(files, guide_dir, spec.code_dir, spec.handler, fid)
        converted.append(fid)
    if not converted:
        raise BadRequest(f"{template_path} has no Python function with a local CodeUri folder to convert")
    for unused in sorted(used_before - _used_parameters(template)):
        del parameters[unused]
        changes.append(f"{name}: parameter {unused} removed (nothing refers to it any more)")
    files[name] = dump_template(template).encode("utf-8")
    changes.append(f"{name}: written back as YAML (its comments are not kept)")
    if "env.json" not in files:
        env = {fid: {"MODEL_BUCKET": bucket_default, "MODEL_KEY": key_default} for fid in converted}
        files["env.json"] = (json.dumps(env, indent=2) + "\n").encode("utf-8")
        changes.append(f"env.json: written for local runs ({', '.join(converted)}: where the model is in S3)")
    return Conversion(files, changes)


def write_conversion(app_dir: Path, conversion: Conversion, *, force: bool) -> list[Path]:
    """Write the files under `app_dir` (it may be GUIDE_DIR itself); BadRequest naming each file
    that exists with other content, unless `force`. Nothing is written when something is refused."""
    if app_dir.exists() and not app_dir.is_dir():
        raise BadRequest(f"{app_dir} exists and is not a folder")
    targets = {app_dir / rel: data for rel, data in conversion.files.items()}
    clashes = [p for p, data in targets.items() if p.exists() and (not p.is_file() or p.read_bytes() != data)]
    if clashes and not force:
        names = ", ".join(str(p) for p in clashes)
        raise BadRequest(f"{names} already exist{'s' if len(clashes) == 1 else ''}: pass --force to overwrite")
    written = []
    for path, data in targets.items():
        if path.is_file() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def _files_of(folder: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not _SKIPPED & set(rel.parts) and path.suffix != ".pyc":
            yield rel.as_posix(), path.read_bytes()


def _parameter(parameters: dict[str, Any], name: str, value: str | None, description: str, changes: list[str]) -> str:
    """Make sure the parameter exists (with `value` as its Default when given); returns its Default."""
    definition = parameters.get(name)
    if not isinstance(definition, dict):
        parameters[name] = {"Type": "String", "Default": value or _fallback(name), "Description": description}
        changes.append(f"parameter {name} added (Default {parameters[name]['Default']})")
    elif value is not None and definition.get("Default") != value:
        changes.append(f"parameter {name} Default {definition.get('Default')!r} -> {value!r}")
        definition["Default"] = value
    return str(parameters[name].get("Default", _fallback(name)))


def _fallback(name: str) -> str:
    return DEFAULT_BUCKET if name == "BucketName" else DEFAULT_KEY


def _set_runtime(template: dict[str, Any], properties: dict[str, Any], runtime: str) -> None:
    globals_function = (template.get("Globals") or {}).get("Function") or {}
    if "Runtime" not in properties and "Runtime" in globals_function:
        globals_function["Runtime"] = runtime
    else:
        properties["Runtime"] = runtime


def _replace_handler(files: dict[str, bytes], guide_dir: Path, code_dir: Path, handler: str, fid: str) -> list[str]:
    """lambdavision's handler in place of the handler's module; the original kept as <module>_original.py."""
    module, _, function = handler.rpartition(".")
    if not module or not function:
        raise TemplateError(f"{fid}: Handler {handler!r} is not module.function")
    try:
        folder = code_dir.relative_to(guide_dir.resolve()).as_posix()
    except ValueError:
        raise BadRequest(f"{fid}'s code folder {code_dir} is outside {guide_dir}: copy it in first") from None
    rel = "/".join(p for p in (folder if folder != "." else "", module.replace(".", "/") + ".py") if p)
    stem = rel[: -len(".py")]
    text = FUNCTION_APP if function == "lambda_handler" else FUNCTION_APP.replace(
        "from lambdavision.handler import lambda_handler\n\n__all__ = [\"lambda_handler\"]",
        f"from lambdavision.handler import lambda_handler as {function}\n\n__all__ = [\"{function}\"]",
    )  # fmt: skip
    changes = []
    if rel in files and files[rel] != text.encode():
        files[f"{stem}_original.py"] = files[rel]
        changes.append(f"{rel} -> {stem}_original.py (the original, kept for reference; nothing imports it)")
    files[rel] = text.encode("utf-8")
    changes.append(f"{rel}: lambdavision's handler ({handler}: ONNX Runtime, the model from BucketName/ObjectKey)")
    return changes


def _used_parameters(template: Mapping[str, Any]) -> set[str]:
    """The parameters a Ref or Sub of the template mentions (one no longer mentioned after the
    conversion, like the layer's ARN, is removed)."""
    used = set(referenced_ids({k: v for k, v in template.items() if k != "Parameters"}))
    return used & set(template.get("Parameters") or {})


__all__ = ["Conversion", "convert_sam_app", "write_conversion"]
