"""URLs as messages and logs may show them: never a query string, a fragment or credentials.

A presigned S3 URL carries its signature in the query (`X-Amz-Signature=...`), and so do many
tokens; an error message or log line that names the URL would hand them to whoever reads the
logs. Every URL the function writes goes through `redact_url` (when a message is built) or
`redact_text` (over each finished log line: the handler's JSON lines and the `lambdavision`
logger's records, tracebacks included).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

REDACTED = "[redacted]"
# A URL in free text: a scheme, then anything up to whitespace, a quote or an angle bracket.
_URL_IN_TEXT = re.compile(r"""\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s"'<>\\]+""")


def redact_url(url: str) -> str:
    """scheme://host[:port]/path, with `?[redacted]` standing for a query string (or fragment)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<a malformed URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    secret = parts.query or parts.fragment or parts.username or parts.password
    tail = f"?{REDACTED}" if secret else ""
    if not parts.scheme and not netloc:
        return f"{parts.path[:200]}{tail}"
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    url = match.group(0)
    kept = url.rstrip(".,;:!?)]")  # punctuation after a URL belongs to the sentence
    return redact_url(kept) + url[len(kept) :]


class RedactingFilter(logging.Filter):
    """Redacts URLs in a log record's message and traceback before any handler formats it."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


__all__ = ["REDACTED", "RedactingFilter", "redact_text", "redact_url"]
