"""Access denied, from a real denial: moto enforcing IAM for a user whose policy is too narrow.

moto checks nothing by default. Its `/moto-api/reset-auth` switch (what moto's own
`set_initial_no_auth_action_count` uses in server mode) sets INITIAL_NO_AUTH_ACTION_COUNT and
restarts its count, so the admin set-up runs unchecked and every request after it has its signature checked
and authorised against the caller's IAM policies. The server is this file's own: enforcing IAM on
the shared one would break every other test.

The CLI then runs as a subprocess with the restricted user's keys, as a user would run it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest

from lambdavision.local.simulated_aws import moto_server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LAMBDAVISION = str(Path(sys.executable).with_name("lambdavision"))
DEMO_ARTIFACT = Path(__file__).resolve().parents[2] / "demo" / "model.tar.gz"
BUCKET = "model-bucket"
KEY = "models/model.tar.gz"
REGION = "us-east-1"
ADMIN_KEY = "testing"  # moto's conventional fake credentials: unchecked until IAM is enforced

# The reader may list the model bucket and look stacks up, nothing else.
READER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"},
        {"Effect": "Allow", "Action": "cloudformation:DescribeStacks", "Resource": "*"},
    ],
}


@dataclass(frozen=True)
class RestrictedAws:
    endpoint: str
    access_key_id: str
    secret_access_key: str

    def s3(self) -> S3Client:
        client: S3Client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )
        return client


def _enforce_iam_from_now_on(endpoint: str) -> None:
    # text/plain: a form content type would make moto read an empty body and answer 500.
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture(scope="module")
def restricted_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestrictedAws]:
    """A moto server of our own holding a bucket and a 'reader' user, enforcing IAM."""
    log = tmp_path_factory.mktemp("moto-iam") / "moto.log"
    with moto_server(log) as endpoint:  # stops the server in its finally
        session = boto3.Session(aws_access_key_id=ADMIN_KEY, aws_secret_access_key=ADMIN_KEY, region_name=REGION)
        session.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        iam = session.client("iam", endpoint_url=endpoint)
        iam.create_user(UserName="reader")
        iam.put_user_policy(UserName="reader", PolicyName="read-only", PolicyDocument=json.dumps(READER_POLICY))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        _enforce_iam_from_now_on(endpoint)
        yield RestrictedAws(endpoint, key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture
def reader_env(restricted_aws: RestrictedAws, tmp_path: Path) -> dict[str, str]:
    """Only what a user pointing the CLI at this endpoint with the reader's keys would have."""
    return {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "AWS_ENDPOINT_URL": restricted_aws.endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": restricted_aws.access_key_id,
        "AWS_SECRET_ACCESS_KEY": restricted_aws.secret_access_key,
    }


@pytest.fixture
def packaged_template(tmp_path: Path) -> Path:
    """A template whose code is already in S3, so `deploy` goes as far as asking CloudFormation."""
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.12",
                    "Handler": "app.handler",
                    "Role": "arn:aws:iam::123456789012:role/fn",
                    "Code": {"S3Bucket": BUCKET, "S3Key": "code.zip"},
                },
            }
        }
    }
    path = tmp_path / "packaged.json"
    path.write_text(json.dumps(template))
    return path


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LAMBDAVISION, *args], env=env, capture_output=True, text=True, timeout=60)


def assert_one_line_access_denied(result: subprocess.CompletedProcess[str], operation: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    # One error line, last; progress and notes (deploy's checks) may come before it.
    lines = result.stderr.splitlines()
    errors = [ln for ln in lines if ln.startswith("Error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    line = errors[0]
    assert "access denied" in line.lower(), line
    assert operation in line, line
    # ... and says what to do about it.
    assert "IAM policy" in line and "credentials" in line, line


def test_upload_denied_put_object_is_one_line_and_sends_nothing(
    restricted_aws: RestrictedAws, reader_env: dict[str, str]
) -> None:
    result = run_cli("upload", str(DEMO_ARTIFACT), f"s3://{BUCKET}/{KEY}", env=reader_env)
    assert_one_line_access_denied(result, "PutObject")
    assert restricted_aws.s3().list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_deploy_denied_create_stack_is_one_line(reader_env: dict[str, str], packaged_template: Path) -> None:
    # DescribeStacks is allowed (the stack is new), CreateStack is not.
    result = run_cli("deploy", "--template-file", str(packaged_template), "--stack-name", "lv-denied", env=reader_env)
    assert_one_line_access_denied(result, "CreateStack")


def test_logs_denied_describe_stack_resource_is_one_line(reader_env: dict[str, str]) -> None:
    result = run_cli("logs", "-n", "Fn", "--stack-name", "lv-denied", env=reader_env)
    assert_one_line_access_denied(result, "DescribeStackResource")


def test_the_reader_keys_are_valid_so_the_denials_come_from_the_policy(
    restricted_aws: RestrictedAws, reader_env: dict[str, str]
) -> None:
    # Allowed calls go through: a missing stack is reported as missing, not as denied.
    result = run_cli("endpoint", "--stack-name", "lv-denied", env=reader_env)
    assert result.returncode != 0
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: stack 'lv-denied' does not exist"), line
    assert "access denied" not in line.lower()
    assert restricted_aws.s3().list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
