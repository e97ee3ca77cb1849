"""The one way the function runs something beside its main thread: a call whose result is a Future.

`in_thread(call, *args)` starts `call(*args)` in a daemon thread and returns a
`concurrent.futures.Future`: `result(timeout)` returns what the call returned or raises what it
raised, with its traceback. Daemon, unlike ThreadPoolExecutor's workers (joined at interpreter
exit): a call that may never return (getaddrinfo has no timeout) is abandoned, not waited for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


def in_thread(call: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
    """`call(*args, **kwargs)` in a new daemon thread named after it; its Future."""
    future: Future[T] = Future()
    future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            result = call(*args, **kwargs)
        except BaseException as exc:  # handed to whoever waits on the future
            future.set_exception(exc)
        else:
            future.set_result(result)

    name = f"lambdavision-{getattr(call, '__name__', 'call').strip('_')}"
    threading.Thread(target=run, name=name, daemon=True).start()
    return future


__all__ = ["in_thread"]
