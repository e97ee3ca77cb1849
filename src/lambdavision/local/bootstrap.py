"""The first code of a local Lambda environment: `python -I -S bootstrap.py HANDLER`.

Run isolated (-I: no PYTHON* variables, no user site, not its own folder; -S: no site-packages
at all), so the process sees the standard library only. Like Lambda's own bootstrap it then puts
on sys.path, in order, the function's folder, its layers and the runtime folder (awslambdaric and
the SDK), which lambdavision passes in PYTHONPATH (read here, since -I makes Python ignore it),
and starts AWS's runtime client. Nothing else of the machine is importable.

Standard library only: it runs under the function's CPython, before anything is on sys.path.
"""

import os
import runpy
import sys


def main() -> None:
    sys.path[:0] = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    # /var/task is read-only on Lambda: the function's folder gets no __pycache__ here either.
    sys.dont_write_bytecode = True
    sys.argv = ["awslambdaric", *sys.argv[1:]]
    runpy.run_module("awslambdaric", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
