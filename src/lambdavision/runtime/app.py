"""The function's application: a loaded classifier and the policies that guard it.

`App.from_env` reads the settings (first: a bad variable fails before a long download), loads the
model, and logs the load; calling the App with an event parses it (any source), fetches or decodes
the image, classifies, and answers. Every error becomes its HTTP answer through
`core.errors.http_answer` (a bug: a logged 500), and the App stays warm for the next request. Each
request prints one JSON log line and one EMF metrics record. `lambdavision.handler` is the thin
Lambda entry point around it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from lambdavision.core.classify import Classifier, Prediction, Timings
from lambdavision.core.errors import HttpError, LambdaVisionError, MethodNotAllowed, http_answer
from lambdavision.core.events import ApiRequest, DirectInvoke, EventSource, Response, error_response, parse_event
from lambdavision.core.page import NOSNIFF, page_headers
from lambdavision.core.payload import DEFAULT_MAX_BATCH, ClassifyRequest, parse_request
from lambdavision.core.redact import RedactingFilter, redact_text
from lambdavision.core.telemetry import RequestRecord
from lambdavision.core.urlpolicy import FetchPolicy
from lambdavision.runtime.fetch import fetch, fetch_many
from lambdavision.runtime.settings import LEVELS, Settings

log = logging.getLogger("lambdavision")
log.addFilter(RedactingFilter())  # no URL's query string reaches the logs (SECURITY.md)


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
        from lambdavision.runtime.loader import load_classifier

        started = time.perf_counter()
        # Settings first: a bad variable fails in one line before a (possibly long) model download.
        settings = Settings.from_env(environ)
        options: dict[str, Any] = {
            "max_image_bytes": settings.max_image_bytes,
            "max_batch": settings.max_batch,
            "cors_origin": settings.cors_origin,
            "serve_page": settings.serve_page,
            "function_name": settings.function_name or "lambdavision",
            "log_level": settings.log_level,
        }
        parts: dict[str, float] = {}
        classifier = load_classifier(environ=environ, parts_ms=parts)
        app = cls(classifier, settings.policy, init_ms=(time.perf_counter() - started) * 1000, **options)
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
        except HttpError as exc:
            response = error_response(exc)
            record.error_type, record.error = type(exc).__name__, exc.message
        except Exception as exc:
            log.exception("unexpected error while handling a request")
            response = error_response(exc)
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
        status, body, _ = http_answer(result)
        return {**body, "status": status}
    return result.to_dict()


__all__ = ["App"]
