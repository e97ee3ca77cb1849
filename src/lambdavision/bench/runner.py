"""Measure one function in real `awslambdaric` environments (`lambdavision.local.pool`): a cold start
(a new environment and its first request) or warm requests to an initialised one."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdavision.bench.stats import BenchError
from lambdavision.bench.timing import parse_load_line, parse_server_timing
from lambdavision.cfn import FunctionSpec
from lambdavision.core.proxy_response import parse_proxy_response
from lambdavision.local.cpu_quota import CpuLimiter
from lambdavision.local.environment import Invocation
from lambdavision.local.pool import FunctionPool

HANDLER = "lambdavision.handler.lambda_handler"
# Lambda's maximum. The local runtime kills an environment as timed out when an event is not picked
# up within its *init* allowance (Timeout + 10 s after the process started), even long after init:
# a long warm phase on a busy machine then fails spuriously. The largest timeout keeps it out of
# the way.
DEFAULT_TIMEOUT_S = 900


@dataclass(frozen=True)
class BenchFunction:
    """A function to measure: its spec, its extra variables, and whether its model comes from S3
    (each cold start then gets an empty download cache, as a new Lambda environment has)."""

    name: str
    spec: FunctionSpec
    extra_env: Mapping[str, str] = field(default_factory=dict)
    fresh_cache: bool = False


@dataclass(frozen=True)
class ColdRun:
    total_ms: float  # process start -> first answer (Init Duration + first Duration)
    init_ms: float
    first_request_ms: float
    load_ms: float | None  # from the function's log line
    load_parts: dict[str, float]
    max_memory_mb: int
    timing: dict[str, float]

    @property
    def runtime_and_imports_ms(self) -> float | None:
        return None if self.load_ms is None else max(0.0, self.init_ms - self.load_ms)


@dataclass(frozen=True)
class WarmRun:
    duration_ms: float
    timing: dict[str, float]
    max_memory_mb: int


def _check_answer(fn: BenchFunction, invocation: Invocation, logs: str) -> dict[str, float]:
    """The Server-Timing of a good answer; anything else is a BenchError saying what went wrong."""
    tail = " | ".join(line.strip() for line in logs.strip().splitlines()[-4:])
    if not invocation.ok:
        try:
            message = str(json.loads(invocation.payload).get("errorMessage", ""))
        except (ValueError, AttributeError):
            message = invocation.payload[:200].decode("utf-8", "replace")
        raise BenchError(f"{fn.name}: the function failed ({invocation.error_type}: {message}); log: {tail}")
    try:
        answer = parse_proxy_response(json.loads(invocation.payload))
    except ValueError as exc:
        raise BenchError(f"{fn.name}: not an API Gateway proxy answer ({exc})") from None
    if answer.status != 200:
        body = answer.body[:300].decode("utf-8", "replace")
        raise BenchError(f"{fn.name}: the function answered HTTP {answer.status}: {body}")
    header = next((v for k, v in answer.headers if k.lower() == "server-timing"), "")
    return parse_server_timing(header)


class Runner:
    """Starts environments of BenchFunctions and measures them."""

    def __init__(
        self,
        *,
        shell_env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        cpu_limiter: CpuLimiter | None = None,
    ) -> None:
        base = dict(os.environ if shell_env is None else shell_env)
        # A stray LAMBDAVISION_THREADS etc. in the caller's shell must not leak into the measurement.
        self.shell_env = {k: v for k, v in base.items() if not k.startswith("LAMBDAVISION_")}
        self.python = python
        self.cpu_limiter = cpu_limiter  # Lambda's CPU share for each environment (None: whole cores)

    def _pool(self, fn: BenchFunction, log: io.StringIO, cache_dir: str | None) -> FunctionPool:
        extra = dict(fn.extra_env)
        if cache_dir is not None:
            extra["LAMBDAVISION_CACHE_DIR"] = cache_dir
        return FunctionPool(
            fn.spec,
            concurrency=1,
            log_stream=log,
            python=self.python,
            extra_env=extra,
            shell_env=self.shell_env,
            cpu_limiter=self.cpu_limiter,
        )

    @contextlib.contextmanager
    def _cache(self, fn: BenchFunction) -> Iterator[str | None]:
        if not fn.fresh_cache:
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="lambdavision-bench-cache-") as tmp:
            yield tmp

    def cold_start(self, fn: BenchFunction, event: Mapping[str, Any]) -> ColdRun:
        """A new environment and its first request."""
        log = io.StringIO()
        with self._cache(fn) as cache_dir:
            pool = self._pool(fn, log, cache_dir)
            try:
                pool.start()
                invocation = pool.invoke(dict(event))
            finally:
                pool.close()
        text = log.getvalue()
        timing = _check_answer(fn, invocation, text)
        init_ms = invocation.init_duration_ms or 0.0
        load_ms, parts = parse_load_line(text)
        return ColdRun(
            total_ms=init_ms + invocation.duration_ms,
            init_ms=init_ms,
            first_request_ms=invocation.duration_ms,
            load_ms=load_ms,
            load_parts=parts,
            max_memory_mb=invocation.max_memory_mb,
            timing=timing,
        )

    @contextlib.contextmanager
    def warm(self, fn: BenchFunction, event: Mapping[str, Any], warmups: int = 1) -> Iterator[WarmFunction]:
        """An initialised environment that has already answered `event` `warmups` times."""
        log = io.StringIO()
        with self._cache(fn) as cache_dir:
            pool = self._pool(fn, log, cache_dir)
            try:
                pool.start(warm=True)
                warm = WarmFunction(fn, pool, log)
                for _ in range(max(1, warmups)):
                    # The first requests after init pay one-off costs (allocations, TorchScript's
                    # profiling runs): not warm samples.
                    warm.request(event)
                yield warm
            finally:
                pool.close()


class WarmFunction:
    def __init__(self, fn: BenchFunction, pool: FunctionPool, log: io.StringIO) -> None:
        self.fn = fn
        self._pool = pool
        self._log = log
        self.peak_memory_mb = 0

    def request(self, event: Mapping[str, Any]) -> WarmRun:
        invocation = self._pool.invoke(dict(event))
        timing = _check_answer(self.fn, invocation, self._log.getvalue())
        self._log.seek(0)
        self._log.truncate()
        self.peak_memory_mb = max(self.peak_memory_mb, invocation.max_memory_mb)
        return WarmRun(invocation.duration_ms, timing, invocation.max_memory_mb)


__all__ = ["DEFAULT_TIMEOUT_S", "HANDLER", "BenchFunction", "ColdRun", "Runner", "WarmFunction", "WarmRun"]
