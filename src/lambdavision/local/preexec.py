"""What a runtime process runs between fork and exec (`preexec_fn`): die with its parent, and the steps
of the caller (joining its CPU share's cgroup) in order."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> Callable[[], None] | None:
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


def chain(*steps: Callable[[], None] | None) -> Callable[[], None]:
    """One preexec_fn running each step in order."""

    def run() -> None:
        for step in steps:
            if step is not None:
                step()

    return run


__all__ = ["chain", "die_with_parent"]
