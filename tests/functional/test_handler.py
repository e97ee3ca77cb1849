"""The Lambda handler end to end: real events, a real ONNX model, images from a loopback server.

Each error status comes from a real bad input; after every error the same warm App answers the
next good request.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lambdavision.core.event_builders import build_http_v2_event, build_rest_v1_event, invocation_event
from lambdavision.runtime.app import App
from lambdavision.runtime.fetch import FetchPolicy
from lambdavision.runtime.loader import load_classifier
from tests.fixtures.image_server import ImageServer
from tests.unit.test_preprocess import png_bomb

CONTEXT = SimpleNamespace(aws_request_id="req-123")


@pytest.fixture(scope="module")
def app(colour_artifact: Path) -> App:
    policy = FetchPolicy(allow_private=True, total_timeout=1.5, connect_timeout=1.0, max_bytes=2_000_000)
    return App(load_classifier(colour_artifact), policy, max_image_bytes=2_000_000)


def rest_event(body: bytes, content_type: str = "application/json", binary: bool = False) -> dict[str, Any]:
    return invocation_event(body, content_type, binary=binary)


def answer(app: App, event: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
    result = app(event, CONTEXT)
    assert set(result) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert result["headers"]["Content-Type"] == "application/json"
    return result["statusCode"], json.loads(result["body"]), result["headers"]


def assert_warm(app: App, make_colour_image: Callable[..., bytes]) -> None:
    """The environment still answers a good request correctly after whatever came before."""
    body = json.dumps({"image": base64.b64encode(make_colour_image("green")).decode()}).encode()
    status, data, _ = answer(app, rest_event(body))
    assert (status, data["class"]) == (200, "green")


def test_guide_url_body(app: App, image_server: ImageServer, make_colour_image: Callable[..., bytes]) -> None:
    url = image_server.add("/dog.jpg", make_colour_image("red"))
    status, data, headers = answer(app, rest_event(json.dumps({"url": url}).encode()))
    assert status == 200
    assert data["class"] == "red"
    assert 0.99 < data["confidence"] <= 1.0
    assert data["predictions"][0]["class"] == "red"
    assert len(data["predictions"]) == 3
    assert isinstance(data["confidence"], float)
    assert headers["X-Request-Id"] == "req-123"
    assert "inference;dur=" in headers["Server-Timing"]


def test_inline_base64_and_topk(app: App, make_colour_image: Callable[..., bytes]) -> None:
    body = json.dumps({"image": base64.b64encode(make_colour_image("blue", fmt="PNG")).decode(), "topk": 2})
    status, data, _ = answer(app, rest_event(body.encode()))
    assert status == 200
    assert data["class"] == "blue"
    assert len(data["predictions"]) == 2


def test_raw_binary_body_through_each_source(app: App, make_colour_image: Callable[..., bytes]) -> None:
    image = make_colour_image("red")
    events = [
        rest_event(image, "image/jpeg", binary=True),
        build_http_v2_event(
            method="POST",
            path="/invocations",
            query=[],
            headers=[("content-type", "image/jpeg")],
            body=image,
            binary=True,
        ),
        build_http_v2_event(
            method="POST",
            path="/invocations",
            query=[("topk", "1")],
            headers=[("content-type", "application/octet-stream")],
            body=image,
            binary=True,
            function_url=True,
        ),
    ]
    for event in events:
        status, data, _ = answer(app, event)
        assert (status, data["class"]) == (200, "red")
    assert len(answer(app, events[2])[1]["predictions"]) == 1


def test_direct_invoke_with_a_plain_dict(
    app: App, image_server: ImageServer, make_colour_image: Callable[..., bytes]
) -> None:
    url = image_server.add("/g.jpg", make_colour_image("green"))
    status, data, _ = answer(app, {"url": url})
    assert (status, data["class"]) == (200, "green")


def test_topk_larger_than_classes_is_clipped(app: App, make_colour_image: Callable[..., bytes]) -> None:
    body = json.dumps({"image": base64.b64encode(make_colour_image("red")).decode(), "topk": 50})
    assert len(answer(app, rest_event(body.encode()))[1]["predictions"]) == 3


def test_batch_mixes_good_and_bad(app: App, image_server: ImageServer, make_colour_image: Callable[..., bytes]) -> None:
    good = image_server.add("/b.jpg", make_colour_image("blue"))
    text = image_server.add("/t.txt", b"just text", content_type="text/plain")
    body = json.dumps({"urls": [good, text, image_server.url_for("/status/404"), good]})
    status, data, _ = answer(app, rest_event(body.encode()))
    assert status == 200
    results = data["results"]
    assert [r.get("class") for r in results] == ["blue", None, None, "blue"]
    assert [r.get("status") for r in results] == [None, 415, 502, None]
    images = [base64.b64encode(make_colour_image("red")).decode(), "@@not-base64@@"]
    status, data, _ = answer(app, rest_event(json.dumps({"images": images}).encode()))
    assert data["results"][0]["class"] == "red"
    assert data["results"][1]["status"] == 400


def bad_inputs(server: ImageServer, jpeg: bytes, closed_port: int) -> list[tuple[str, bytes, str, int]]:
    """(what, body, content type, expected status): each a real bad input."""
    truncated = server.add("/truncated.jpg", jpeg[: len(jpeg) // 2])
    text = server.add("/notes.txt", b"hello, I am text", content_type="text/plain")
    bomb = server.add("/bomb.png", png_bomb(8000, 8000), content_type="image/png")  # under Pillow's limit
    return [
        ("bad JSON", b'{"url": ', "application/json", 400),
        ("missing url", b'{"topk": 3}', "application/json", 400),
        ("url not a string", b'{"url": 5}', "application/json", 400),
        ("bad topk", b'{"url": "http://x/y.jpg", "topk": -1}', "application/json", 400),
        ("json array", b"[1, 2]", "application/json", 400),
        ("empty body", b"", "application/json", 400),
        ("ftp url", b'{"url": "ftp://example.com/a.jpg"}', "application/json", 400),
        (
            "metadata redirect",
            json.dumps({"url": server.url_for("/redirect?to=http://169.254.169.254/")}).encode(),
            "application/json",
            400,
        ),
        ("bad base64", b'{"image": "%%%"}', "application/json", 400),
        ("text file", json.dumps({"url": text}).encode(), "application/json", 415),
        ("raw text", b"plain words", "text/plain", 400),
        ("truncated jpeg", json.dumps({"url": truncated}).encode(), "application/json", 422),
        ("png bomb", json.dumps({"url": bomb}).encode(), "application/json", 422),
        ("huge body", json.dumps({"url": server.url_for("/huge")}).encode(), "application/json", 413),
        ("redirect loop", json.dumps({"url": server.url_for("/redirect-loop")}).encode(), "application/json", 502),
        ("upstream 500", json.dumps({"url": server.url_for("/status/500")}).encode(), "application/json", 502),
        ("slow server", json.dumps({"url": server.url_for("/slow?seconds=5")}).encode(), "application/json", 504),
        (
            "closed port",
            json.dumps({"url": f"http://127.0.0.1:{closed_port}/x.jpg"}).encode(),
            "application/json",
            502,
        ),
    ]


def test_every_error_status_from_a_real_bad_input(
    app: App, image_server: ImageServer, make_colour_image: Callable[..., bytes], closed_port: int
) -> None:
    for what, body, ctype, expected in bad_inputs(image_server, make_colour_image("red", size=(400, 300)), closed_port):
        status, data, _ = answer(app, rest_event(body, ctype))
        assert status == expected, (what, data)
        assert isinstance(data["error"], str) and data["error"], what
        assert_warm(app, make_colour_image)


def test_loopback_host_name_is_refused_by_default(
    colour_artifact: Path, image_server: ImageServer, make_colour_image: Callable[..., bytes]
) -> None:
    strict = App(load_classifier(colour_artifact), FetchPolicy())
    url = image_server.add("/r.jpg", make_colour_image("red")).replace("127.0.0.1", "localhost")
    status, data, _ = answer(strict, rest_event(json.dumps({"url": url}).encode()))
    assert status == 400
    assert "refused" in data["error"].lower()


def test_raw_body_over_the_cap_is_413(colour_artifact: Path) -> None:
    small = App(load_classifier(colour_artifact), FetchPolicy(), max_image_bytes=1000)
    status, _, _ = answer(small, rest_event(b"\xff\xd8\xff" + b"\x00" * 5000, "image/jpeg", binary=True))
    assert status == 413


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "PATCH"])
def test_other_methods_on_invocations_are_405(app: App, method: str) -> None:
    event = build_rest_v1_event(
        method=method,
        path="/invocations",
        resource="/invocations",
        path_parameters=None,
        query=[],
        headers=[],
        body=b"",
        binary=False,
    )
    status, data, headers = answer(app, event)
    assert (status, headers["Allow"]) == (405, "POST, GET, OPTIONS")
    assert data == {"error": f"{method} /invocations is not supported: POST an image to /invocations"}


def test_serving_path_never_imports_torch_or_boto3(colour_artifact: Path, tmp_path: Path) -> None:
    """A fresh interpreter runs the handler on a bundled model: torch and boto3 never load."""
    image = tmp_path / "red.jpg"
    from tests.fixtures.colour import colour_image

    image.write_bytes(colour_image("red"))
    script = f"""
import base64, json, os, sys
os.environ["MODEL_URI"] = {str(colour_artifact)!r}
from lambdavision.handler import lambda_handler
body = json.dumps({{"image": base64.b64encode(open({str(image)!r}, "rb").read()).decode()}})
result = lambda_handler({{"httpMethod": "POST", "requestContext": {{}}, "path": "/invocations", "body": body}}, None)
assert json.loads(result["body"])["class"] == "red", result
heavy = sorted(m for m in ("torch", "boto3", "botocore", "click", "http.server") if m in sys.modules)
print(json.dumps(heavy))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def get_event(path: str = "/", method: str = "GET") -> dict[str, Any]:
    return build_rest_v1_event(
        method=method, path=path, resource=path, path_parameters=None, query=[], headers=[], body=b"", binary=False
    )


def test_get_root_serves_the_self_contained_page(app: App) -> None:
    result = app(get_event("/"), CONTEXT)
    assert result["statusCode"] == 200
    assert result["headers"]["Content-Type"].startswith("text/html")
    page = result["body"]
    assert "<input" in page and 'type="file"' in page and 'capture="environment"' in page
    # Self-contained: no external scripts, styles or fonts.
    assert "http://" not in page and "https://" not in page.replace('placeholder="…or paste', "")
    assert len(page.encode()) < 16_000


def test_page_can_be_switched_off(colour_artifact: Path) -> None:
    quiet = App(load_classifier(colour_artifact), FetchPolicy(), serve_page=False)
    assert quiet(get_event("/"), CONTEXT)["statusCode"] == 405


def test_cors_preflight_and_headers(colour_artifact: Path, make_colour_image: Callable[..., bytes]) -> None:
    cors = App(load_classifier(colour_artifact), FetchPolicy(), cors_origin="https://example.org")
    preflight = cors(get_event("/invocations", "OPTIONS"), CONTEXT)
    assert preflight["statusCode"] == 204
    assert preflight["headers"]["Access-Control-Allow-Origin"] == "https://example.org"
    assert "POST" in preflight["headers"]["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight["headers"]["Access-Control-Allow-Headers"]
    answer_ = cors(rest_event(make_colour_image("red"), "image/jpeg", binary=True), CONTEXT)
    assert answer_["headers"]["Access-Control-Allow-Origin"] == "https://example.org"
    assert "Server-Timing" in answer_["headers"]["Access-Control-Expose-Headers"]
    # Without an origin configured: no CORS headers, and OPTIONS is not answered as a preflight.
    plain = App(load_classifier(colour_artifact), FetchPolicy())
    assert plain(get_event("/invocations", "OPTIONS"), CONTEXT)["statusCode"] == 405
    assert "Access-Control-Allow-Origin" not in plain(get_event("/"), CONTEXT)["headers"]


def test_one_json_log_line_and_one_emf_record_per_request(
    colour_artifact: Path, make_colour_image: Callable[..., bytes]
) -> None:
    import io

    out = io.StringIO()
    logged = App(load_classifier(colour_artifact), FetchPolicy(), function_name="PyTorchFunction", out=out)
    logged(rest_event(make_colour_image("blue", size=(120, 90)), "image/jpeg", binary=True), CONTEXT)
    logged(rest_event(b"{", "application/json"), SimpleNamespace(aws_request_id="req-2"))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 4
    log1, emf1, log2, emf2 = lines
    assert log1["level"] == "INFO" and log1["message"] == "request"
    assert log1["request_id"] == "req-123"
    assert log1["event_source"] == "apigateway-rest"
    assert log1["input_kind"] == "raw"
    assert log1["image_size"] == "120x90"
    assert log1["class"] == "blue" and 0.9 < log1["confidence"] <= 1
    assert log1["cold_start"] is True and log2["cold_start"] is False
    assert set(log1["timings_ms"]) == {"total", "fetch", "decode", "inference"}
    assert log1["timings_ms"]["total"] >= log1["timings_ms"]["inference"] > 0
    assert log1["error_type"] is None
    assert (log2["status"], log2["error_type"]) == (400, "BadRequest")
    metrics = emf1["_aws"]["CloudWatchMetrics"][0]
    assert metrics["Namespace"] == "lambdavision"
    assert metrics["Dimensions"] == [["FunctionName"]]
    names = {m["Name"] for m in metrics["Metrics"]}
    assert {"Latency", "ColdStart", "Errors"} <= names
    for name in names:  # every declared metric has a value at the top level, as EMF requires
        assert isinstance(emf1[name], (int, float))
    assert emf1["FunctionName"] == "PyTorchFunction"
    assert (emf1["ColdStart"], emf1["Errors"], emf1["ClientErrors"]) == (1, 0, 0)
    assert (emf2["ColdStart"], emf2["Errors"], emf2["ClientErrors"]) == (0, 0, 1)
    assert isinstance(emf1["_aws"]["Timestamp"], int)


def test_log_level_silences_info_but_not_metrics(colour_artifact: Path) -> None:
    import io

    out = io.StringIO()
    quiet = App(load_classifier(colour_artifact), FetchPolicy(), out=out, log_level=30)
    quiet(rest_event(b"{", "application/json"), CONTEXT)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == 1 and "_aws" in records[0]


def test_cold_start_logs_its_parts(
    colour_artifact: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = App.from_env({"MODEL_URI": str(colour_artifact), "AWS_LAMBDA_FUNCTION_NAME": "Fn"})
    loaded = json.loads(capsys.readouterr().out.splitlines()[0])
    assert loaded["message"] == "model loaded"
    assert loaded["source"] == str(colour_artifact)
    assert loaded["init_ms"] >= loaded["artifact_ms"] > 0 and loaded["session_ms"] > 0
    assert app.function_name == "Fn"


# ---- regressions found in review (each was a 500 or a wrong answer) ----


def test_lone_surrogate_url_is_a_bad_request(app: App) -> None:
    assert answer(app, rest_event(b'{"url": "http://example.com/\\ud800.jpg"}'))[0] == 400
    status, data, _ = answer(app, rest_event(b'{"urls": ["http://example.com/\\ud800.jpg"]}'))
    assert (status, data["results"][0]["status"]) == (200, 400)


def test_five_thousand_digit_topk_is_a_bad_request(app: App) -> None:
    body = ('{"url": "http://x/", "topk": ' + "1" * 5000 + "}").encode()
    assert answer(app, rest_event(body))[0] == 400


def test_malformed_redirect_location_is_upstream_error(app: App, image_server: ImageServer) -> None:
    url = image_server.add("/moved.jpg", b"", status=302, headers={"Location": "http://[::1/cat.jpg"})
    status, data, _ = answer(app, rest_event(json.dumps({"url": url}).encode()))
    assert status == 502 and "Location" in data["error"]


def test_server_errors_are_logged_at_error_level(colour_artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    out = io.StringIO()
    broken = App(load_classifier(colour_artifact), FetchPolicy(), out=out)

    def bug(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug in /var/task/lambdavision/internal_build_7.py")

    monkeypatch.setattr(broken.classifier, "classify", bug)
    body = json.dumps({"image": base64.b64encode(b"\xff\xd8\xff" + b"0" * 10).decode()}).encode()
    result = broken(rest_event(body), CONTEXT)
    # The caller reads a generic message and nothing else: no exception, path, type or traceback.
    assert (result["statusCode"], json.loads(result["body"])) == (500, {"error": "internal error"})
    assert set(result["headers"]) == {
        "Content-Type", "X-Content-Type-Options", "X-Request-Id", "X-Cold-Start", "Server-Timing"
    }  # fmt: skip
    log_line = json.loads(out.getvalue().splitlines()[0])
    assert (log_line["level"], log_line["status"], log_line["error_type"]) == ("ERROR", 500, "RuntimeError")
    assert "internal_build_7" in log_line["error"]  # the reason is for the log


def test_a_model_fault_at_request_time_is_a_generic_500(
    colour_artifact: Path, monkeypatch: pytest.MonkeyPatch, make_colour_image: Callable[..., bytes]
) -> None:
    """An ArtifactError while serving (the model answers the wrong shape) names the model's path: log only."""
    import io

    import numpy as np

    out = io.StringIO()
    broken = App(load_classifier(colour_artifact), FetchPolicy(), out=out)
    monkeypatch.setattr(broken.classifier.backend, "run", lambda batch: np.zeros((len(batch), 7), np.float32))
    body = json.dumps({"image": base64.b64encode(make_colour_image("red")).decode()}).encode()
    result = broken(rest_event(body), CONTEXT)
    assert (result["statusCode"], json.loads(result["body"])) == (500, {"error": "internal error"})
    assert str(colour_artifact) not in result["body"]
    log_line = json.loads(out.getvalue().splitlines()[0])
    assert (log_line["status"], log_line["error_type"]) == (500, "ArtifactError")
    assert "expected (N, 3)" in log_line["error"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LAMBDAVISION_MAX_BATCH", "two"),
        ("LAMBDAVISION_MAX_BATCH", "0"),
        ("LAMBDAVISION_FETCH_TIMEOUT", "x"),
        ("LAMBDAVISION_MAX_IMAGE_BYTES", "-1"),
    ],
)
def test_bad_settings_fail_before_the_model_loads(name: str, value: str, tmp_path: Path) -> None:
    from lambdavision.core.errors import ConfigError

    # The model does not exist: a ConfigError (not an ArtifactError) proves the settings came first.
    with pytest.raises(ConfigError, match=name):
        App.from_env({name: value, "MODEL_URI": str(tmp_path / "missing.tar.gz")})


def test_a_bad_setting_answers_a_500_and_logs_its_name(
    monkeypatch: pytest.MonkeyPatch, colour_artifact: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import lambdavision.handler as handler

    monkeypatch.setattr(handler, "_app", None)
    monkeypatch.setenv("MODEL_URI", str(colour_artifact))
    monkeypatch.setenv("LAMBDAVISION_THREADS", "two")
    result = handler.lambda_handler(rest_event(b'{"url": "http://x/"}'), CONTEXT)
    assert result["statusCode"] == 500
    assert "LAMBDAVISION_THREADS" not in result["body"]  # the detail is for the log (issue 14.7)
    assert "LAMBDAVISION_THREADS" in caplog.text and "req-123" in caplog.text


def test_405_says_what_is_allowed(app: App) -> None:
    status, _, headers = answer(app, get_event("/invocations", "PUT"))
    assert status == 405 and headers["Allow"] == "POST, GET, OPTIONS"


def test_onnx_models_that_cannot_serve_are_refused_at_load() -> None:
    from onnx import TensorProto, helper

    from lambdavision.core.errors import ArtifactError
    from lambdavision.runtime.backends import OnnxBackend

    def model(shape: list[Any]) -> bytes:
        graph = helper.make_graph(
            [helper.make_node("GlobalAveragePool", ["input"], ["p"]), helper.make_node("Flatten", ["p"], ["logits"])],
            "g",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return bytes(m.SerializeToString())

    with pytest.raises(ArtifactError, match="fixed batch size 1"):
        OnnxBackend(model([1, 3, 32, 32]), "m.tar.gz", input_shape=(32, 32))
    with pytest.raises(ArtifactError, match=r"height 64 but lambdavision\.json's preprocessing makes 32"):
        OnnxBackend(model(["n", 3, 64, 64]), "m.tar.gz", input_shape=(32, 32))
    with pytest.raises(ArtifactError, match="4 channels"):
        OnnxBackend(model(["n", 4, 32, 32]), "m.tar.gz", input_shape=(32, 32))
    assert OnnxBackend(model(["n", 3, None, None]), "m.tar.gz", input_shape=(32, 32)).input_name == "input"
