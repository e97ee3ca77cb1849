"""The headers that lock down the upload page served at GET / (resources/index.html).

The page is self-contained (one inline <style>, one inline <script>), so its Content-Security-
Policy allows exactly those two by their sha256 and nothing else: no other script, style, frame,
plugin, form target or base URL. What it does need: `connect-src 'self'` (it POSTs to
/invocations), `img-src blob: https: http:` (the preview of a chosen file, or of a pasted URL).
It may not be framed (clickjacking), and the browser may not sniff another content type.
"""

from __future__ import annotations

import base64
import hashlib
import re

_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)

# On every answer of the function: a JSON body is never to be read as HTML or script.
NOSNIFF = {"X-Content-Type-Options": "nosniff"}


def content_security_policy(html: str) -> str:
    """The page's CSP: default-src 'none', plus its own inline script and style by their hashes."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        hashes[kind].append(f"'sha256-{digest}'")
    none = "'none'"
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {' '.join(hashes['script']) or none}",
            f"style-src {' '.join(hashes['style']) or none}",
            "img-src blob: https: http:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def page_headers(html: str) -> dict[str, str]:
    """What the page is served with: its CSP, no framing, no referrer, no sniffing."""
    return {
        "Content-Security-Policy": content_security_policy(html),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        **NOSNIFF,
    }


__all__ = ["NOSNIFF", "content_security_policy", "page_headers"]
