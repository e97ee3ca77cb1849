"""Issue 14.2 and 14.3: the fetcher leaks nothing into messages and logs, and is no port scanner.

Query strings (a presigned URL's X-Amz-Signature) never reach any output of the function; an image
host's bytes (an SSH banner, a reason phrase) never come back to the caller; a closed port and a
filtered one answer alike; and only ports 80 and 443 are reached unless a setting widens them.
"""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest

from lambdavision.core.errors import BadRequest, UpstreamError
from lambdavision.core.event_builders import invocation_event
from lambdavision.runtime.app import App
from lambdavision.runtime.fetch import FetchPolicy, fetch
from lambdavision.runtime.loader import load_classifier
from tests.fixtures.image_server import ImageServer, RawServer

LOCAL = FetchPolicy(allow_private=True, connect_timeout=1.0, total_timeout=2.0)
PLANTED = "planted0secret0c0ffee"
SECRET = f"X-Amz-Signature={PLANTED}&X-Amz-Credential=AKIA{PLANTED}"


def port_of(server: ImageServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


# --- 14.2: no query string in any output -------------------------------------------------------------


@pytest.fixture
def app(colour_artifact: Path) -> App:
    return App(load_classifier(colour_artifact), LOCAL)  # prints its log lines to the real stdout


def _call(app: App, body: dict[str, Any]) -> dict[str, Any]:
    event = invocation_event(body)
    return app(event, SimpleNamespace(aws_request_id="leak-test"))


def test_no_query_string_reaches_any_output(
    app: App,
    image_server: ImageServer,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level("DEBUG", logger="lambdavision")
    image_server.add("/loop", b"", status=302, headers={"Location": f"/loop?{SECRET}"})
    metadata = f"http://169.254.169.254/latest/meta-data/iam?{SECRET}"
    urls = {
        "too many redirects": image_server.url_for(f"/redirect-chain?n=9&{SECRET}"),
        "redirect loop": image_server.url_for(f"/loop?{SECRET}"),
        "redirected to": image_server.url_for(f"/redirect?to={quote(metadata, safe='')}"),
        "answered HTTP 500": image_server.url_for(f"/status/500?{SECRET}"),
        "refused": f"http://169.254.169.254:8080/x.jpg?{SECRET}#{PLANTED}",
    }
    answers = [_call(app, {"url": url}) for url in urls.values()]
    answers.append(_call(app, {"url": image_server.url_for(f"/png?{SECRET}")}))
    answers.append(_call(app, {"urls": [*urls.values(), image_server.url_for(f"/png?{SECRET}")]}))

    # A bug whose exception names the URL: logged with its traceback, answered as a 500.
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"boom while classifying {urls['answered HTTP 500']}")

    monkeypatch.setattr(app.classifier, "classify", broken)
    answers.append(_call(app, {"url": image_server.url_for(f"/png?{SECRET}")}))

    captured = capfd.readouterr()
    everything = "\n".join([captured.out, captured.err, caplog.text, *(json.dumps(a) for a in answers)])
    assert PLANTED not in everything
    statuses = [a["statusCode"] for a in answers]
    assert statuses == [502, 502, 400, 502, 400, 200, 200, 500]
    for phrase in ("too many redirects", "redirect loop", "redirected to http://169.254.169.254", "boom while"):
        assert phrase in everything
    assert "[redacted]" in everything


# --- 14.3: no upstream bytes, no port scanning -----------------------------------------------------------


def test_a_service_banner_never_comes_back(raw_server: RawServer, colour_artifact: Path) -> None:
    port = raw_server(lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_9.6 internal-build-7.corp\r\n"))
    with pytest.raises(UpstreamError) as caught:
        fetch(f"http://127.0.0.1:{port}/", LOCAL)
    assert caught.value.message == f"image host 127.0.0.1:{port} did not answer with valid HTTP"


def test_an_upstream_reason_phrase_is_not_echoed(raw_server: RawServer) -> None:
    answer = b"HTTP/1.1 500 <b>internal-db-host=10.0.0.5</b>\r\nContent-Length: 0\r\n\r\n"
    port = raw_server(lambda conn: conn.sendall(answer))
    with pytest.raises(UpstreamError) as caught:
        fetch(f"http://127.0.0.1:{port}/cat.jpg", LOCAL)
    assert caught.value.message == f"image host 127.0.0.1:{port} answered HTTP 500"


@pytest.fixture
def filtered_port() -> Iterator[int]:
    """A port that drops new connections like a firewall: its accept queue is full."""
    with socket.socket() as listener, socket.socket() as queued:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        queued.connect(listener.getsockname())  # fills the queue: later SYNs are dropped
        yield int(listener.getsockname()[1])


def test_closed_and_filtered_ports_answer_alike(filtered_port: int, closed_port: int) -> None:
    policy = FetchPolicy(allow_private=True, connect_timeout=0.5, total_timeout=2.0)
    answers = []
    for port in (closed_port, filtered_port):
        with pytest.raises(UpstreamError) as caught:
            fetch(f"http://127.0.0.1:{port}/x.jpg", policy)
        answers.append((caught.value.status, caught.value.message.replace(str(port), "PORT")))
    assert answers[0] == answers[1] == (502, "could not connect to image host 127.0.0.1:PORT")


def _never_resolve(host: str) -> list[str]:
    raise AssertionError(f"{host} was looked up: the port should have been refused first")


class _Unresolvable(OSError):
    strerror = "no such host (test)"


def _fail_lookup(host: str) -> list[str]:
    raise _Unresolvable()


@pytest.mark.parametrize("url", ["http://images.example:22/", "https://images.example:8443/x.jpg", "http://a.b:6379"])
def test_only_ports_80_and_443_are_reached_by_default(url: str) -> None:
    with pytest.raises(BadRequest, match=r"port \d+ is not allowed \(only 80 and 443; LAMBDAVISION_FETCH_PORTS"):
        fetch(url, FetchPolicy(), resolver=_never_resolve)


@pytest.mark.parametrize("url", ["http://images.example/x.jpg", "https://images.example:443/x.jpg"])
def test_ports_80_and_443_pass_the_port_check(url: str) -> None:
    with pytest.raises(UpstreamError, match=r"could not resolve host images\.example"):
        fetch(url, FetchPolicy(), resolver=_fail_lookup)


def test_a_redirect_to_another_port_is_refused(image_server: ImageServer) -> None:
    policy = FetchPolicy(allow_private=True, total_timeout=2.0, ports=frozenset({port_of(image_server)}))
    url = image_server.url_for("/redirect?to=http://127.0.0.1:22/")
    with pytest.raises(BadRequest, match=re.escape("redirected to http://127.0.0.1:22/, but port 22 is not allowed")):
        fetch(url, policy)
    assert fetch(image_server.url_for("/png"), policy).content  # its own port is allowed


def test_the_handler_answers_a_banner_with_a_bare_502(raw_server: RawServer, colour_artifact: Path) -> None:
    port = raw_server(lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n"))
    app = App(load_classifier(colour_artifact), LOCAL, out=io.StringIO())
    answer = _call(app, {"url": f"http://127.0.0.1:{port}/"})
    assert answer["statusCode"] == 502
    assert "SSH" not in answer["body"]
