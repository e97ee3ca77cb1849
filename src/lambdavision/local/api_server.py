"""The template's API on a local HTTP server: `LocalApi` wires the pieces (one `FunctionPool` per routed
function, a `LocalGateway`, the HTTP shell) and is usable in-process (demo, benchmarks, tests); `serve`
runs it until told to stop (what `lambdavision local start-api` does)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from lambdavision.cfn import AppTemplate
from lambdavision.core.errors import LambdaVisionError
from lambdavision.local.built import LambdaLayout
from lambdavision.local.cpu_quota import CpuLimiter
from lambdavision.local.env_file import apply_env_file, load_env_file, unmatched_sections
from lambdavision.local.gateway import DEFAULT_INTEGRATION_TIMEOUT_S, LocalGateway
from lambdavision.local.http_server import DEFAULT_CLIENT_TIMEOUT_S, GatewayHTTPServer
from lambdavision.local.pool import FunctionPool, Invocation


class LocalApi:
    """The template's API served on host:port, with up to `concurrency` environments per function."""

    def __init__(
        self,
        app: AppTemplate,
        *,
        env_file: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 3000,
        concurrency: int = 2,
        warm: bool = False,
        log_stream: TextIO | None = None,
        client_timeout_s: float = DEFAULT_CLIENT_TIMEOUT_S,
        python: str = sys.executable,
        integration_timeout_s: float = DEFAULT_INTEGRATION_TIMEOUT_S,
        layouts: Mapping[str, LambdaLayout] | None = None,
        descriptions: Mapping[str, Sequence[str]] | None = None,
        cpu_share: bool = False,
    ) -> None:
        if not app.routes:
            raise LambdaVisionError(
                f"{app.path} has no API routes: start-api needs a function with an API event "
                "(or an AWS::ApiGateway::Method)"
            )
        self.app = app
        self._host, self._port = host, port
        self._warm = warm
        self._log_stream = log_stream if log_stream is not None else sys.stderr
        self._client_timeout_s = client_timeout_s
        env = load_env_file(Path(env_file)) if env_file is not None else None
        for warning in unmatched_sections(env or {}, app.functions, str(env_file)):
            self._log(f"Warning: {warning}")
        specs = app.functions
        # One limiter for every pool: one warning at most where cgroups are not writable.
        self.cpu_limiter = CpuLimiter(enabled=cpu_share, warn=self._log) if cpu_share else None
        self.pools: dict[str, FunctionPool] = {}
        for function_id in dict.fromkeys(route.function_id for route in app.routes):
            if function_id not in specs:
                raise LambdaVisionError(f"an API route points at {function_id}, which is not a function")
            if specs[function_id].unavailable_reason:
                raise LambdaVisionError(f"cannot run {function_id} locally: {specs[function_id].unavailable_reason}")
            spec = apply_env_file(specs[function_id], env) if env is not None else specs[function_id]
            self.pools[function_id] = FunctionPool(
                spec,
                concurrency=concurrency,
                log_stream=self._log_stream,
                python=python,
                layout=(layouts or {}).get(function_id),
                description=(descriptions or {}).get(function_id, ()),
                cpu_limiter=self.cpu_limiter,
            )
        self.gateway = LocalGateway(
            app.routes,
            self._invoke,
            app.binary_media_types,
            stage=app.stage_name,
            log=self._log,
            integration_timeout_s=integration_timeout_s,
        )
        self._server: GatewayHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _invoke(self, function_id: str, event: dict[str, Any]) -> Invocation:
        return self.pools[function_id].invoke(event)

    def _log(self, message: str) -> None:
        self._log_stream.write(message + "\n")
        self._log_stream.flush()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the API is not started")
        return self._server.url

    def start(self) -> LocalApi:
        """Bind the port, start the environments (now when warm), then serve in a daemon thread."""
        try:
            self._server = GatewayHTTPServer(
                (self._host, self._port),
                self.gateway,
                log_stream=self._log_stream,
                client_timeout_s=self._client_timeout_s,
            )
        except OSError as exc:
            raise LambdaVisionError(f"cannot listen on {self._host}:{self._port}: {exc.strerror or exc}") from exc
        # Pools start side by side: with --warm each one waits for its environments' init.
        executor = ThreadPoolExecutor(max_workers=len(self.pools), thread_name_prefix="lambdavision-warm")
        try:
            for future in [executor.submit(pool.start, warm=self._warm) for pool in self.pools.values()]:
                future.result()
        except BaseException:
            # Ctrl-C / SIGTERM (or a failure) while warming: do not wait for the other inits;
            # closing the pools kills their environments, which ends those waits too.
            executor.shutdown(wait=False, cancel_futures=True)
            self.close()
            raise
        executor.shutdown(wait=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="start-api", daemon=True
        )
        self._thread.start()
        return self

    def mount_lines(self) -> list[str]:
        """SAM's `Mounting F at URL [METHODS]` lines, one per function and path."""
        methods: dict[tuple[str, str], list[str]] = {}
        for route in self.app.routes:
            methods.setdefault((route.function_id, route.path), []).append(route.method.upper())
        lines = [
            f"Mounting {function_id} at {self.url}{path} [{', '.join(sorted(set(verbs)))}]"
            for (function_id, path), verbs in methods.items()
        ]
        for function_id, pool in self.pools.items():
            share = self.cpu_limiter.share(pool.spec.memory_mb).describe() if self.cpu_limiter else "unlimited"
            lines.append(f"{function_id}: MemorySize {pool.spec.memory_mb} MB, CPU share {share} per environment")
        return lines

    def close(self) -> None:
        """Stop accepting requests, then stop every environment process."""
        server, self._server = self._server, None
        if server is not None:
            if self._thread is not None:
                server.shutdown()
            server.server_close()
        for pool in self.pools.values():
            pool.close()
        if self.cpu_limiter is not None:
            self.cpu_limiter.close()

    def __enter__(self) -> LocalApi:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def serve(
    app: AppTemplate,
    env_file: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 3000,
    concurrency: int = 2,
    warm: bool = False,
    ready: Callable[[str], None] | None = None,
    *,
    stop: threading.Event | None = None,
    log_stream: TextIO | None = None,
    client_timeout_s: float = DEFAULT_CLIENT_TIMEOUT_S,
    integration_timeout_s: float = DEFAULT_INTEGRATION_TIMEOUT_S,
    layouts: Mapping[str, LambdaLayout] | None = None,
    descriptions: Mapping[str, Sequence[str]] | None = None,
    cpu_share: bool = False,
) -> None:
    """Serve until `stop` is set or Ctrl-C; every environment process is stopped on the way out.

    `ready(url)` is called once requests are answered (after the `Running on` line).
    """
    stream = log_stream if log_stream is not None else sys.stderr
    stop = stop or threading.Event()
    api = LocalApi(
        app,
        env_file=env_file,
        host=host,
        port=port,
        concurrency=concurrency,
        warm=warm,
        log_stream=stream,
        client_timeout_s=client_timeout_s,
        integration_timeout_s=integration_timeout_s,
        layouts=layouts,
        descriptions=descriptions,
        cpu_share=cpu_share,
    )
    try:
        with api:  # a Ctrl-C during a --warm start interrupts the start itself
            for line in api.mount_lines():
                stream.write(line + "\n")
            timeout = api.gateway.integration_timeout_s
            stream.write(f"Integration timeout {timeout:g} s: a request still running then gets API Gateway's 504\n")
            stream.write(f"Running on {api.url}/ (Press CTRL+C to quit)\n")
            stream.flush()
            if ready is not None:
                ready(api.url)
            # Short waits keep the main thread responsive to signal handlers.
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    stream.write("Stopped: every environment is shut down.\n")
    stream.flush()


__all__ = ["LocalApi", "serve"]
