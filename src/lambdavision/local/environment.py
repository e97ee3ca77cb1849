"""One execution environment: an awslambdaric process running the function, and its Runtime API.

The process runs the built package on the runtime's CPython, isolated (a `LambdaLayout`:
local/built.py), or with --use-venv lambdavision's own interpreter with the code folder on
PYTHONPATH; in the function's folder, with the variables Lambda sets, the function's own, and the
calling shell's AWS credentials / region / endpoint so it reads the same S3 as the shell.

Init runs once, when the process starts; each `invoke` hands one event to the Runtime API and
watches the process until the runtime posts an answer, the deadline passes (kill), the process
dies, or its memory goes over the function's MemorySize (kill). A killed or dead environment is
never reused: the pool replaces it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from lambdavision.cfn import FunctionSpec
from lambdavision.local import report
from lambdavision.local.built import LambdaLayout
from lambdavision.local.cgroups import CpuGroup
from lambdavision.local.cpu_quota import CpuLimiter
from lambdavision.local.cpu_share import CpuShare
from lambdavision.local.lambda_env import default_region, function_arn, lambda_environment, trace_id
from lambdavision.local.log_forwarder import LogForwarder
from lambdavision.local.preexec import chain, die_with_parent
from lambdavision.local.runtime_api import Outcome, PendingEvent, RuntimeApiCore, RuntimeApiServer

POLL_INTERVAL_S = 0.02  # how often a running invocation's process is checked (exit, memory)
# Lambda gives INIT up to 10 s and then retries it within the invoke's own timeout.
INIT_GRACE_S = 10.0


@dataclass
class Invocation:
    request_id: str
    payload: bytes  # the function's answer (JSON bytes) or Lambda's error JSON
    error_type: str | None  # None on success; "Unhandled", "Sandbox.Timedout", "Runtime.ExitError"...
    duration_ms: float
    billed_ms: int
    init_duration_ms: float | None
    max_memory_mb: int
    report_line: str

    @property
    def ok(self) -> bool:
        return self.error_type is None


class Environment:
    """One runtime process and the Runtime API server it talks to."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        python: str,
        shell_env: Mapping[str, str],
        extra_env: Mapping[str, str] | None,
        write_line: Callable[[str], None],
        spawn: Callable[[Callable[[], subprocess.Popen[bytes]]], subprocess.Popen[bytes]],
        layout: LambdaLayout | None = None,
        cpu_limiter: CpuLimiter | None = None,
    ) -> None:
        self.spec = spec
        self._python = python
        self._layout = layout
        self._shell_env = shell_env
        self._extra_env = extra_env
        self._write_line = write_line
        self._spawn = spawn
        self._region = default_region(shell_env)
        self._core = RuntimeApiCore()
        self._server = RuntimeApiServer(self._core)
        self._process: subprocess.Popen[bytes] | None = None
        self._psutil: psutil.Process | None = None
        self._logs: LogForwarder | None = None
        self._log_prefix = "INIT"
        self._started_at = 0.0
        self._invocations = 0
        self._peak_rss = 0
        self._dead = False
        self._exit_status: os.waitid_result | None = None
        self._kill_lock = threading.Lock()
        self._cpu_limiter = cpu_limiter
        self._cpu_group: CpuGroup | None = None
        self.cpu_share = cpu_limiter.share(spec.memory_mb) if cpu_limiter else CpuShare(None)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def alive(self) -> bool:
        process = self._process
        if self._dead or process is None or self._exited():
            return False
        # A process killed between requests and reaped by another thread's wait() must not look
        # alive either: ask the kernel as well.
        try:
            return psutil.Process(process.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def start(self, request_id: str | None = None) -> None:
        """Start the process; init runs now (its output is prefixed with `request_id` or INIT)."""
        self._log_prefix = request_id or "INIT"
        self._server.start()
        environment = lambda_environment(
            self.spec,
            runtime_api=self._server.address,
            shell_env=self._shell_env,
            extra_env=self._extra_env,
            layout=self._layout,
        )
        if self._layout is not None:
            command = self._layout.command(self.spec.handler)
        else:
            command = [self._python, "-m", "awslambdaric", self.spec.handler]
        parent_pid = os.getpid()
        # Lambda's CPU share: the child joins its cgroup before exec, so init runs under the quota too.
        self._cpu_group = self._cpu_limiter.group(self.spec.memory_mb) if self._cpu_limiter else None
        preexec = die_with_parent(parent_pid)
        if self._cpu_group is not None:
            preexec = chain(preexec, self._cpu_group.join_self)

        def popen() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                command,
                cwd=self.spec.code_dir,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the terminal reaches lambdavision, which closes us.
                start_new_session=True,
                preexec_fn=preexec,
            )

        self._started_at = time.monotonic()
        try:
            self._process = self._spawn(popen)
        except BaseException:
            self._dead = True
            self._server.close()
            self._remove_cpu_group()
            raise
        self._hold_to_cpu_share(self._process.pid)
        assert self._process.stdout is not None
        with contextlib.suppress(psutil.Error):
            self._psutil = psutil.Process(self._process.pid)
        self._logs = LogForwarder(self._process.stdout, self._write_line, lambda: self._log_prefix)
        self._logs.start()

    def wait_initialised(self, timeout: float) -> bool:
        """For a warm start: block until init finished (True) or failed / timed out (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._core.first_next_at is not None:
                return True
            if self._core.init_error is not None or not self.alive:
                break
            self._core.wait_initialised(POLL_INTERVAL_S * 5)
        if self._logs is not None:
            self._logs.drain()
        self.kill()
        return False

    def invoke(self, request_id: str, event_body: bytes) -> Invocation:
        """Run one event to its end; the environment is killed if the invocation broke it."""
        if self._process is None:
            raise RuntimeError("environment not started")
        self._log_prefix = request_id
        self._write_line(f"START RequestId: {request_id} Version: $LATEST")
        cold = self._invocations == 0
        self._invocations += 1
        # Until the runtime picks the event up: INIT's allowance on a cold start; a warm runtime is
        # already waiting on /next, but a loaded machine may still take a moment to schedule it.
        init_deadline = (self._started_at if cold else time.monotonic()) + INIT_GRACE_S + self.spec.timeout_s
        self._core.submit(
            PendingEvent(
                request_id=request_id,
                body=event_body,
                timeout_ms=self.spec.timeout_s * 1000,
                function_arn=function_arn(self.spec, self._region),
                trace_id=trace_id(),
            )
        )
        outcome, platform_error, finished_at = self._watch(request_id, init_deadline)
        memory_mb = self._max_memory_mb()
        payload, error_type, status, broken = self._result(request_id, outcome, platform_error, memory_mb)
        if broken:  # the one place an invocation kills its environment (with its process group)
            self.kill()
            memory_mb = self._max_memory_mb()
        if self._logs is not None:
            self._logs.drain()
        picked_up = self._core.picked_up_at(request_id)
        init_ms = None
        if cold:
            init_end = self._core.first_next_at or finished_at
            init_ms = (init_end - self._started_at) * 1000
        duration_ms = (finished_at - picked_up) * 1000 if picked_up is not None else 0.0
        billed = report.billed_ms(duration_ms, init_ms)
        line = report.report_line(
            request_id,
            duration_ms=duration_ms,
            billed_duration_ms=billed,
            memory_size_mb=self.spec.memory_mb,
            max_memory_used_mb=memory_mb,
            init_duration_ms=init_ms,
            status=status,
            error_type=error_type if status is not None else None,
            cpu_share=self.cpu_share.describe() if self._cpu_limiter else None,
        )
        self._write_line(f"END RequestId: {request_id}")
        self._write_line(line)
        self._core.forget(request_id)
        return Invocation(request_id, payload, error_type, duration_ms, billed, init_ms, memory_mb, line)

    def _watch(self, request_id: str, init_deadline: float) -> tuple[Outcome | None, str | None, float]:
        """Wait for the answer; (outcome, platform error kind or None, when it ended)."""
        while True:
            self._core.wait(request_id, POLL_INTERVAL_S)
            outcome = self._core.outcome(request_id)
            if outcome is not None:
                return outcome, None, outcome.at
            now = time.monotonic()
            if self._exited():  # not reaped: kill() can still stop the process group
                outcome = self._core.outcome(request_id)  # posted just before exiting?
                return outcome, (None if outcome else "exit"), (outcome.at if outcome else now)
            if self._rss() > self.spec.memory_mb * 1024 * 1024:
                return None, "memory", now
            picked_up = self._core.picked_up_at(request_id)
            if picked_up is None and now > init_deadline:
                return None, "timeout", now
            if picked_up is not None and now > picked_up + self.spec.timeout_s:
                return None, "timeout", now

    def _result(
        self, request_id: str, outcome: Outcome | None, platform_error: str | None, memory_mb: int
    ) -> tuple[bytes, str | None, str | None, bool]:
        """(payload, error_type, REPORT status or None, whether the environment is now broken)."""
        if platform_error == "timeout":
            return report.timeout_error(request_id, self.spec.timeout_s), report.ERROR_TIMEOUT, "timeout", True
        if platform_error == "memory" or (outcome is not None and memory_mb > self.spec.memory_mb):
            # Over MemorySize, even briefly: Lambda's cgroup would have killed it.
            error = report.out_of_memory_error(request_id, self.spec.memory_mb)
            return error, report.ERROR_OUT_OF_MEMORY, "error", True
        if outcome is None:
            return report.exit_error(request_id, self._exit_code()), report.ERROR_EXIT, "error", True
        if outcome.kind == "init_error":
            # Runtime.ImportModuleError & co. name the platform's fault; any other type is an
            # exception the function's own init code raised: Lambda calls that Unhandled.
            reported = outcome.error_type or _error_type_of(outcome.body) or ""
            error_type = reported if reported.startswith("Runtime.") else report.ERROR_UNHANDLED
            return outcome.body, error_type, "error", True
        if outcome.size > report.MAX_RESPONSE_BYTES:
            return report.response_too_large_error(outcome.size), report.ERROR_RESPONSE_TOO_LARGE, "error", False
        if outcome.kind == "error":
            return outcome.body, report.ERROR_UNHANDLED, None, False
        return outcome.body, None, None, False

    def _exited(self) -> bool:
        """Whether the process has ended, WITHOUT reaping it.

        Reaping (poll/wait) would free its pid, and with it the process group kill() needs to
        stop what the function started in the background; those survive their parent.
        """
        if self._process is None or self._process.returncode is not None:
            return True
        try:
            status = os.waitid(os.P_PID, self._process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # already reaped by another thread's wait()
            return True
        if status is None:
            return False
        self._exit_status = status
        return True

    def _exit_code(self) -> int:
        """The ended process's exit code (negative: the signal that ended it), as Popen reports it."""
        if self._process is not None and self._process.returncode is not None:
            return self._process.returncode
        status = self._exit_status
        if status is None:
            return 0
        return status.si_status if status.si_code == os.CLD_EXITED else -status.si_status

    def _rss(self) -> int:
        if self._psutil is None:
            return 0
        try:
            rss = int(self._psutil.memory_info().rss)
        except psutil.Error:
            return 0
        self._peak_rss = max(self._peak_rss, rss)
        return rss

    def _max_memory_mb(self) -> int:
        """Peak resident memory of the process, in MB (MiB, as Lambda counts)."""
        peak = self._peak_rss
        if self._process is not None:
            with contextlib.suppress(OSError, ValueError):
                # VmHWM: the kernel's own high-water mark, so short spikes between polls count too.
                for line in Path(f"/proc/{self._process.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
                        break
        self._peak_rss = peak
        return -(-peak // (1024 * 1024))

    def kill(self) -> None:
        """Stop the process and the server; idempotent and safe from several threads."""
        with self._kill_lock:
            self._kill()

    def _kill(self) -> None:
        self._dead = True
        if self._process is not None and self._process.returncode is None:
            self._max_memory_mb()  # last look at the peak while /proc still has it
            # Never reaped before this point (see _exited), so its pid (= its session's process
            # group) cannot have been reused: killing the group also stops what it started.
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except OSError:
                with contextlib.suppress(OSError):
                    self._process.kill()
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
        if self._logs is not None:
            self._logs.join(timeout=1)
        self._server.close()
        self._remove_cpu_group()

    def _hold_to_cpu_share(self, pid: int) -> None:
        """Make sure the process is in its group (the child's own move can fail); else say so, once."""
        group, limiter = self._cpu_group, self._cpu_limiter
        if group is None or limiter is None:
            if limiter is not None:  # turned off, or cgroups refused: the limiter says which
                self.cpu_share = limiter.share(self.spec.memory_mb)
            return
        try:
            group.adopt(pid)
            self.cpu_share = group.share
        except OSError as exc:
            limiter.failed(f"cannot move a process into {group.path} ({exc.strerror or exc})")
            self.cpu_share = CpuShare(None, "cgroups not writable")

    def _remove_cpu_group(self) -> None:
        if self._cpu_group is not None:
            self._cpu_group.remove()
            self._cpu_group = None


def _error_type_of(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    value = document.get("errorType") if isinstance(document, dict) else None
    return str(value) if value else None


def new_request_id() -> str:
    return str(uuid.uuid4())
