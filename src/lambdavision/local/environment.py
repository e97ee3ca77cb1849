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

import array
import contextlib
import ctypes
import fcntl
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import psutil

from lambdavision.cfn import LOCAL_ACCOUNT_ID, FunctionSpec
from lambdavision.local import report
from lambdavision.local.built import LambdaLayout
from lambdavision.local.cpu_quota import CpuGroup, CpuLimiter, CpuShare
from lambdavision.local.runtime_api import Outcome, PendingEvent, RuntimeApiCore, RuntimeApiServer

# What passes from the calling shell into the function: where its AWS calls go and as whom.
PASS_THROUGH_NAMES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CA_BUNDLE",
        "AWS_MAX_ATTEMPTS",
        "AWS_RETRY_MODE",
        "AWS_STS_REGIONAL_ENDPOINTS",
        "AWS_USE_FIPS_ENDPOINT",
        "AWS_USE_DUALSTACK_ENDPOINT",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "HOME",  # ~/.aws/config and ~/.aws/credentials are found through it
        "PATH",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    }
)
PASS_THROUGH_PREFIXES = ("AWS_ENDPOINT_URL", "LAMBDAVISION_")

POLL_INTERVAL_S = 0.02  # how often a running invocation's process is checked (exit, memory)
# Lambda gives INIT up to 10 s and then retries it within the invoke's own timeout.
INIT_GRACE_S = 10.0
_PR_SET_PDEATHSIG = 1
# CloudWatch Logs' largest event: a longer line is cut into several.
MAX_LOG_LINE_BYTES = 256 * 1024
_READ_CHUNK = 65536


def default_region(shell_env: Mapping[str, str]) -> str:
    return shell_env.get("AWS_REGION") or shell_env.get("AWS_DEFAULT_REGION") or "us-east-1"


def function_arn(spec: FunctionSpec, region: str) -> str:
    return f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{spec.logical_id}"


def log_stream_name(now: datetime | None = None) -> str:
    """Lambda's shape: `2024/01/31/[$LATEST]<32 hex>`."""
    day = (now or datetime.now(UTC)).strftime("%Y/%m/%d")
    return f"{day}/[$LATEST]{secrets.token_hex(16)}"


def trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def lambda_environment(
    spec: FunctionSpec,
    *,
    runtime_api: str,
    shell_env: Mapping[str, str],
    extra_env: Mapping[str, str] | None = None,
    layout: LambdaLayout | None = None,
) -> dict[str, str]:
    """The environment of the runtime process, lowest precedence first.

    shell pass-through < what Lambda sets < the function's variables (template + env.json)
    < extra_env; the Runtime API address, the handler and (with a layout) PYTHONPATH are always ours.
    """
    region = default_region(shell_env)
    code_dir = str(spec.code_dir)
    environment = {
        name: value
        for name, value in shell_env.items()
        if name in PASS_THROUGH_NAMES or name.startswith(PASS_THROUGH_PREFIXES)
    }
    environment.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.logical_id}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name(),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "LAMBDA_TASK_ROOT": code_dir,
            "LAMBDA_RUNTIME_DIR": str(Path(sys.executable).parent),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
        }
    )
    environment.update(spec.environment)
    environment.update(extra_env or {})
    if layout is not None:
        # Read by local/bootstrap.py (-I makes Python itself ignore it): the package, its layers, the runtime.
        environment["LAMBDA_RUNTIME_DIR"] = str(layout.runtime_dir)
        environment["PYTHONPATH"] = os.pathsep.join(layout.python_path)
    else:
        environment["PYTHONPATH"] = os.pathsep.join(
            [code_dir, *[p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p and p != code_dir]]
        )
    environment["AWS_LAMBDA_RUNTIME_API"] = runtime_api
    environment["_HANDLER"] = spec.handler
    return environment


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """preexec_fn: the kernel SIGKILLs the child when its parent goes, even by SIGKILL (Linux).

    prctl is looked up here, in the parent: the child of a threaded process should do as
    little as possible between fork and exec (no dlopen).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _chain(*steps: Callable[[], None] | None) -> Callable[[], None]:
    """One preexec_fn running each step in order."""

    def run() -> None:
        for step in steps:
            if step is not None:
                step()

    return run


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


class _LogForwarder:
    """Copies the process's output to the log sink, one prefixed line at a time.

    Reads only under a lock, one chunk per lock hold, so `drain()` (called when an answer
    arrives) can guarantee every byte the function wrote before answering is out before the
    REPORT line, and still returns while a background thread of the function keeps printing.
    """

    def __init__(self, stream: IO[bytes], write_line: Callable[[str], None], prefix: Callable[[], str]) -> None:
        self._stream = stream  # owns the descriptor: closed once, through it
        self._fd = stream.fileno()
        self._write_line = write_line
        self._prefix = prefix
        self._lock = threading.Lock()
        self._partial = bytearray()
        self._eof = False
        os.set_blocking(self._fd, False)
        self._thread = threading.Thread(target=self._run, name="lambdavision-logs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def drain(self) -> None:
        """Forward what is in the pipe now (not what arrives meanwhile), then any partial line."""
        with self._lock:
            remaining = self._pending_bytes()
            while remaining > 0 and not self._eof:
                read = self._read_chunk(min(remaining, _READ_CHUNK))
                if read == 0:
                    break
                remaining -= read
            self._flush_partial()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        poller = select.poll()  # not select.select: descriptors above 1023 are fine
        poller.register(self._fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while not self._eof:
            if poller.poll(500):
                with self._lock:  # one chunk per hold: drain() never waits behind a flood
                    self._read_chunk(_READ_CHUNK)
        with self._lock:
            self._flush_partial()
            with contextlib.suppress(OSError):
                self._stream.close()

    def _pending_bytes(self) -> int:
        if self._eof:
            return 0
        try:
            count = array.array("i", [0])
            fcntl.ioctl(self._fd, termios.FIONREAD, count)
        except OSError:
            return 0
        return count[0]

    def _read_chunk(self, size: int) -> int:
        """Read and forward at most `size` bytes; how many were read (0: nothing or end)."""
        if self._eof:
            return 0
        try:
            chunk = os.read(self._fd, size)
        except BlockingIOError:
            return 0
        except OSError:
            self._eof = True
            return 0
        if not chunk:
            self._eof = True
            return 0
        self._take(chunk)
        return len(chunk)

    def _take(self, chunk: bytes) -> None:
        # Newlines are looked for in the new chunk only: a long line costs linear time.
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._append(chunk[start:end])
            self._emit(bytes(self._partial))
            self._partial.clear()
            start = end + 1
        self._append(chunk[start:])

    def _append(self, piece: bytes) -> None:
        """Add to the current line, cutting it at CloudWatch's event size as it grows."""
        self._partial += piece
        while len(self._partial) > MAX_LOG_LINE_BYTES:
            self._emit(bytes(self._partial[:MAX_LOG_LINE_BYTES]))
            del self._partial[:MAX_LOG_LINE_BYTES]

    def _flush_partial(self) -> None:
        if self._partial:
            self._emit(bytes(self._partial))
            self._partial.clear()

    def _emit(self, raw: bytes) -> None:
        # awslambdaric ends the lines of a multi-line error with "\r": split them too.
        prefix = self._prefix()
        for line in raw.decode("utf-8", errors="replace").split("\r"):
            if line:
                self._write_line(f"{prefix} {line}")


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
        self._logs: _LogForwarder | None = None
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
        preexec = _die_with_parent(parent_pid)
        if self._cpu_group is not None:
            preexec = _chain(preexec, self._cpu_group.join_self)

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
        self._logs = _LogForwarder(self._process.stdout, self._write_line, lambda: self._log_prefix)
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
