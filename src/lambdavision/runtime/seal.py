"""Trusting a cached serving folder: a private parent, and a record of the folder as it was written.

The cache parent is created 0700 and refused unless it is this user's own and no one else may
write to it (`ensure_private_dir`): in a shared /tmp anyone can create a predictable name first.

The S3 disk cache lives in /tmp and is reused by every later cold start on the machine: a copy
whose class list or weights changed after it was written must not be served. `write_seal` records
each file's size, modification time and (up to 16 MiB: the manifest, the class list, a format-2
graph) its sha256, plus a digest of that record; `check_seal` says what no longer matches. The
weights themselves (hundreds of MB) are checked by size and modification time only: hashing them
would cost every cold start ~0.1 s per 100 MB, and whoever can write the folder with the same
size and time (its owner; the parent is 0700) could also rewrite the record.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as stat_module
from pathlib import Path
from typing import Any

SEAL_NAME = ".lambdavision-seal.json"
HASHED_UP_TO = 16 * 1024 * 1024  # bytes: files up to this size are hashed on every check


class UnsafeFolder(Exception):
    """A cache folder this process must not trust: someone else's, or writable by others."""


def ensure_private_dir(folder: Path) -> None:
    """Create `folder` 0700 if it is missing; UnsafeFolder unless it is a real directory of this
    user that no one else may write to (a shared /tmp lets anyone create a name first)."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
    except OSError as exc:
        raise UnsafeFolder(f"{folder} cannot be created ({exc.strerror or exc})") from exc
    if not stat_module.S_ISDIR(info.st_mode):
        raise UnsafeFolder(f"{folder} is not a directory (a link or a file)")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise UnsafeFolder(f"{folder} belongs to uid {info.st_uid}, not to this user (uid {os.getuid()})")
    if info.st_mode & 0o022:
        raise UnsafeFolder(f"{folder} may be written by others (mode {stat_module.S_IMODE(info.st_mode):o})")


def _describe(path: Path) -> dict[str, Any]:
    stat = path.stat()
    entry: dict[str, Any] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if stat.st_size <= HASHED_UP_TO:
        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entry


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name != SEAL_NAME)


def _digest(files: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def write_seal(folder: Path) -> None:
    """Record the folder's files as they are now (call it once they are all written)."""
    files = {path.name: _describe(path) for path in _files(folder)}
    (folder / SEAL_NAME).write_text(json.dumps({"files": files, "digest": _digest(files)}, sort_keys=True))


def check_seal(folder: Path) -> str | None:
    """None if the folder holds exactly what was sealed; else what changed, in a few words."""
    try:
        raw = json.loads((folder / SEAL_NAME).read_text())
        files: dict[str, Any] = raw["files"]
        if not isinstance(files, dict) or raw.get("digest") != _digest(files):
            return "its seal was altered"
    except FileNotFoundError:
        return "it has no seal (written by an older lambdavision, or not by lambdavision)"
    except (OSError, ValueError, KeyError, TypeError):
        return "its seal is unreadable"
    try:
        present = {path.name: path for path in _files(folder)}
    except OSError as exc:
        return f"it cannot be listed ({exc.strerror or exc})"
    if sorted(present) != sorted(files):
        added, missing = sorted(set(present) - set(files)), sorted(set(files) - set(present))
        return f"files were added ({', '.join(added) or 'none'}) or removed ({', '.join(missing) or 'none'})"
    for name, sealed in files.items():
        try:
            stat = os.lstat(present[name])
        except OSError as exc:
            return f"{name} cannot be read ({exc.strerror or exc})"
        if not present[name].is_file() or present[name].is_symlink():
            return f"{name} is no longer a regular file"
        if stat.st_size != sealed.get("size") or stat.st_mtime_ns != sealed.get("mtime_ns"):
            return f"{name} changed size or modification time"
        if "sha256" in sealed and hashlib.sha256(present[name].read_bytes()).hexdigest() != sealed["sha256"]:
            return f"{name} changed (sha256)"
    return None


__all__ = ["HASHED_UP_TO", "SEAL_NAME", "UnsafeFolder", "check_seal", "ensure_private_dir", "write_seal"]
