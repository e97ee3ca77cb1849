"""Checks before deploy: what CloudFormation or the deployed function would refuse, found first.

Each problem is one line saying what is wrong and how to fix it; `deploy` refuses to start when
there is any (`--no-verify` skips the checks, saying so). Per function:

- its Runtime is not retired (builder/runtimes.py);
- each layer it names exists in the stack's region (GetLayerVersion with the deploy credentials);
- its package can import what the handler module imports at the top level (builder/imports_check.py),
  read from the zip itself: the build folder's copy when its sha256 matches the S3 key, else the
  object in S3;
- its model (MODEL_URI, or MODEL_BUCKET + MODEL_KEY) exists, and when lambdavision's handler
  serves it, it is an artifact with ONNX (aws/model_check.py);

and for the stack: IAM resources need `--capabilities`, as CloudFormation says
(InsufficientCapabilities). Notes say what could not be checked, and why.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdavision.aws.model_check import model_problem
from lambdavision.builder import imports_check
from lambdavision.builder.folder import file_sha256, zips_by_sha256
from lambdavision.builder.runtimes import SUCCESSORS, retired_reason
from lambdavision.cfn import TemplateError, plain_template
from lambdavision.cfn.functions import lambda_functions
from lambdavision.cfn.intrinsics import Resolver

if TYPE_CHECKING:
    from lambdavision.aws.session import AwsSession

LAYER_TYPES = ("AWS::Lambda::LayerVersion", "AWS::Serverless::LayerVersion")
# Resources CloudFormation will not create without CAPABILITY_IAM, and the property that names one
# (a named one needs CAPABILITY_NAMED_IAM).
IAM_TYPES: Mapping[str, str] = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::Policy": "",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::AccessKey": "",
    "AWS::IAM::UserToGroupAddition": "",
}
_LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:([a-z0-9-]+):(\d{12}):layer:([A-Za-z0-9_-]+):(\d+)$")
_BUNDLED_MANIFEST = "model/lambdavision.json"


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)  # deploy refuses while there is any
    notes: list[str] = field(default_factory=list)  # what could not be checked


@dataclass(frozen=True)
class Preflight:
    """What the checks need to know about this deploy."""

    template: Mapping[str, Any]  # as it will be sent
    parameters: Mapping[str, str]  # the values the stack will have
    capabilities: Sequence[str]
    region: str
    build_dirs: Sequence[Path] = ()  # where built zips may be found by sha256
    today: date = field(default_factory=date.today)


def run_checks(check: Preflight, session: AwsSession) -> Findings:
    findings = Findings()
    problem = capability_problem(check.template, check.capabilities)
    if problem:
        findings.problems.append(problem)
    try:
        stack = StackTemplate.of(check)
    except TemplateError as exc:
        findings.notes.append(f"cannot read the template's functions ({exc.message}): they were not checked")
        return findings
    with tempfile.TemporaryDirectory(prefix="lambdavision-preflight-") as tmp:
        for logical_id, props in lambda_functions(stack.template, stack.resolver):
            _check_function(logical_id, props, check, stack, session, Path(tmp), findings)
    return findings


# --- capabilities -------------------------------------------------------------------------------


def capability_problem(template: Mapping[str, Any], capabilities: Sequence[str]) -> str | None:
    """The `--capabilities` CloudFormation would ask for and was not given, or None."""
    iam: list[str] = []
    named = False
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, Mapping):
            continue
        kind = str(resource.get("Type", ""))
        props = resource.get("Properties") or {}
        if kind in IAM_TYPES:
            iam.append(f"{logical_id} ({kind})")
            named = named or bool(IAM_TYPES[kind] and isinstance(props, Mapping) and props.get(IAM_TYPES[kind]))
        elif kind == "AWS::Serverless::Function" and isinstance(props, Mapping) and not props.get("Role"):
            iam.append(f"{logical_id}Role (the role SAM creates for {logical_id})")
    if not iam:
        return None
    given = set(capabilities)
    needed = "CAPABILITY_NAMED_IAM" if named else "CAPABILITY_IAM"
    if "CAPABILITY_NAMED_IAM" in given or (needed in given):
        return None
    return (
        f"the template creates IAM resources ({', '.join(iam)}), which CloudFormation refuses without "
        f"acknowledgement (InsufficientCapabilities): add --capabilities {needed}"
    )


# --- one function ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackTemplate:
    """The template as CloudFormation will create it (SAM transformed: SAM's own Globals merge), and
    its values as far as they are known before the deploy."""

    template: Mapping[str, Any]
    resolver: Resolver

    @classmethod
    def of(cls, check: Preflight) -> StackTemplate:
        plain = plain_template(check.template, check.parameters, region=check.region)
        return cls(plain, Resolver(plain, check.parameters, check.region, local_stack=False))

    def value(self, raw: Any) -> str | None:
        """A literal, or intrinsics of known values (parameters, the region), as a string; None otherwise."""
        value = self.resolver.resolve_known(raw)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return None
        return str(value)


def _check_function(
    fid: str,
    props: Mapping[str, Any],
    check: Preflight,
    stack: StackTemplate,
    session: AwsSession,
    tmp: Path,
    out: Findings,
) -> None:
    runtime = stack.value(props.get("Runtime"))
    if runtime:
        retired = retired_reason(runtime, check.today)
        if retired:
            out.problems.append(f"{fid}: {retired}: set Runtime: {SUCCESSORS} and package again")
    layer_zips, external_layers = _check_layers(fid, props, check, stack, session, tmp, out)
    package = _check_code(fid, props, runtime or "", check, stack, session, tmp, layer_zips, external_layers, out)
    _check_model(fid, props, package, stack, session, out)


def _check_layers(
    fid: str,
    props: Mapping[str, Any],
    check: Preflight,
    stack: StackTemplate,
    session: AwsSession,
    tmp: Path,
    out: Findings,
) -> tuple[list[Path], list[str]]:
    """(our layers' zips, the ARNs of layers from elsewhere that may exist); a problem for each layer
    that does not."""
    from botocore.exceptions import ClientError

    resources = stack.template.get("Resources") or {}
    zips: list[Path] = []
    external: list[str] = []
    layers = props.get("Layers") or []
    for entry in layers if isinstance(layers, list) else []:
        if isinstance(entry, Mapping) and set(entry) == {"Ref"} and entry["Ref"] in resources:
            resource = resources[entry["Ref"]]
            if isinstance(resource, Mapping) and resource.get("Type") in LAYER_TYPES:
                content = (resource.get("Properties") or {}).get("Content") or {}
                found = _zip_for(fid, _s3_location(content, stack), check, session, tmp, out)
                if found is not None:
                    zips.append(found)
            continue
        arn = stack.value(entry)
        if not arn:
            out.notes.append(f"{fid}: a layer given as {entry!r} cannot be resolved before deploy: not checked")
            continue
        match = _LAYER_ARN.match(arn)
        if match is None:
            out.problems.append(
                f"{fid}: layer {arn!r} is not a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)"
            )
            continue
        region, _, _, version = match.groups()
        if region != check.region:
            out.problems.append(
                f"{fid}: layer {arn} is in {region}, and a function in {check.region} can only use layers of "
                "its own region: remove it from Layers or use that region's ARN"
            )
            continue
        try:
            session.lambda_().get_layer_version(LayerName=arn.rsplit(":", 1)[0], VersionNumber=int(version))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("ResourceNotFoundException", "404"):
                out.problems.append(
                    f"{fid}: layer {arn} does not exist (or is not shared with this account): remove it from "
                    "Layers (a lambdavision package needs no layer) or fix the ARN"
                )
                continue
            out.notes.append(f"{fid}: cannot check layer {arn} ({code}): not checked")
        external.append(arn)
    return zips, external


def _check_code(
    fid: str,
    props: Mapping[str, Any],
    runtime: str,
    check: Preflight,
    stack: StackTemplate,
    session: AwsSession,
    tmp: Path,
    layer_zips: list[Path],
    external_layers: list[str],
    out: Findings,
) -> _Package | None:
    """Check the handler's imports against the package; what the package is (None: unknown)."""
    handler = stack.value(props.get("Handler"))
    location = _s3_location(props.get("Code"), stack)
    if location is None or not handler or "." not in handler or not runtime.startswith("python"):
        return None
    found = _zip_for(fid, location, check, session, tmp, out)
    if found is None:
        return None
    report = imports_check.check_zip(found, handler, runtime.removeprefix("python"), layer_zips)
    problem = imports_check.describe(fid, handler, report, runtime)
    if problem and report.missing and external_layers and report.module_file is not None:
        names = ", ".join(sorted(i.name for i in report.missing))
        out.notes.append(f"{fid}: {names} must come from its layer(s) {', '.join(external_layers)}: not checked")
    elif problem:
        out.problems.append(problem)
    members: set[str] = set()
    for path in [found, *layer_zips]:
        with zipfile.ZipFile(path) as zf:
            members.update(name.removeprefix("python/") for name in zf.namelist())
    uses_lambdavision = handler.startswith("lambdavision.") or "lambdavision" in {i.name for i in report.imports}
    return _Package(frozenset(members), uses_lambdavision)


@dataclass(frozen=True)
class _Package:
    members: frozenset[str]  # of the function zip and its layers (layers' python/ prefix dropped)
    uses_lambdavision: bool  # its handler is lambdavision's


def _check_model(
    fid: str,
    props: Mapping[str, Any],
    package: _Package | None,
    stack: StackTemplate,
    session: AwsSession,
    out: Findings,
) -> None:
    from botocore.exceptions import ClientError

    variables = (props.get("Environment") or {}).get("Variables") or {}
    if not isinstance(variables, Mapping):
        return
    uri = stack.value(variables.get("MODEL_URI"))
    if uri and not uri.startswith("s3://"):
        return  # a path in the package or /tmp: not in S3
    if not uri and package is not None and package.uses_lambdavision and _BUNDLED_MANIFEST in package.members:
        return  # the bundled model wins over MODEL_BUCKET / MODEL_KEY
    if uri:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        where = f"MODEL_URI={uri}"
    else:
        bucket_raw, key_raw = variables.get("MODEL_BUCKET"), variables.get("MODEL_KEY")
        if bucket_raw is None and key_raw is None:
            return
        bucket, key = stack.value(bucket_raw) or "", stack.value(key_raw) or ""
        if not bucket or not key:
            out.problems.append(f"{fid}: MODEL_BUCKET and MODEL_KEY must both be set (pass --parameter-overrides)")
            return
        where = f"{_origin('MODEL_BUCKET', bucket_raw, bucket)}, {_origin('MODEL_KEY', key_raw, key)}"
    serves_with_lambdavision = package is None or package.uses_lambdavision
    try:
        problem = model_problem(session.s3(), bucket, key, where, check_format=serves_with_lambdavision)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        out.problems.append(
            f"{fid}: cannot read the model s3://{bucket}/{key} with these credentials "
            f"({error.get('Code', '')}: {error.get('Message', '')}): allow s3:GetObject, or deploy with --no-verify"
        )
        return
    if problem:
        out.problems.append(f"{fid}: {problem}")


def _origin(variable: str, raw: Any, value: str) -> str:
    if isinstance(raw, Mapping) and set(raw) == {"Ref"}:
        return f"{raw['Ref']}={value}"
    return f"{variable}={value}"


# --- values and zips ------------------------------------------------------------------------------


def _s3_location(code: Any, stack: StackTemplate) -> tuple[str, str] | None:
    if isinstance(code, str) and code.startswith("s3://"):
        bucket, _, key = code.removeprefix("s3://").partition("/")
        return (bucket, key) if bucket and key else None
    if isinstance(code, Mapping):
        s3_bucket = stack.value(code.get("S3Bucket", code.get("Bucket")))
        s3_key = stack.value(code.get("S3Key", code.get("Key")))
        if s3_bucket and s3_key:
            return s3_bucket, s3_key
    return None


def _zip_for(
    fid: str, location: tuple[str, str] | None, check: Preflight, session: AwsSession, tmp: Path, out: Findings
) -> Path | None:
    """The zip at an S3 location: the build folder's copy when its sha256 names the key, else
    downloaded; None (with a problem, or a note when it cannot be read) when there is none."""
    from botocore.exceptions import ClientError

    if location is None:
        return None
    bucket, key = location
    name = key.rsplit("/", 1)[-1]
    sha256 = name.removesuffix(".zip")
    if re.fullmatch(r"[0-9a-f]{64}", sha256):
        for build_dir in check.build_dirs:
            for digest, path in zips_by_sha256(build_dir):
                if digest == sha256 and path.is_file() and file_sha256(path) == sha256:
                    return path
    target = tmp / f"{len(list(tmp.iterdir()))}-{name}"
    uri = f"s3://{bucket}/{key}"
    try:
        session.s3().download_file(bucket, key, str(target))
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(exc.response.get("Error", {}).get("Code", "")) or str(status)
        if status == 404 or code in ("404", "NoSuchKey", "NoSuchBucket"):
            out.problems.append(
                f"{fid}: its code {uri} does not exist: run `lambdavision package` again and deploy its template"
            )
        else:  # e.g. 403: these credentials may deploy without reading the code
            out.notes.append(f"{fid}: cannot read its code {uri} ({code}): its imports were not checked")
        return None
    if not zipfile.is_zipfile(target):
        out.problems.append(f"{fid}: its code {uri} is not a zip file: run `lambdavision package` again")
        return None
    return target


__all__ = ["Findings", "Preflight", "StackTemplate", "capability_problem", "run_checks"]
