"""The exception tree: every error lambdavision raises on purpose, in one place.

An error the Lambda function can answer with is an `HttpError` and carries its HTTP status;
`http_answer` turns one into that answer (the only place that does). An error only the CLI ever
shows carries no status (`status` is None): the CLI prints its message as one line
(`cli.common.known_error_message`, the only place that does). Anything that is not a
`LambdaVisionError` is a bug: a logged 500 in the function, a traceback in the CLI.

    LambdaVisionError                 base; no HTTP status (the CLI's errors derive from it directly)
    ├── HttpError (500)               an error the function answers over HTTP, with its status
    │   ├── BadRequest (400)          malformed JSON, a missing or bad field, a refused URL
    │   │   └── MethodNotAllowed (405)  a method the API does not serve (answered with `Allow`)
    │   ├── PayloadTooLarge (413)     body, download or image bytes over a cap
    │   ├── UnsupportedMediaType (415)  not an image format we accept
    │   ├── UnprocessableImage (422)  undecodable image, or over the pixel cap
    │   ├── UpstreamError (502)       the image host failed (connection, HTTP error, redirects)
    │   ├── UpstreamTimeout (504)     the image host was too slow
    │   ├── InternalError (500)       a bug met while serving one item of a batch (the rest go on)
    │   ├── FunctionUnavailable (500) the function could not load its model or settings
    │   ├── ArtifactError (500)       the model artifact is missing, unsafe or corrupt (load time)
    │   │   ├── CacheWriteError       the unpacked model could not be written to disk (memory instead)
    │   │   └── ObjectChanged         the S3 object was replaced while read (read it again)
    │   └── ConfigError (500)         an environment variable of the function is invalid (load time)
    ├── OptionsFileError              lambdavision.toml / [tool.lambdavision] cannot be used
    ├── TemplateError                 a template, its parameters or env.json cannot be used
    ├── NotPackagedError              deploy was given a template whose code is not on S3 yet
    ├── TemplateOptionError           `init` options that make no valid template
    ├── PackageError                  `package` / `build` cannot make a function's zip
    │   └── PackageTooLarge           a zip over Lambda's size limits
    ├── AwsError                      an AWS call failed for a reason the user can act on
    │   └── DeployError               a stack change failed (names each failed resource)
    ├── ExportError                   a model cannot be exported (or converted) faithfully
    ├── BenchError                    a benchmark cannot run or its function misbehaved
    ├── PricingError                  the price table cannot be read
    └── MissingInterpreter            no Python of a function's runtime on this machine

`UnsafeFolder` (a cache folder this process must not trust) is internal to `runtime.seal`'s
callers and never shown: it is a plain Exception, outside the tree.
"""

from __future__ import annotations


class LambdaVisionError(Exception):
    """Base of every error lambdavision raises on purpose; its message is one line for a user."""

    status: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- What the function answers over HTTP ---------------------------------------------------------


class HttpError(LambdaVisionError):
    """An error the function answers with: `status` is its HTTP status."""

    status: int = 500


class BadRequest(HttpError):
    status = 400


class MethodNotAllowed(BadRequest):
    status = 405
    allow = "POST, GET, OPTIONS"


class PayloadTooLarge(HttpError):
    status = 413


class UnsupportedMediaType(HttpError):
    status = 415


class UnprocessableImage(HttpError):
    status = 422


class UpstreamError(HttpError):
    status = 502


class UpstreamTimeout(HttpError):
    status = 504


class InternalError(HttpError):
    """A bug met while serving one item of a batch: that item answers 500, the others go on."""


class FunctionUnavailable(HttpError):
    """The function could not load its model or settings: the reason goes to the log only."""


class ArtifactError(HttpError):
    """The model artifact cannot be used; the message names the file and the problem."""


class CacheWriteError(ArtifactError):
    """Writing an unpacked model to disk failed (disk full, read-only): the caller may fall back to memory."""


class ObjectChanged(ArtifactError):
    """The object was replaced while its ranges were read: start again on the new version."""


class ConfigError(HttpError):
    """A setting in the function's environment is invalid; the message names the variable."""


def http_answer(exc: BaseException) -> tuple[int, dict[str, str], dict[str, str]]:
    """The one place an error becomes an HTTP answer: (status, JSON body, headers).

    A known error answers its status and message; anything else (a bug, or a CLI-only error that
    has no status) is a 500 that says nothing of its cause (the caller logs it).
    """
    # A 500 of the function's own (a model answering the wrong shape, a bad setting at request time)
    # names files and settings: like a bug's, its message goes to the log line only.
    if not isinstance(exc, HttpError) or (exc.status == 500 and not isinstance(exc, FunctionUnavailable)):
        return 500, {"error": "internal error"}, {}
    headers = {"Allow": exc.allow} if isinstance(exc, MethodNotAllowed) else {}
    return exc.status, {"error": exc.message}, headers


# --- What only the CLI shows (no HTTP status) ----------------------------------------------------


class OptionsFileError(LambdaVisionError):
    """The options file (lambdavision.toml, [tool.lambdavision]) cannot be used; names file and entry."""


class TemplateError(LambdaVisionError):
    """The template, its parameters or env.json cannot be used; the message says where."""


class NotPackagedError(LambdaVisionError):
    """The template still points at local code folders (deploy needs `package` first)."""


class TemplateOptionError(LambdaVisionError):
    """An option the template cannot be built with; the message says which values work."""


class PackageError(LambdaVisionError):
    """The template or the package cannot be built as asked; the message says what to change."""


class PackageTooLarge(PackageError):
    """A package would exceed Lambda's size limit; the message names the biggest parts."""


class AwsError(LambdaVisionError):
    """An AWS call failed for a reason the user can act on; the message says how."""


class DeployError(AwsError):
    """The stack did not reach the state asked for; the message says what failed and what next."""


class ExportError(LambdaVisionError):
    """The model cannot be exported, or its exported copies disagree with it; nothing was written."""


class BenchError(LambdaVisionError):
    """A measurement could not be taken: the function failed, or the inputs are unusable."""


class PricingError(LambdaVisionError):
    """The price table is unreadable, or a cost was asked for something Lambda does not offer."""


class MissingInterpreter(LambdaVisionError):
    """The runtime's CPython is not on this machine (to run a function's built package)."""


__all__ = [
    "ArtifactError",
    "AwsError",
    "BadRequest",
    "BenchError",
    "CacheWriteError",
    "ConfigError",
    "DeployError",
    "ExportError",
    "FunctionUnavailable",
    "HttpError",
    "InternalError",
    "LambdaVisionError",
    "MethodNotAllowed",
    "MissingInterpreter",
    "NotPackagedError",
    "ObjectChanged",
    "OptionsFileError",
    "PackageError",
    "PackageTooLarge",
    "PayloadTooLarge",
    "PricingError",
    "TemplateError",
    "TemplateOptionError",
    "UnprocessableImage",
    "UnsupportedMediaType",
    "UpstreamError",
    "UpstreamTimeout",
    "http_answer",
]
