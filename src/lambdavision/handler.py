"""The Lambda entry point: `lambdavision.handler.lambda_handler`.

The model loads once per execution environment: during Lambda's INIT phase when this module is
imported by a runtime (full CPU, not billed as request time), else on the first call. Then each
event is parsed (any source), the image fetched or decoded, classified, and answered; every known
error becomes a 4xx JSON answer in one place, anything else a logged 500, and the environment stays
warm for the next request.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from lambdavision.core.classify import Classifier, Prediction, Timings
from lambdavision.core.errors import BadRequest, LambdaVisionError
from lambdavision.core.events import DirectInvoke, EventSource, Response, error_response, parse_event
from lambdavision.core.fetch import FetchPolicy, fetch, fetch_many
from lambdavision.core.payload import DEFAULT_MAX_BATCH, DEFAULT_MAX_IMAGE_BYTES, ClassifyRequest, parse_request

log = logging.getLogger("lambdavision")
log.setLevel(
    logging.getLevelName(os.environ.get("LOG_LEVEL", "INFO").upper())
    if os.environ.get("LOG_LEVEL", "INFO").upper() in logging.getLevelNamesMapping()
    else logging.INFO
)


def _int_env(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {raw!r}") from None


class App:
    """A loaded classifier and the policies that guard it; callable as a Lambda handler."""

    def __init__(
        self,
        classifier: Classifier,
        policy: FetchPolicy,
        *,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        max_batch: int = DEFAULT_MAX_BATCH,
        init_ms: float = 0.0,
    ) -> None:
        self.classifier = classifier
        self.policy = policy
        self.max_image_bytes = max_image_bytes
        self.max_batch = max_batch
        self.init_ms = init_ms
        self.cold = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> App:
        from lambdavision.loader import load_classifier

        started = time.perf_counter()
        classifier = load_classifier(environ=environ)
        policy = FetchPolicy.from_env(environ)
        app = cls(
            classifier,
            policy,
            max_image_bytes=_int_env(environ, "LAMBDAVISION_MAX_IMAGE_BYTES", policy.max_bytes),
            max_batch=_int_env(environ, "LAMBDAVISION_MAX_BATCH", DEFAULT_MAX_BATCH),
            init_ms=(time.perf_counter() - started) * 1000,
        )
        log.info("model loaded from %s in %.0f ms", classifier.source, app.init_ms)
        return app

    def __call__(self, event: Any, context: Any = None) -> dict[str, Any]:
        source: type[EventSource] = DirectInvoke
        timings = Timings()
        try:
            source, request = parse_event(event)
            response = self._route(request.method, request, timings)
        except LambdaVisionError as exc:
            response = error_response(exc)
        except Exception:
            log.exception("unexpected error while handling a request")
            response = Response(status=500, body={"error": "internal error"})
        request_id = getattr(context, "aws_request_id", None)
        if request_id:
            response.headers["X-Request-Id"] = str(request_id)
        response.headers["Server-Timing"] = (
            f"fetch;dur={timings.fetch_ms:.1f}, decode;dur={timings.decode_ms:.1f}, "
            f"inference;dur={timings.inference_ms:.1f}"
        )
        self.cold = False
        return source.render(response)

    def _route(self, method: str, request: Any, timings: Timings) -> Response:
        if method != "POST":
            raise MethodNotAllowed(f"{method} is not supported here: POST an image to /invocations")
        classify_request = parse_request(request, self.max_image_bytes, self.max_batch)
        return self._classify(classify_request, timings)

    def _classify(self, req: ClassifyRequest, timings: Timings) -> Response:
        topk = self.classifier.check_topk(req.topk)
        started = time.perf_counter()
        if not req.batch:
            data = fetch(req.urls[0], self.policy).content if req.urls else req.images[0]
            timings.fetch_ms = (time.perf_counter() - started) * 1000
            if isinstance(data, LambdaVisionError):
                raise data
            prediction = self.classifier.classify([data], topk, timings)[0]
            return Response(status=200, body=prediction.to_dict())
        images: list[bytes | LambdaVisionError] = list(req.images)
        if req.urls:
            images = [r if isinstance(r, LambdaVisionError) else r.content for r in fetch_many(req.urls, self.policy)]
        timings.fetch_ms = (time.perf_counter() - started) * 1000
        results = self.classifier.classify_each(images, topk, timings)
        return Response(status=200, body={"results": [_result_dict(r) for r in results]})


class MethodNotAllowed(BadRequest):
    status = 405


def _result_dict(result: Prediction | LambdaVisionError) -> dict[str, Any]:
    if isinstance(result, LambdaVisionError):
        return {"error": result.message, "status": result.status}
    return result.to_dict()


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
        # The model cannot load: a server-side misconfiguration, reported as a 500 with the reason.
        log.error("cannot load the model: %s", exc.message)
        return DirectInvoke.render(Response(status=500, body={"error": f"model unavailable: {exc.message}"}))
    return app(event, context)


# Inside a Lambda runtime (AWS's, or lambdavision's local one) load during INIT: the guide's
# function did the same, and INIT runs with a full CPU. A failure here is reported by the runtime
# as an init error, and the next invocation retries in a fresh environment.
if os.environ.get("AWS_LAMBDA_RUNTIME_API"):
    get_app()
