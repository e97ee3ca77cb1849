"""The Lambda entry point: `lambdavision.handler.lambda_handler`.

The model loads once per execution environment: during Lambda's INIT phase when this module is
imported by a runtime (full CPU, not billed as request time), else on the first call. Then each
event is parsed (any source), the image fetched or decoded, classified, and answered; every known
error becomes a 4xx JSON answer in one place, anything else a logged 500, and the environment stays
warm for the next request. Each request prints one JSON log line and one EMF metrics record.
"""

from __future__ import annotations

import os

from lambdavision import model_source

# Inside a Lambda runtime, a model on S3 starts downloading now, before the heavy imports below
# (numpy, Pillow, then ONNX Runtime in the loader): the download and unpack overlap them.
if os.environ.get("AWS_LAMBDA_RUNTIME_API"):
    model_source.start_prefetch(os.environ)

# (The imports below come after the prefetch on purpose.)
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from lambdavision.core.classify import Classifier, Prediction, Timings
from lambdavision.core.errors import ConfigError, LambdaVisionError, MethodNotAllowed
from lambdavision.core.events import ApiRequest, DirectInvoke, EventSource, Response, error_response, parse_event
from lambdavision.core.fetch import FetchPolicy, fetch, fetch_many
from lambdavision.core.page import NOSNIFF, page_headers
from lambdavision.core.payload import DEFAULT_MAX_BATCH, ClassifyRequest, parse_request
from lambdavision.core.redact import RedactingFilter, redact_text
from lambdavision.core.telemetry import RequestRecord

log = logging.getLogger("lambdavision")
log.addFilter(RedactingFilter())  # no URL's query string reaches the logs (SECURITY.md)
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}


def _int_env(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, not {value}")
    return value


def _page() -> str:
    from importlib import resources  # only GET / needs it: not imported at cold start

    return resources.files("lambdavision").joinpath("resources/index.html").read_text(encoding="utf-8")


class App:
    """A loaded classifier and the policies that guard it; callable as a Lambda handler."""

    def __init__(
        self,
        classifier: Classifier,
        policy: FetchPolicy,
        *,
        max_image_bytes: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        init_ms: float = 0.0,
        cors_origin: str | None = None,
        serve_page: bool = True,
        function_name: str = "lambdavision",
        log_level: int = LEVELS["INFO"],
        out: TextIO | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.classifier = classifier
        self.policy = policy
        self.max_image_bytes = policy.max_bytes if max_image_bytes is None else max_image_bytes
        self.max_batch = max_batch
        self.init_ms = init_ms
        self.cors_origin = cors_origin
        self.serve_page = serve_page
        self.function_name = function_name
        self.log_level = log_level
        self.out = out
        self.clock = clock
        self.cold = True
        self._page: tuple[str, dict[str, str]] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> App:
        from lambdavision.loader import load_classifier

        started = time.perf_counter()
        # Settings first: a bad variable fails in one line before a (possibly long) model download.
        try:
            policy = FetchPolicy.from_env(environ)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        settings: dict[str, Any] = {
            "max_image_bytes": _int_env(environ, "LAMBDAVISION_MAX_IMAGE_BYTES", policy.max_bytes),
            "max_batch": _int_env(environ, "LAMBDAVISION_MAX_BATCH", DEFAULT_MAX_BATCH),
            "cors_origin": environ.get("LAMBDAVISION_CORS_ORIGIN") or None,
            "serve_page": environ.get("LAMBDAVISION_PAGE", "1") != "0",
            "function_name": environ.get("AWS_LAMBDA_FUNCTION_NAME", "lambdavision"),
            "log_level": LEVELS.get(environ.get("LOG_LEVEL", "INFO").upper(), LEVELS["INFO"]),
        }
        parts: dict[str, float] = {}
        classifier = load_classifier(environ=environ, parts_ms=parts)
        app = cls(classifier, policy, init_ms=(time.perf_counter() - started) * 1000, **settings)
        app._emit(
            "INFO",
            {"message": "model loaded", "source": classifier.source, "init_ms": round(app.init_ms, 1), **parts},
        )
        return app

    # ---- one request ----

    def __call__(self, event: Any, context: Any = None) -> dict[str, Any]:
        started = time.perf_counter()
        request_id = str(getattr(context, "aws_request_id", "") or "local")
        record = RequestRecord(request_id=request_id, cold_start=self.cold)
        self.cold = False
        source: type[EventSource] = DirectInvoke
        timings = Timings()
        try:
            source, request = parse_event(event)
            record.source = source.name
            response = self._route(request, timings, record)
        except LambdaVisionError as exc:
            # A 500 of ours (a model answering the wrong shape, say) is the function's fault: its
            # message names files and settings, so it goes to the log line only, like a bug's.
            response = error_response(exc) if exc.status != 500 else _internal_error()
            record.error_type, record.error = type(exc).__name__, exc.message
        except Exception as exc:
            log.exception("unexpected error while handling a request")
            response = _internal_error()
            record.error_type, record.error = type(exc).__name__, str(exc)
        response.headers.update(self._headers(request_id, timings, record.cold_start))
        record.status = response.status
        record.latency_ms = (time.perf_counter() - started) * 1000
        record.fetch_ms, record.decode_ms, record.inference_ms = (
            timings.fetch_ms,
            timings.decode_ms,
            timings.inference_ms,
        )
        if timings.image_sizes:
            record.image_size = "{}x{}".format(*timings.image_sizes[0])
        level = "ERROR" if response.status >= 500 else "INFO"
        self._emit(level, record.log_line(level))
        self._print(record.emf(self.function_name, int(self.clock() * 1000)))
        return source.render(response)

    def _headers(self, request_id: str, timings: Timings, cold: bool) -> dict[str, str]:
        headers = {
            **NOSNIFF,
            "X-Request-Id": request_id,
            "X-Cold-Start": "1" if cold else "0",
            "Server-Timing": (
                f"fetch;dur={timings.fetch_ms:.1f}, decode;dur={timings.decode_ms:.1f}, "
                f"inference;dur={timings.inference_ms:.1f}"
            ),
        }
        if self.cors_origin:
            headers.update(
                {
                    "Access-Control-Allow-Origin": self.cors_origin,
                    "Access-Control-Expose-Headers": "X-Request-Id, X-Cold-Start, Server-Timing",
                    "Timing-Allow-Origin": self.cors_origin,
                    "Vary": "Origin",
                }
            )
        return headers

    def _route(self, request: ApiRequest, timings: Timings, record: RequestRecord) -> Response:
        if request.method == "POST":
            classify_request = parse_request(request, self.max_image_bytes, self.max_batch)
            record.input_kind = classify_request.input_kind
            return self._classify(classify_request, timings, record)
        if request.method == "OPTIONS" and self.cors_origin:
            return Response(
                status=204,
                body="",
                headers={
                    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
                    # What callers of an API with --auth key or iam send besides Content-Type.
                    "Access-Control-Allow-Headers": (
                        "Content-Type, X-Api-Key, Authorization, X-Amz-Date, X-Amz-Security-Token, X-Amz-Content-Sha256"
                    ),
                    "Access-Control-Max-Age": "600",
                },
            )
        if request.method in ("GET", "HEAD") and request.path.rstrip("/") == "" and self.serve_page:
            if self._page is None:
                html = _page()
                self._page = html, page_headers(html)
            record.input_kind = "page"
            html, headers = self._page
            return Response(status=200, body=html, content_type="text/html; charset=utf-8", headers=dict(headers))
        raise MethodNotAllowed(f"{request.method} {request.path} is not supported: POST an image to /invocations")

    def _classify(self, req: ClassifyRequest, timings: Timings, record: RequestRecord) -> Response:
        topk = req.topk  # a positive int (payload checked it); the classifier clips it to the classes
        started = time.perf_counter()
        if not req.batch:
            data = fetch(req.urls[0], self.policy).content if req.urls else req.images[0]
            timings.fetch_ms = (time.perf_counter() - started) * 1000
            if isinstance(data, LambdaVisionError):
                raise data
            record.images, record.image_bytes = 1, len(data)
            prediction = self.classifier.classify([data], topk, timings)[0]
            record.top_class, record.confidence = prediction.label, round(prediction.confidence, 6)
            return Response(status=200, body=prediction.to_dict())
        images: list[bytes | LambdaVisionError] = list(req.images)
        if req.urls:
            images = [r if isinstance(r, LambdaVisionError) else r.content for r in fetch_many(req.urls, self.policy)]
        timings.fetch_ms = (time.perf_counter() - started) * 1000
        record.images = len(images)
        record.image_bytes = sum(len(i) for i in images if isinstance(i, bytes))
        results = self.classifier.classify_each(images, topk, timings)
        return Response(status=200, body={"results": [_result_dict(r) for r in results]})

    # ---- output ----

    def _emit(self, level: str, record: dict[str, Any]) -> None:
        if LEVELS[level] >= self.log_level:
            self._print({"level": level, **record})

    def _print(self, record: dict[str, Any]) -> None:
        # stdout, one line each: Lambda's runtime sends it to CloudWatch Logs (EMF needs exactly that).
        out = self.out or sys.stdout
        out.write(redact_text(json.dumps(record, separators=(",", ":"), default=str)) + "\n")
        out.flush()


def _result_dict(result: Prediction | LambdaVisionError) -> dict[str, Any]:
    if isinstance(result, LambdaVisionError):
        return {"error": result.message, "status": result.status}
    return result.to_dict()


def _internal_error() -> Response:
    """What a caller learns of a fault of the function: that it happened, and the request id (a header)."""
    return Response(status=500, body={"error": "internal error"})


_app: App | None = None


def get_app() -> App:
    """The environment's App, created on first use (or at import inside a Lambda runtime)."""
    global _app
    if _app is None:
        _app = App.from_env(os.environ)
    return _app


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """The function AWS Lambda calls."""
    try:
        app = get_app()
    except LambdaVisionError as exc:
        # The model or a setting is broken: a server-side misconfiguration. The reason (paths,
        # names of variables) goes to the log only; the caller gets a request id to quote.
        request_id = str(getattr(context, "aws_request_id", "") or "local")
        log.error("cannot start (request %s): %s", request_id, exc.message)
        body = {"error": "function unavailable: it could not load its model or settings", "request_id": request_id}
        return DirectInvoke.render(Response(status=500, body=body, headers={**NOSNIFF, "X-Request-Id": request_id}))
    return app(event, context)


# Inside a Lambda runtime (AWS's, or lambdavision's local one) load during INIT: the guide's
# function did the same, and INIT runs with a full CPU. A failure here is reported by the runtime
# as an init error, and the next invocation retries in a fresh environment.
if os.environ.get("AWS_LAMBDA_RUNTIME_API"):
    get_app()
