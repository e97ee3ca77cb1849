"""SECURITY.md: the model is read from S3 over TLS checked against the system's CAs or AWS_CA_BUNDLE.

A moto server serves S3 over HTTPS on loopback, with a certificate for 127.0.0.1 signed by a CA
made for the test. The function's model loads through it when AWS_CA_BUNDLE names that CA, both
on the signed GET (credentials in the environment, as on Lambda) and through boto3 (a profile);
an endpoint whose certificate another CA signed, or that names another host, or that the system's
CAs do not know, is refused and nothing is loaded.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from lambdavision.core.errors import ArtifactError
from lambdavision.local.simulated_aws import FAKE_CREDENTIALS, free_port
from lambdavision.runtime.loader import load_classifier
from tests.fixtures.tls import CertificateAuthority, make_ca

BUCKET, KEY = "models", "colour/model.tar.gz"


@dataclass
class TlsS3:
    endpoint: str  # https://127.0.0.1:PORT
    ca: CertificateAuthority  # signed the server's certificate
    other_ca: CertificateAuthority  # did not
    folder: Path


def start_moto(folder: Path, cert: Path, key: Path, trust: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    executable = Path(sys.executable).with_name("moto_server")
    log = (folder / f"moto-{port}.log").open("wb")
    process = subprocess.Popen(
        [str(executable), "-H", "127.0.0.1", "-p", str(port), "--ssl-cert", str(cert), "--ssl-key", str(key)],
        stdout=log,
        stderr=log,
    )
    endpoint = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(trust))
    deadline = time.monotonic() + 60
    while True:  # a bounded wait for the server to answer, not a speed check
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2, context=context).close()
            return process, endpoint
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                said = (folder / f"moto-{port}.log").read_text()
                raise AssertionError(f"moto over TLS did not start: {said}") from None
            time.sleep(0.1)


@pytest.fixture(scope="module")
def tls_s3(tmp_path_factory: pytest.TempPathFactory, colour_artifact: Path) -> Iterator[TlsS3]:
    folder = tmp_path_factory.mktemp("tls-s3")
    ca, other_ca = make_ca(folder, "lambdavision test CA"), make_ca(folder, "someone else")
    cert, key = ca.issue(folder, ["127.0.0.1"])
    process, endpoint = start_moto(folder, cert, key, ca.cert_path)
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            verify=str(ca.cert_path),
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(colour_artifact), BUCKET, KEY)
        yield TlsS3(endpoint, ca, other_ca, folder)
    finally:
        process.terminate()
        process.wait(timeout=30)


def function_env(tls_s3: TlsS3, tmp_path: Path, **extra: str) -> dict[str, str]:
    """What the function sees on Lambda (credentials in its environment), pointed at the TLS endpoint."""
    return {
        **FAKE_CREDENTIALS,
        "MODEL_BUCKET": BUCKET,
        "MODEL_KEY": KEY,
        "AWS_ENDPOINT_URL": tls_s3.endpoint,
        "LAMBDAVISION_CACHE_DIR": str(tmp_path / "cache"),
        "LAMBDAVISION_S3_TIMEOUT": "10",
        **extra,
    }


def test_the_model_is_read_over_tls_from_an_endpoint_its_ca_bundle_trusts(tls_s3: TlsS3, tmp_path: Path) -> None:
    environ = function_env(tls_s3, tmp_path, AWS_CA_BUNDLE=str(tls_s3.ca.cert_path))
    classifier = load_classifier(environ=environ)
    assert classifier.classes == ["red", "green", "blue"]
    assert classifier.source.startswith(f"s3://{BUCKET}/{KEY}")


def test_through_boto3_too(tls_s3: TlsS3, tmp_path: Path) -> None:
    # No credentials in the environment (a profile): boto3 reads the object, with the same trust.
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    environ = {
        key: value
        for key, value in function_env(tls_s3, tmp_path, AWS_CA_BUNDLE=str(tls_s3.ca.cert_path)).items()
        if not key.startswith(("AWS_ACCESS_KEY", "AWS_SECRET", "AWS_SESSION"))
    }
    environ["AWS_SHARED_CREDENTIALS_FILE"] = str(credentials)
    environ["AWS_CONFIG_FILE"] = str(tmp_path / "config")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from lambdavision.runtime.loader import load_classifier; import sys; "
            "c = load_classifier(); print(c.classes, 'boto3' in sys.modules)",
        ],
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['red', 'green', 'blue'] True"

    untrusted = {**environ, "AWS_CA_BUNDLE": str(tls_s3.other_ca.cert_path)}
    refused = subprocess.run(
        [sys.executable, "-c", "from lambdavision.runtime.loader import load_classifier; load_classifier()"],
        env={"PATH": "/usr/bin:/bin", **untrusted},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr or "certificate verify failed" in refused.stderr


@pytest.mark.parametrize("trust", ["another CA", "the system's CAs", "a certificate for another host"])
def test_an_endpoint_with_an_untrusted_certificate_is_refused(tls_s3: TlsS3, tmp_path: Path, trust: str) -> None:
    if trust == "another CA":
        environ = function_env(tls_s3, tmp_path, AWS_CA_BUNDLE=str(tls_s3.other_ca.cert_path))
    elif trust == "the system's CAs":
        environ = function_env(tls_s3, tmp_path)  # no AWS_CA_BUNDLE: the test CA is not among them
    else:
        # Trusted CA, but the endpoint is reached by a name its certificate does not carry.
        environ = function_env(
            tls_s3,
            tmp_path,
            AWS_CA_BUNDLE=str(tls_s3.ca.cert_path),
            AWS_ENDPOINT_URL=tls_s3.endpoint.replace("127.0.0.1", "localhost"),
        )
    with pytest.raises(ArtifactError, match=r"cannot read from S3 at .*certificate verify failed") as caught:
        load_classifier(environ=environ)
    assert caught.value.message.startswith(f"s3://{BUCKET}/{KEY}: ")
    assert not any((tmp_path / "cache").rglob("model.onnx")), "a model was written from an untrusted endpoint"
