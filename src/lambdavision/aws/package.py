"""`lambdavision package`: the built zips (`lambdavision.builder`) -> S3 -> a packaged template.

`upload_zips(...)` puts each zip on S3 under its content hash, and `packaged_template(...)` points the
template at the uploaded (or local) zips.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from lambdavision.builder.plan import SAM_FUNCTION
from lambdavision.builder.zips import BuildResult, BuiltZip
from lambdavision.core.errors import PackageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Log = Callable[[str], None]

LAYER_VERSION = "AWS::Lambda::LayerVersion"


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


__all__ = ["LAYER_VERSION", "check_bucket", "packaged_template", "s3_key", "upload_zips"]
