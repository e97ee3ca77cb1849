"""Is the model a function will load there, and can a Lambda package (no torch) serve it?

`model_problem` asks S3 with the caller's credentials: HeadBucket, HeadObject, then a ranged GET of
the object's first bytes. lambdavision writes `lambdavision.json` as an artifact's first member,
and that manifest lists `model.onnx` when there is one, so the head of the tarball tells a full
artifact from the guide's classic one (a TorchScript `.pth` + `classes.txt`, which only torch can
run) without downloading the weights. `classify_head` is the pure part.
"""

from __future__ import annotations

import tarfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from lambdavision.core.artifact import MANIFEST_NAME, ONNX_NAME, Manifest
from lambdavision.core.errors import ArtifactError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

HEAD_BYTES = 1 << 20  # a manifest-first artifact shows its manifest in the first kilobytes
_BLOCK = 512

Kind = Literal["onnx", "classic", "not-artifact", "unknown"]


@dataclass(frozen=True)
class ArtifactHead:
    kind: Kind
    detail: str = ""  # the members seen, or why it is not an artifact


def classify_head(data: bytes) -> ArtifactHead:
    """What the first bytes of a model.tar.gz say it is (they may end anywhere)."""
    try:
        raw = zlib.decompressobj(wbits=31).decompress(data, 8 * HEAD_BYTES)
    except zlib.error as exc:
        return ArtifactHead("not-artifact", f"not a gzip file ({exc})")
    names: list[str] = []
    offset = 0
    while offset + _BLOCK <= len(raw):
        block = raw[offset : offset + _BLOCK]
        if block == bytes(_BLOCK):
            break  # end of archive
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.TarError as exc:
            if not names:
                return ArtifactHead("not-artifact", f"not a tar archive ({exc})")
            break
        start = offset + _BLOCK
        offset = start + -(-info.size // _BLOCK) * _BLOCK
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME) or info.isdir():
            continue
        name = info.name.removeprefix("./")
        names.append(name)
        if name == MANIFEST_NAME:
            if start + info.size > len(raw):
                return ArtifactHead("unknown", "its manifest is cut short in the bytes read")
            try:
                manifest = Manifest.from_json(raw[start : start + info.size], where=MANIFEST_NAME)
            except ArtifactError as exc:
                return ArtifactHead("not-artifact", exc.message)
            if ONNX_NAME in manifest.sha256:
                return ArtifactHead("onnx", ", ".join(sorted(manifest.sha256)))
            return ArtifactHead("classic", ", ".join(sorted(manifest.sha256)))
        if name.endswith(".pth"):
            return ArtifactHead("classic", name)
    return ArtifactHead("unknown", ", ".join(names) or "no member seen")


def model_problem(s3: S3Client, bucket: str, key: str, where: str, *, check_format: bool = True) -> str | None:
    """The one-line problem with s3://bucket/key as a function's model, or None.

    `where` says where the location came from ("BucketName=b, ObjectKey=k"); `check_format` also
    asks whether lambdavision's handler can serve it. Errors other than a missing bucket or object
    propagate (the caller turns them into one line).
    """
    from botocore.exceptions import ClientError

    uri = f"s3://{bucket}/{key}"
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _status(exc) == 404:
            return (
                f"the model's bucket '{bucket}' does not exist ({where}): create it (`aws s3 mb s3://{bucket}`) "
                f"and upload the model (`lambdavision upload model.tar.gz {uri}`), or fix the parameters"
            )
        raise
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _status(exc) == 404:
            return (
                f"the model {uri} does not exist ({where}): upload it with "
                f"`lambdavision upload model.tar.gz {uri}`, or fix the parameters"
            )
        raise
    if not check_format:
        return None
    body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEAD_BYTES - 1}")["Body"]
    try:
        head = classify_head(body.read())
    finally:
        body.close()
    if head.kind == "classic":
        return (
            f"the model {uri} is a classic tarball (TorchScript only: {head.detail}), which the function "
            f"cannot load on Lambda (its package has no torch): run `lambdavision convert model.tar.gz "
            f"model-onnx.tar.gz` and upload that, or upload with `lambdavision upload --convert model.tar.gz {uri}`"
        )
    if head.kind == "not-artifact":
        return f"the model {uri} is not a model artifact ({head.detail}): upload one made by `lambdavision export`"
    return None


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", {}) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(response.get("Error", {}).get("Code", ""))
    if code in ("NoSuchBucket", "NoSuchKey", "NotFound", "404"):
        return 404
    return int(status) if status else None


__all__ = ["HEAD_BYTES", "ArtifactHead", "classify_head", "model_problem"]
