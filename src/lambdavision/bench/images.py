"""The guide's request for the function under test: an image served on loopback, fetched by URL."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lambdavision.core.event_builders import invocation_event


class ImageServer:
    """Serves fixed images on 127.0.0.1 for the function under test to fetch."""

    def __init__(self, images: Mapping[str, bytes]) -> None:
        self._images = {name.strip("/"): data for name, data in images.items()}
        images_ref = self._images

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = images_ref.get(self.path.split("?", 1)[0].strip("/"))
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="bench-images", daemon=True)

    def __enter__(self) -> ImageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def url_for(self, name: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{name.strip('/')}"


def url_event(url: str) -> dict[str, Any]:
    """The guide's request: an API Gateway REST proxy event whose body is `{"url": ...}`."""
    return invocation_event({"url": url})


__all__ = ["ImageServer", "url_event"]
