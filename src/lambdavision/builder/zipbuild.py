"""Turn a staged folder into what Lambda runs: compiled to `.pyc`, zipped reproducibly, measured
(pruning is `builder.prune`; native libraries `builder.elf`).

Everything here works on local folders and files; nothing talks to AWS.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lambdavision.core.errors import LambdaVisionError

Log = Callable[[str], None]

MB = 2**20  # as AWS counts its limits
ZIPPED_DIRECT_UPLOAD_LIMIT = 50 * MB
UNZIPPED_LIMIT = 250 * MB  # function + all its layers

# --- bytecode


def compile_pyc(root: Path, python: Path, run_dir: str, log: Log) -> bool:
    """Compile every `.py` under `root` with the runtime's CPython, as Lambda will find them.

    `run_dir` is where the files live on Lambda (/var/task, /opt/python): it goes into the code
    objects so tracebacks name real paths. unchecked-hash pycs are valid whatever the files'
    timestamps (the zip fixes them at 1980), and PYTHONHASHSEED=0 keeps set constants in a fixed
    order, so the bytes are reproducible. Returns False (and logs why) if compiling failed.
    """
    cmd = [
        str(python), "-I", "-m", "compileall", "-q", "-f", "-j", "0",
        "--invalidation-mode", "unchecked-hash", "-d", run_dir, str(root),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("PYTHONPYCACHEPREFIX", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        # Usually one file with syntax the runtime rejects; it then ships as source only.
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        log(f"warning: {python.name} could not compile every file: {' / '.join(lines[-3:])}")
        return False
    return True


# --- the zip

EPOCH_1980 = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
DIR_MODE = 0o040755


@dataclass(frozen=True)
class Source:
    """Files to put in a zip: the tree under `root`, each under `prefix` + its relative path."""

    root: Path
    prefix: str = ""


def collect(sources: Iterable[Source], extra: Mapping[str, Path] | None = None) -> dict[str, Path]:
    """Zip member name -> file on disk. Two sources naming the same member is an error."""
    members: dict[str, Path] = {}

    def add(name: str, path: Path, origin: str) -> None:
        if name in members:
            raise LambdaVisionError(f"two files would be {name!r} in the package ({members[name]} and {origin})")
        members[name] = path

    for source in sources:
        for path in source.root.rglob("*"):
            if path.is_file():
                add(source.prefix + path.relative_to(source.root).as_posix(), path, str(path))
    for name, path in (extra or {}).items():
        add(name, path, str(path))
    return members


def write_reproducible_zip(members: Mapping[str, Path], out: Path) -> None:
    """The same members with the same bytes give the same zip, byte for byte.

    Sorted entries, every parent directory listed, fixed 1980 timestamps, 0644 files and 0755
    directories (what Lambda needs: world-readable), deflate at zlib's default level.
    """
    dirs = {name.rsplit("/", i)[0] + "/" for name in members for i in range(1, name.count("/") + 1)}
    entries = sorted([*dirs, *members])
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in entries:
            info = zipfile.ZipInfo(name, date_time=EPOCH_1980)
            info.create_system = 3  # Unix, so external_attr carries the mode
            if name.endswith("/"):
                info.external_attr = (DIR_MODE << 16) | 0x10  # MS-DOS directory bit as well
                zf.writestr(info, b"")
                continue
            path = members[name]
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.file_size = path.stat().st_size
            with path.open("rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(partial, out)


# --- sizes


@dataclass(frozen=True)
class ZipSizes:
    zipped: int  # the zip file's bytes
    unzipped: int  # sum of its members' sizes
    parts: tuple[tuple[str, int], ...]  # top-level entries by unzipped size, biggest first


def sizes(zip_path: Path) -> ZipSizes:
    """Zipped and unzipped sizes of a package and what takes the room (for tables and benchmarks)."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            member_sizes = {i.filename: i.file_size for i in zf.infolist() if not i.is_dir()}
    except (OSError, zipfile.BadZipFile) as exc:
        raise LambdaVisionError(f"cannot read package {zip_path}: {exc}") from exc
    return ZipSizes(zip_path.stat().st_size, sum(member_sizes.values()), parts_of(member_sizes))


def parts_of(member_sizes: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """Unzipped bytes per top-level entry (`numpy/`, `app.py`), biggest first.

    A layer's members all sit under `python/`; its parts are named one level further down.
    """
    is_layer = bool(member_sizes) and all(name.startswith("python/") for name in member_sizes)
    depth = 2 if is_layer else 1
    parts: dict[str, int] = {}
    for name, size in member_sizes.items():
        pieces = name.split("/")
        top = "/".join(pieces[:depth]) + ("/" if len(pieces) > depth else "")
        parts[top] = parts.get(top, 0) + size
    return tuple(sorted(parts.items(), key=lambda kv: (-kv[1], kv[0])))


def biggest_parts(part_lists: Iterable[Sequence[tuple[str, int]]], count: int = 5) -> list[tuple[str, int]]:
    merged = [part for parts in part_lists for part in parts]
    return sorted(merged, key=lambda kv: (-kv[1], kv[0]))[:count]


def human(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= 100_000 else f"{size / 1000:.1f} kB"
