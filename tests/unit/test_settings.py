"""Settings.from_env: every variable the function reads, parsed in one place, one error style."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lambdavision
from lambdavision.core.errors import ConfigError
from lambdavision.core.urlpolicy import FetchPolicy
from lambdavision.runtime.settings import Settings, default_cache_dir

PACKAGE = Path(lambdavision.__file__).parent


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LAMBDAVISION_THREADS", "two"),
        ("LAMBDAVISION_THREADS", "0"),
        ("LAMBDAVISION_MAX_IMAGE_BYTES", "1e6"),
        ("LAMBDAVISION_MAX_BATCH", "-1"),
        ("LAMBDAVISION_S3_TIMEOUT", "soon"),
        ("LAMBDAVISION_S3_CONNECTIONS", "0"),
        ("LAMBDAVISION_ALLOW_PRIVATE_URLS", "maybe"),
        ("LAMBDAVISION_MAX_FETCH_BYTES", ""),
        ("LAMBDAVISION_FETCH_TIMEOUT", "inf"),
        ("LAMBDAVISION_FETCH_PORTS", "ssh"),
    ],
)
def test_a_bad_value_is_one_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert re.fullmatch(rf"{name} must be .+, got {re.escape(repr(value))}", caught.value.message)


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.policy == FetchPolicy() and settings.max_image_bytes == FetchPolicy().max_bytes
    assert (settings.max_batch, settings.serve_page, settings.threads, settings.cache_dir) == (
        16,
        True,
        None,
        default_cache_dir(),
    )
    assert (settings.s3.credentials, settings.s3.region, settings.s3.timeout, settings.s3.connections) == (
        None,
        "us-east-1",
        5.0,
        8,
    )


def test_values(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "MODEL_BUCKET": "b",
            "MODEL_KEY": "k",
            "LAMBDAVISION_CACHE_DIR": str(tmp_path),
            "LAMBDAVISION_MAX_BATCH": "4",
            "LAMBDAVISION_PAGE": "0",
            "LAMBDAVISION_CORS_ORIGIN": "https://example.com",
            "LOG_LEVEL": "debug",
            "AWS_ACCESS_KEY_ID": "AKID",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3538",
            "HTTPS_PROXY": "http://proxy:3128",
        }
    )
    assert (settings.model_bucket, settings.model_key, settings.cache_dir) == ("b", "k", tmp_path)
    assert (settings.max_batch, settings.serve_page, settings.cors_origin, settings.log_level) == (
        4,
        False,
        "https://example.com",
        10,
    )
    assert settings.s3.region == "eu-west-1" and settings.s3.endpoint == "http://127.0.0.1:9"
    assert settings.s3.connections == 8 and settings.s3.wants_boto3  # 2 vCPUs; a proxy is boto3's
    ignored = Settings.from_env({"AWS_ENDPOINT_URL": "http://x", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"})
    assert ignored.s3.endpoint is None


def test_the_function_reads_its_environment_only_through_settings() -> None:
    """os.environ appears in the function's code only where it is handed to Settings.from_env."""
    readers = {}
    for path in [*PACKAGE.glob("core/*.py"), *PACKAGE.glob("runtime/*.py"), PACKAGE / "handler.py"]:
        text = path.read_text(encoding="utf-8")
        if re.search(r"os\.environ|getenv", text):
            readers[path.relative_to(PACKAGE).as_posix()] = sorted(set(re.findall(r"os\.environ\S*", text)))
    assert readers == {
        "handler.py": ["os.environ)", "os.environ):"],  # handed to the prefetch, App.from_env, in_lambda_runtime
        "runtime/loader.py": ["os.environ"],  # load_classifier's default environment, into Settings.from_env
        # OpenSSL's own variables, only as the key of the cached TLS context:
        "runtime/pinned.py": ['os.environ.get("SSL_CERT_DIR"))', 'os.environ.get("SSL_CERT_FILE"),'],
    }
