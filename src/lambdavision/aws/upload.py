"""`upload`: put a validated model artifact in S3, once.

The artifact is read with the core's loader before anything is sent, so a broken tarball never
reaches the function. boto3's managed transfer sends large files in parts; every part carries a
SHA-256 checksum that S3 verifies. The object's own sha256 is kept in its metadata, so a second
upload of the same content is skipped after one HEAD request.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from lambdavision.core.errors import BadRequest
from lambdavision.runtime.artifact_files import read_artifact

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SHA256_METADATA_KEY = "sha256"
_MIB = 1024 * 1024
# Parts of 16 MiB: a ResNet-50 artifact (~200 MB) goes in ~12 parts, 4 at a time.
DEFAULT_TRANSFER = TransferConfig(multipart_threshold=16 * _MIB, multipart_chunksize=16 * _MIB, max_concurrency=4)
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class UploadResult:
    location: S3Location
    sha256: str
    size: int
    uploaded: bool  # False when S3 already held the same content


def parse_s3_uri(text: str) -> S3Location:
    """`s3://bucket/key` -> S3Location; anything else is a BadRequest naming the expected form."""
    match = re.fullmatch(r"s3://([^/]+)/(.+)", text)
    if not match:
        raise BadRequest(
            f"{text!r} is not an S3 object URI: expected s3://BUCKET/KEY (for example s3://my-bucket/model.tar.gz)"
        )
    bucket, key = match.groups()
    if not _BUCKET_NAME.fullmatch(bucket):
        raise BadRequest(f"{bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)")
    return S3Location(bucket, key)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def same_content_present(s3: S3Client, location: S3Location, sha256_hex: str, size: int) -> bool:
    """Does the object already hold exactly this content? (metadata digest, else S3's own checksum)"""
    try:
        head = s3.head_object(Bucket=location.bucket, Key=location.key, ChecksumMode="ENABLED")
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        # 404: no such object (or bucket: the upload then says which). 403: cannot tell, so send.
        if status in (403, 404):
            return False
        raise
    if head.get("ContentLength") != size:
        return False
    if head.get("Metadata", {}).get(SHA256_METADATA_KEY) == sha256_hex:
        return True
    # A single-part upload's checksum is the whole object's; a multipart one ends in "-<parts>".
    full_object_checksum = base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii")
    return head.get("ChecksumSHA256") == full_object_checksum


def upload_artifact(
    s3: S3Client,
    path: Path,
    location: S3Location,
    *,
    on_bytes: Callable[[int], None] | None = None,
    transfer_config: TransferConfig = DEFAULT_TRANSFER,
) -> UploadResult:
    """Validate `path` as a model artifact, then upload it unless S3 already has the same bytes."""
    read_artifact(path)  # raises ArtifactError (one line naming the problem) on a bad artifact
    size = path.stat().st_size
    sha256_hex = file_sha256(path)
    if same_content_present(s3, location, sha256_hex, size):
        return UploadResult(location, sha256_hex, size, uploaded=False)
    s3.upload_file(
        str(path),
        location.bucket,
        location.key,
        ExtraArgs={
            "ChecksumAlgorithm": "SHA256",
            "Metadata": {SHA256_METADATA_KEY: sha256_hex},
            "ContentType": "application/gzip",
        },
        Callback=on_bytes,
        Config=transfer_config,
    )
    return UploadResult(location, sha256_hex, size, uploaded=True)


__all__ = [
    "DEFAULT_TRANSFER",
    "S3Location",
    "UploadResult",
    "file_sha256",
    "parse_s3_uri",
    "same_content_present",
    "upload_artifact",
]
