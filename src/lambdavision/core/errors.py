"""The exception tree. Every error a caller can cause carries its HTTP status.

Errors are turned into responses in exactly one place (`core.events.error_response`); anything
that is not a `LambdaVisionError` is a bug and becomes a logged 500.

    LambdaVisionError (500)
    ├── BadRequest (400)            malformed JSON, a missing or bad field, a refused URL
    │   └── MethodNotAllowed (405)  a method the API does not serve (answered with `Allow`)
    ├── PayloadTooLarge (413)       body, download or image bytes over a cap
    ├── UnsupportedMediaType (415)  not an image format we accept
    ├── UnprocessableImage (422)    undecodable image, or over the pixel cap
    ├── UpstreamError (502)         the image host failed (connection, HTTP error, redirects)
    ├── UpstreamTimeout (504)       the image host was too slow
    ├── ArtifactError (500)         the model artifact is missing, unsafe or corrupt (load time)
    └── ConfigError (500)           an environment variable of the function is invalid (load time)
"""

from __future__ import annotations


class LambdaVisionError(Exception):
    """Base of every error lambdavision raises on purpose."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(LambdaVisionError):
    status = 400


class MethodNotAllowed(BadRequest):
    status = 405
    allow = "POST, GET, OPTIONS"


class PayloadTooLarge(LambdaVisionError):
    status = 413


class UnsupportedMediaType(LambdaVisionError):
    status = 415


class UnprocessableImage(LambdaVisionError):
    status = 422


class UpstreamError(LambdaVisionError):
    status = 502


class UpstreamTimeout(LambdaVisionError):
    status = 504


class ArtifactError(LambdaVisionError):
    """The model artifact cannot be used; the message names the file and the problem."""

    status = 500


class ConfigError(LambdaVisionError):
    """A setting in the function's environment is invalid; the message names the variable."""

    status = 500


__all__ = [
    "ArtifactError",
    "BadRequest",
    "ConfigError",
    "LambdaVisionError",
    "MethodNotAllowed",
    "PayloadTooLarge",
    "UnprocessableImage",
    "UnsupportedMediaType",
    "UpstreamError",
    "UpstreamTimeout",
]
