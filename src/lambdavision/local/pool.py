"""A function's execution environments: at most `concurrency` run at once, each warm between calls.

As on Lambda, each environment serves one invocation at a time; extra callers queue. The most
recently used environment is reused first (warm), an environment the last invocation broke
(timeout, crash, memory, init failure) is replaced by a fresh one on the next call.

Every process is started from one long-lived thread: `PR_SET_PDEATHSIG` fires when the *thread*
that forked the child ends, so starting children from short-lived request threads would kill them
as soon as that thread finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TextIO

from lambdavision.cfn import FunctionSpec
from lambdavision.core.errors import LambdaVisionError, PayloadTooLarge
from lambdavision.local.built import LambdaLayout
from lambdavision.local.cpu_quota import CpuLimiter
from lambdavision.local.environment import Environment, Invocation, new_request_id

WARM_START_TIMEOUT_S = 60.0
# Lambda's limit on a synchronous invocation's event (the JSON as sent).
MAX_EVENT_BYTES = 6_291_456


class RequestEntityTooLarge(PayloadTooLarge):
    """Lambda's RequestEntityTooLargeException: the event is refused before any invocation."""


class _Slot:
    """A place for one environment; `None` until first needed or after it broke."""

    def __init__(self) -> None:
        self.environment: Environment | None = None


def check_runnable(spec: FunctionSpec, python: str) -> None:
    """Refuse, in one clear line, a function that cannot run here."""
    if spec.unavailable_reason:
        raise LambdaVisionError(f"function {spec.logical_id} cannot run locally: {spec.unavailable_reason}")
    if not spec.runtime.startswith("python"):
        raise LambdaVisionError(
            f"function {spec.logical_id} has Runtime {spec.runtime}: lambdavision runs Python functions only"
        )
    if not spec.code_dir.is_dir():
        raise LambdaVisionError(f"function {spec.logical_id}: code folder {spec.code_dir} does not exist")
    if not spec.handler or "." not in spec.handler:
        raise LambdaVisionError(
            f"function {spec.logical_id}: Handler {spec.handler!r} is not of the form module.function"
        )
    if spec.memory_mb < 1 or spec.timeout_s < 1:
        raise LambdaVisionError(f"function {spec.logical_id}: MemorySize and Timeout must be positive")


class FunctionPool:
    """Up to `concurrency` warm `awslambdaric` processes for one function."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        concurrency: int = 2,
        log_stream: TextIO = sys.stderr,
        python: str = sys.executable,
        extra_env: Mapping[str, str] | None = None,
        shell_env: Mapping[str, str] | None = None,
        layout: LambdaLayout | None = None,
        description: Sequence[str] = (),
        cpu_limiter: CpuLimiter | None = None,
    ) -> None:
        """`cpu_limiter` holds each environment to Lambda's CPU share of its memory size (the
        caller owns and closes it); without one, environments run on whole cores."""
        if concurrency < 1:
            raise LambdaVisionError(f"concurrency must be at least 1, got {concurrency}")
        # With a layout, the built package runs (extracted at task_root) on the runtime's CPython.
        self.spec = dataclasses.replace(spec, code_dir=layout.task_root) if layout is not None else spec
        self.layout = layout
        self._description = list(description)  # what runs, said once, before the first environment starts
        self.concurrency = concurrency
        self._log_stream = log_stream
        self._python = str(layout.python) if layout is not None else python
        self._extra_env = dict(extra_env or {})
        self._shell_env = dict(os.environ if shell_env is None else shell_env)
        self._cpu_limiter = cpu_limiter
        self._slots: queue.LifoQueue[_Slot] = queue.LifoQueue()
        for _ in range(concurrency):
            self._slots.put(_Slot())
        self._lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._environments: set[Environment] = set()
        self._spawner: ThreadPoolExecutor | None = None
        self._started = False
        self._closed = False

    # -- lifecycle --

    def start(self, *, warm: bool = False) -> None:
        """Check the function can run; with `warm`, start every environment now (init before use)."""
        with self._lock:
            if self._closed:
                raise LambdaVisionError("the function pool is closed")
            if not self._started:
                check_runnable(self.spec, self._python)
                self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambdavision-spawner")
                self._started = True
        if not warm:
            return
        slots = [self._slots.get() for _ in range(self.concurrency)]
        try:
            fresh = []
            for slot in slots:
                if slot.environment is None or not slot.environment.alive:
                    slot.environment = self._new_environment(None)
                    fresh.append(slot)
            for slot in fresh:  # all are initialising in parallel; now wait for each
                assert slot.environment is not None
                if not slot.environment.wait_initialised(WARM_START_TIMEOUT_S):
                    self._forget(slot)
        finally:
            for slot in reversed(slots):
                self._slots.put(slot)

    def close(self) -> None:
        """Stop every environment process; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            environments = list(self._environments)
            self._environments.clear()
        for environment in environments:
            environment.kill()
        if self._spawner is not None:
            self._spawner.shutdown(wait=True)

    def __enter__(self) -> FunctionPool:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        """Process ids of the environments now running (for tests and diagnostics)."""
        with self._lock:
            return [e.pid for e in self._environments if e.pid is not None and e.alive]

    # -- invoking --

    def invoke(self, event: Any) -> Invocation:
        """Run one event (a JSON-able value, or JSON bytes as-is); blocks; thread-safe."""
        body = event if isinstance(event, bytes | bytearray) else json.dumps(event).encode()
        if len(body) > MAX_EVENT_BYTES:
            raise RequestEntityTooLarge(
                f"RequestEntityTooLargeException: the event is {len(body)} bytes; Lambda's request must be "
                f"smaller than {MAX_EVENT_BYTES} bytes for the InvokeFunction operation"
            )
        if not self._started:
            self.start()
        request_id = new_request_id()
        slot = self._slots.get()
        try:
            if self._closed:
                raise LambdaVisionError("the function pool is closed")
            environment = slot.environment
            if environment is None or not environment.alive:
                self._forget(slot)
                environment = slot.environment = self._new_environment(request_id)
            invocation = environment.invoke(request_id, bytes(body))
            if not environment.alive:
                self._forget(slot)
            return invocation
        finally:
            self._slots.put(slot)

    # -- internals --

    def _new_environment(self, request_id: str | None) -> Environment:
        with self._lock:
            description, self._description = self._description, []
        for line in description:
            self._write_line(line)
        environment = Environment(
            self.spec,
            python=self._python,
            shell_env=self._shell_env,
            extra_env=self._extra_env,
            write_line=self._write_line,
            spawn=self._spawn,
            layout=self.layout,
            cpu_limiter=self._cpu_limiter,
        )
        try:
            environment.start(request_id)
        except (OSError, ValueError) as exc:  # ValueError: an environment Popen cannot pass on
            raise LambdaVisionError(f"cannot start {self._python} -m awslambdaric: {exc}") from exc
        with self._lock:
            if self._closed:
                environment.kill()
                raise LambdaVisionError("the function pool is closed")
            self._environments.add(environment)
        return environment

    def _forget(self, slot: _Slot) -> None:
        if slot.environment is not None:
            slot.environment.kill()
            with self._lock:
                self._environments.discard(slot.environment)
            slot.environment = None

    def _spawn(self, popen: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        if self._spawner is None:
            raise LambdaVisionError("the function pool is not started")
        try:
            return self._spawner.submit(popen).result()
        except RuntimeError as exc:  # the executor was shut down by close()
            raise LambdaVisionError("the function pool is closed") from exc

    def _write_line(self, line: str) -> None:
        with self._log_lock, contextlib.suppress(OSError, ValueError):
            self._log_stream.write(line + "\n")
            self._log_stream.flush()


__all__ = ["MAX_EVENT_BYTES", "FunctionPool", "Invocation", "RequestEntityTooLarge", "check_runnable"]
