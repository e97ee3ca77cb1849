"""The Lambda entry point: `lambdavision.handler.lambda_handler` (the path users' templates name).

The model loads once per execution environment: during Lambda's INIT phase when this module is
imported by a runtime (full CPU, not billed as request time), else on the first call. Each event
then goes to the environment's `App` (`runtime.app`): parsed, fetched or decoded, classified and
answered, every known error as its HTTP answer, anything else a logged 500, and the environment
stays warm for the next request.
"""

from __future__ import annotations

import os

from lambdavision.runtime import model_source
from lambdavision.runtime.settings import in_lambda_runtime

# Inside a Lambda runtime, a model on S3 starts downloading now, before the heavy imports below
# (numpy, Pillow, then ONNX Runtime in the loader): the download and unpack overlap them.
if in_lambda_runtime(os.environ):
    model_source.start_prefetch(os.environ)

# (The imports below come after the prefetch on purpose: numpy, Pillow, the loader.)
import logging
from typing import Any

from lambdavision.core.errors import FunctionUnavailable, LambdaVisionError
from lambdavision.core.events import DirectInvoke, error_response
from lambdavision.core.page import NOSNIFF
from lambdavision.runtime.app import App

log = logging.getLogger("lambdavision")


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
        response = error_response(FunctionUnavailable("function unavailable: it could not load its model or settings"))
        response.body["request_id"] = request_id
        response.headers.update({**NOSNIFF, "X-Request-Id": request_id})
        return DirectInvoke.render(response)
    return app(event, context)


# Inside a Lambda runtime (AWS's, or lambdavision's local one) load during INIT: the guide's
# function did the same, and INIT runs with a full CPU. A failure here is reported by the runtime
# as an init error, and the next invocation retries in a fresh environment.
if in_lambda_runtime(os.environ):
    get_app()


__all__ = ["App", "get_app", "lambda_handler"]
