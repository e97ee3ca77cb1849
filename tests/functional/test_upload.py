"""`lambdavision upload ARTIFACT s3://bucket/key` against a real moto server."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig

from lambdavision.aws.upload import parse_s3_uri, upload_artifact
from lambdavision.core.errors import ArtifactError, BadRequest
from lambdavision.core.preprocess import Preprocessing
from lambdavision.runtime.artifact_files import write_artifact

LAMBDAVISION = str(Path(sys.executable).with_name("lambdavision"))
BUCKET = "model-bucket"
KEY = "fastai-models/lesson1/model.tar.gz"
MIB = 1024 * 1024


def upload(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LAMBDAVISION, "upload", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def bucket(aws_env: dict[str, str]) -> str:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return BUCKET


def _versions(key: str) -> int:
    listing = boto3.client("s3").list_object_versions(Bucket=BUCKET, Prefix=key)
    return len(listing.get("Versions", []))


def _sha256(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def test_upload_validates_sends_checksum_and_prints_the_model_location(
    tiny_artifact: Path, bucket: str, aws_env: dict[str, str]
) -> None:
    result = upload(str(tiny_artifact), f"s3://{bucket}/{KEY}", env=aws_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"s3://{bucket}/{KEY}", f"MODEL_BUCKET={bucket}", f"MODEL_KEY={KEY}"]
    assert "Uploaded" in result.stderr

    s3 = boto3.client("s3")
    head = s3.head_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")
    digest = _sha256(tiny_artifact)
    assert head["ChecksumSHA256"] == base64.b64encode(digest).decode()
    assert head["Metadata"] == {"sha256": digest.hex()}
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == tiny_artifact.read_bytes()


def test_second_upload_of_the_same_content_is_skipped(
    tiny_artifact: Path, bucket: str, aws_env: dict[str, str]
) -> None:
    assert upload(str(tiny_artifact), f"s3://{bucket}/{KEY}", env=aws_env).returncode == 0
    again = upload(str(tiny_artifact), f"s3://{bucket}/{KEY}", env=aws_env)
    assert again.returncode == 0, again.stderr
    assert "Skipped" in again.stderr
    assert again.stdout.splitlines()[0] == f"s3://{bucket}/{KEY}"
    assert _versions(KEY) == 1


def test_an_object_uploaded_by_another_tool_is_recognised_by_its_checksum(
    tiny_artifact: Path, bucket: str, aws_env: dict[str, str]
) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=KEY, Body=tiny_artifact.read_bytes(), ChecksumAlgorithm="SHA256")
    result = upload(str(tiny_artifact), f"s3://{bucket}/{KEY}", env=aws_env)
    assert result.returncode == 0, result.stderr
    assert "Skipped" in result.stderr
    assert _versions(KEY) == 1


def test_quiet_prints_only_the_results(tiny_artifact: Path, bucket: str, aws_env: dict[str, str]) -> None:
    result = upload("--quiet", str(tiny_artifact), f"s3://{bucket}/{KEY}", env=aws_env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 3


def test_a_bad_artifact_is_refused_in_one_line_and_nothing_is_sent(
    tmp_path: Path, bucket: str, aws_env: dict[str, str]
) -> None:
    broken = tmp_path / "model.tar.gz"
    broken.write_bytes(b"this is not a gzip file at all")
    result = upload(str(broken), f"s3://{bucket}/{KEY}", env=aws_env)
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and str(broken) in line
    assert _versions(KEY) == 0


def test_a_missing_artifact_file(tmp_path: Path, bucket: str, aws_env: dict[str, str]) -> None:
    result = upload(str(tmp_path / "nope.tar.gz"), f"s3://{bucket}/{KEY}", env=aws_env)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "nope.tar.gz" in line


def test_a_missing_bucket_is_one_line_saying_how_to_create_it(tiny_artifact: Path, aws_env: dict[str, str]) -> None:
    result = upload(str(tiny_artifact), "s3://no-such-bucket/model.tar.gz", env=aws_env)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        "Error: S3 bucket 'no-such-bucket' does not exist: create it with `aws s3 mb s3://no-such-bucket` "
        "or check the name"
    )


def test_no_credentials_is_one_line_saying_what_to_do(tiny_artifact: Path, aws_env: dict[str, str]) -> None:
    env = {k: v for k, v in aws_env.items() if not k.startswith(("AWS_ACCESS_KEY", "AWS_SECRET", "AWS_SESSION"))}
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # never ask an instance metadata service (not loopback)
    result = upload(str(tiny_artifact), f"s3://{BUCKET}/{KEY}", env=env)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "no usable AWS credentials" in line and "aws configure" in line


@pytest.mark.parametrize("uri", ["my-bucket/model.tar.gz", "s3://my-bucket", "s3://my-bucket/", "s3://B_/k"])
def test_a_malformed_destination_is_refused(uri: str, tiny_artifact: Path, aws_env: dict[str, str]) -> None:
    result = upload(str(tiny_artifact), uri, env=aws_env)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "S3" in line or "bucket" in line
    with pytest.raises(BadRequest):
        parse_s3_uri(uri)


@pytest.fixture
def large_artifact(tmp_path: Path) -> Path:
    """An artifact over two multipart chunks of 5 MiB (S3's smallest part)."""
    path = tmp_path / "large.tar.gz"
    write_artifact(path, classes=["a", "b"], preprocessing=Preprocessing(), onnx=os.urandom(11 * MIB), torchscript=None)
    return path


def test_large_artifacts_go_in_checksummed_parts_and_are_skipped_the_second_time(
    large_artifact: Path, bucket: str, aws_env: dict[str, str]
) -> None:
    s3 = boto3.client("s3")
    small_parts = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    location = parse_s3_uri(f"s3://{bucket}/big/model.tar.gz")
    sent: list[int] = []

    first = upload_artifact(s3, large_artifact, location, on_bytes=sent.append, transfer_config=small_parts)
    assert first.uploaded and sum(sent) == large_artifact.stat().st_size
    head = s3.head_object(Bucket=bucket, Key=location.key, ChecksumMode="ENABLED")
    assert head["ETag"].endswith('-3"')  # sent in three parts
    assert head["ChecksumSHA256"]  # each part carried a SHA-256 checksum that S3 checked
    assert head["Metadata"]["sha256"] == _sha256(large_artifact).hex()
    assert s3.get_object(Bucket=bucket, Key=location.key)["Body"].read() == large_artifact.read_bytes()

    second = upload_artifact(s3, large_artifact, location, transfer_config=small_parts)
    assert not second.uploaded
    assert _versions(location.key) == 1

    # Different content under the same key is uploaded again.
    write_artifact(large_artifact, classes=["a", "b"], preprocessing=Preprocessing(), onnx=b"x", torchscript=None)
    assert upload_artifact(s3, large_artifact, location, transfer_config=small_parts).uploaded
    assert _versions(location.key) == 2


def test_validation_happens_before_any_request(tmp_path: Path) -> None:
    """A bad artifact is refused even with no S3 reachable at all (the client is never used)."""
    broken = tmp_path / "model.tar.gz"
    broken.write_bytes(b"\x1f\x8b garbage")
    s3 = boto3.client(
        "s3", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="x",
    )  # fmt: skip
    with pytest.raises(ArtifactError):
        upload_artifact(s3, broken, parse_s3_uri("s3://some-bucket/k"))
