"""Issue 14.7: the page's hardening headers, and load failures that tell callers nothing internal."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from lambdavision.core.event_builders import build_rest_v1_event
from lambdavision.runtime.app import App
from lambdavision.runtime.fetch import FetchPolicy
from lambdavision.runtime.loader import load_classifier

CONTEXT = SimpleNamespace(aws_request_id="req-7f3a")


def get(app: App, path: str) -> dict[str, object]:
    event = build_rest_v1_event(
        method="GET", path=path, resource=path, path_parameters=None, query=[], headers=[], body=b"", binary=False
    )
    return app(event, CONTEXT)


@pytest.fixture(scope="module")
def app(colour_artifact: Path) -> App:
    return App(load_classifier(colour_artifact), FetchPolicy())


def test_the_page_is_served_with_a_policy_that_allows_only_its_own_script_and_style(app: App) -> None:
    result = get(app, "/")
    headers = result["headers"]
    assert isinstance(headers, dict)
    html = str(result["body"])
    policy = dict(part.split(" ", 1) for part in headers["Content-Security-Policy"].split("; "))
    for kind in ("script", "style"):
        [inline] = re.findall(rf"<{kind}>(.*?)</{kind}>", html, re.DOTALL)
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert policy[f"{kind}-src"] == f"'sha256-{digest}'"
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_json_answers_are_never_sniffed(app: App) -> None:
    result = app({"url": "ftp://x/"}, CONTEXT)
    assert result["statusCode"] == 400
    assert result["headers"]["X-Content-Type-Options"] == "nosniff"  # type: ignore[index]


def test_a_load_failure_gives_the_caller_a_request_id_and_the_log_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import lambdavision.handler as handler

    secret_path = tmp_path / "internal-build-7" / "models" / "model.tar.gz"
    monkeypatch.setattr(handler, "_app", None)
    monkeypatch.setenv("MODEL_URI", str(secret_path))
    result = handler.lambda_handler({"url": "https://example.com/cat.jpg"}, CONTEXT)
    assert result["statusCode"] == 500
    body = json.loads(result["body"])
    assert body == {"error": "function unavailable: it could not load its model or settings", "request_id": "req-7f3a"}
    assert result["headers"]["X-Request-Id"] == "req-7f3a"
    assert "internal-build-7" not in result["body"]
    assert f"cannot start (request req-7f3a): {secret_path}: no such model file" in caplog.text
