"""The runtime folder of a local Lambda environment (Lambda's /var/runtime): AWS's runtime client
(awslambdaric) and the AWS SDK that Lambda's Python runtimes carry (boto3 and its requirements).

Installed once per CPython version and platform into lambdavision's cache, from binary wheels
pinned to the versions installed here, and compiled by that CPython; never into a virtualenv.
It is the only thing a built package runs with that does not come from the package itself.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from lambdavision.builder import wheels, zipbuild
from lambdavision.builder.wheels import Interpreter, Target

Log = Callable[[str], None]

RUNTIME_CLIENT = ("awslambdaric", "boto3")
FOLDER = "runtime-client"


def pinned(names: tuple[str, ...] = RUNTIME_CLIENT) -> list[str]:
    """`name==version` of each, as installed here."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def runtime_dir(python: Interpreter, target: Target, cache_dir: Path, log: Log) -> Path:
    """The installed runtime folder for `python` on `target` (this host's platform), made once."""
    reqs = pinned()
    wheel_files = wheels.fetch_wheels(target, reqs, cache_dir, log)
    material = {"wheels": sorted(w.name for w in wheel_files), "python": python.version, "target": target.slug}
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]
    parent = cache_dir / FOLDER / target.slug
    folder = parent / key
    if folder.is_dir():
        return folder
    log(f"installing the runtime client for CPython {python.version} ({', '.join(reqs)}) into {folder}")
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".installing-", dir=parent))
    try:
        for wheel in wheel_files:
            wheels.unpack_wheel(wheel, work)
        zipbuild.compile_pyc(work, python.path, str(folder), log)
        try:
            os.replace(work, folder)
        except OSError:
            if not folder.is_dir():
                raise
            shutil.rmtree(work, ignore_errors=True)  # another run installed the same meanwhile
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return folder


def versions(folder: Path) -> str:
    """ "awslambdaric 4.2.2, boto3 1.44.8": what the runtime folder holds."""
    found = []
    for name in RUNTIME_CLIENT:
        dist = next(iter(sorted(folder.glob(f"{name}-*.dist-info"))), None)
        found.append(dist.name.removesuffix(".dist-info").replace("-", " ", 1) if dist else name)
    return ", ".join(found)


__all__ = ["RUNTIME_CLIENT", "pinned", "runtime_dir", "versions"]
