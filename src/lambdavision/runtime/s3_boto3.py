"""A model on S3 read with boto3: when the environment holds no credentials (a profile, a role's
config file) or asks for what the lean GET does not do (a proxy, FIPS or dual-stack endpoints).

Imported only then: boto3 costs a cold start ~100 ms and ~40 MB (see core.sigv4).
"""

from __future__ import annotations

import io
import logging
from typing import Any

from lambdavision.core.artifact import Artifact
from lambdavision.core.errors import ArtifactError, CacheWriteError
from lambdavision.runtime.artifact_files import read_artifact, unpack_for_serving
from lambdavision.runtime.model_cache import cached_copy, cached_folder
from lambdavision.runtime.settings import S3Settings, Settings

log = logging.getLogger("lambdavision")


def _s3_client(s3: S3Settings) -> Any:
    import boto3  # lazily: only S3-hosted models need it
    from botocore.config import Config

    # Short timeouts: botocore's default of 60 s per read would outlast Lambda's 10 s INIT, and an
    # unreachable S3 must fail the cold start clearly so the next invocation can retry.
    config = Config(
        connect_timeout=s3.timeout, read_timeout=s3.timeout, retries={"max_attempts": 2, "mode": "standard"}
    )
    # boto3 honours AWS_ENDPOINT_URL itself (how tests reach moto).
    return boto3.client("s3", region_name=s3.region_name, config=config)


def open_with_boto3(uri: str, bucket: str, key: str, settings: Settings) -> Artifact:
    from botocore.exceptions import BotoCoreError, ClientError

    client = _s3_client(settings.s3)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        etag = str(head["ETag"]).strip('"')
        cached = cached_folder(settings, bucket, key, etag)
        hit = cached_copy(cached, uri)
        if hit is not None:
            return hit
        body = client.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"])["Body"]
        try:
            artifact = unpack_for_serving(body, cached, seal=True)  # gunzips while the bytes arrive
        except CacheWriteError as exc:
            log.warning("model %s: the disk cache is unusable (%s); loading from memory", uri, exc.message)
            data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            return _read_bytes(data, uri)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise ArtifactError(f"{uri}: S3 said {err.get('Code')}: {err.get('Message') or exc}") from None
    except BotoCoreError as exc:
        raise ArtifactError(f"{uri}: cannot read from S3: {exc}") from None
    artifact.source = uri
    return artifact


def _read_bytes(data: bytes, source: str) -> Artifact:
    artifact = read_artifact(io.BytesIO(data))
    artifact.source = source
    return artifact


__all__ = ["open_with_boto3"]
