"""One boto3 session for a command, and the one place botocore's errors become messages.

The session is the ordinary one: `--profile` / `AWS_PROFILE`, `--region` / `AWS_DEFAULT_REGION`
(and `AWS_REGION`, which botocore alone ignores), the standard credential chain, and
`--endpoint-url` or botocore's own `AWS_ENDPOINT_URL` (how the tests reach moto). Every AWS call
of a command runs inside `aws_errors(...)`, which turns what the user can fix into an `AwsError`
whose one-line message says what to do; anything else is left to surface as a bug.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    WaiterError,
)
from botocore.parsers import ResponseParserError

from lambdavision.core.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class AwsOptions:
    """The connection flags every AWS command takes; None means boto3's usual lookup."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None


@dataclass
class AwsSession:
    """Clients for one command, made lazily from one boto3 session."""

    options: AwsOptions = field(default_factory=AwsOptions)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _session: boto3.Session | None = field(default=None, init=False, repr=False)

    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            with aws_errors():
                session = boto3.Session(profile_name=self.options.profile, region_name=self.options.region)
                # botocore reads AWS_DEFAULT_REGION only; AWS_REGION (what Lambda and the other SDKs
                # set) is honoured too, below it and the profile's region.
                if session.region_name is None and self.environ.get("AWS_REGION"):
                    session = boto3.Session(profile_name=self.options.profile, region_name=self.environ["AWS_REGION"])
                self._session = session
        return self._session

    def _client(self, service: str) -> Any:
        # Retries stay whatever the user's AWS config says (legacy mode by default).
        config = Config(user_agent_extra="lambdavision")
        with aws_errors():
            return self.session.client(service, endpoint_url=self.options.endpoint_url, config=config)  # type: ignore[call-overload]

    def s3(self) -> S3Client:
        client: S3Client = self._client("s3")
        return client

    def cloudformation(self) -> CloudFormationClient:
        client: CloudFormationClient = self._client("cloudformation")
        return client

    def logs(self) -> CloudWatchLogsClient:
        client: CloudWatchLogsClient = self._client("logs")
        return client

    def lambda_(self) -> LambdaClient:
        client: LambdaClient = self._client("lambda")
        return client


@contextmanager
def aws_errors(*, bucket: str | None = None, stack: str | None = None) -> Iterator[None]:
    """Translate botocore/boto3 errors raised inside into AwsError (`raise ... from`)."""
    try:
        yield
    except (BotoCoreError, ClientError, ResponseParserError) as exc:
        raise explain(exc, bucket=bucket, stack=stack) from exc
    except Exception as exc:
        # boto3's S3UploadFailedError wraps the ClientError that says why (no `from`, so __context__).
        cause = exc.__context__
        if type(exc).__name__ == "S3UploadFailedError" and isinstance(cause, ClientError):
            raise explain(cause, bucket=bucket, stack=stack) from exc
        raise


_CREDENTIALS_HINT = "run `aws configure`, set AWS_PROFILE, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
_BAD_CREDENTIALS = {
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidToken",
    "AuthFailure",
}
_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "Forbidden", "403", "AllAccessDisabled"}


def explain(exc: Exception, *, bucket: str | None = None, stack: str | None = None) -> AwsError:
    """The one-line, actionable message for a botocore/boto3 error."""
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return AwsError(f"no usable AWS credentials found: {_CREDENTIALS_HINT}")
    if isinstance(exc, ProfileNotFound):
        return AwsError(f"{exc}: check --profile / AWS_PROFILE against ~/.aws/config (`aws configure list-profiles`)")
    if isinstance(exc, NoRegionError):
        return AwsError("no AWS region configured: pass --region, or set AWS_REGION or AWS_DEFAULT_REGION")
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return AwsError(f"{exc}: check your network, --region, and --endpoint-url / AWS_ENDPOINT_URL")
    if isinstance(exc, ResponseParserError):
        # moto answers HTTP 500 with an HTML/JSON page for what it does not support, and after a
        # create it could not finish, for every call that reads that stack.
        hint = (
            f"; if stack '{stack}' failed to create there, `lambdavision delete --stack-name {stack}` removes it"
            if stack
            else ""
        )
        return AwsError(
            "the AWS endpoint answered with something that is not an AWS response (an HTTP 500 from "
            f"a stand-in such as moto?): {_first_line(_body_excerpt(str(exc)))}{hint}"
        )
    if isinstance(exc, WaiterError):
        return AwsError(f"gave up waiting: {_first_line(str(exc))}")
    if isinstance(exc, ClientError):
        return _explain_client_error(exc, bucket=bucket, stack=stack)
    return AwsError(_first_line(str(exc)))


def _explain_client_error(exc: ClientError, *, bucket: str | None, stack: str | None) -> AwsError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "")) or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    message = _first_line(str(error.get("Message", "")) or str(exc))
    operation = exc.operation_name
    if code == "NoSuchBucket" or (code in ("404", "NotFound") and operation == "HeadBucket"):
        name = f"'{bucket}'" if bucket else "the bucket"
        hint = f"`aws s3 mb s3://{bucket}`" if bucket else "`aws s3 mb s3://BUCKET`"
        return AwsError(f"S3 bucket {name} does not exist: create it with {hint} or check the name")
    if code in _BAD_CREDENTIALS:
        return AwsError(
            f"AWS rejected the credentials ({code}: {message}): check them with "
            f"`aws sts get-caller-identity`; {_CREDENTIALS_HINT}"
        )
    if code in _ACCESS_DENIED:
        return AwsError(
            f"access denied for {operation} ({message}): use credentials or a --profile whose IAM policy allows it"
        )
    if code == "InsufficientCapabilitiesException" or "capabilit" in message.lower():
        return AwsError(f"{message}: add --capabilities CAPABILITY_IAM (the template creates an IAM role)")
    if code == "ValidationError" and stack:
        if re.search(r"does not exist", message):
            return AwsError(
                f"stack '{stack}' does not exist in this account and region: check --stack-name and "
                "--region, or create it with `lambdavision deploy`"
            )
        if "ROLLBACK_COMPLETE" in message:
            return AwsError(
                f"stack '{stack}' is in ROLLBACK_COMPLETE (its creation failed) and cannot be updated: "
                f"run `lambdavision deploy` again (it deletes the failed stack first) or "
                f"`lambdavision delete --stack-name {stack}`"
            )
    if code == "ResourceNotFoundException" and operation in ("FilterLogEvents", "DescribeLogStreams"):
        return AwsError(
            f"{message}: the function has no log group yet (it has not been invoked since it was "
            "deployed, or its logs were deleted)"
        )
    return AwsError(f"AWS {operation} failed: {code}: {message}")


def _first_line(text: str) -> str:
    return " ".join(text.strip().split("\n")[0].split())[:400]


def _body_excerpt(text: str) -> str:
    """The readable part of an unparseable answer: the page's title or first words, without markup."""
    title = re.search(r"<title>(.*?)</title>", text, re.S | re.I)
    if title:
        return title.group(1)
    return re.sub(r"<[^>]+>", " ", text)


def is_missing_stack(exc: ClientError) -> bool:
    """True when a CloudFormation call failed only because the stack does not exist."""
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", ""))


__all__ = ["AwsError", "AwsOptions", "AwsSession", "aws_errors", "explain", "is_missing_stack"]
