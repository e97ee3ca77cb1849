"""The S3 model's disk cache: one serving folder per object version, trusted only while it is intact.

Keyed by bucket, key and ETag under `Settings.cache_dir`, so a warm container (or a second
environment on the same machine) never downloads a model twice. `runtime.seal` says whether a
folder is still what was written.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

from lambdavision.core.artifact import MANIFEST_NAME, Artifact
from lambdavision.core.errors import ArtifactError
from lambdavision.runtime.artifact_files import read_serving_dir
from lambdavision.runtime.seal import UnsafeFolder, check_seal, ensure_private_dir
from lambdavision.runtime.settings import Settings

log = logging.getLogger("lambdavision")


def cached_copy(cached: Path, uri: str) -> Artifact | None:
    """The unpacked copy of this object version, if the cache holds a whole one, unchanged.

    The cache folder must be this user's alone (0700, runtime.seal), and the copy must match the
    record written with it: sizes and times of every file, sha256 of the manifest, the class list
    and a format-2 graph. A copy that changed or lost a file (an edit, a /tmp cleaner) is removed,
    so this load downloads the model again instead of serving it, or of every later load failing.
    """
    if not (cached / MANIFEST_NAME).is_file():
        return None
    try:
        ensure_private_dir(cached.parent)
    except UnsafeFolder as exc:
        log.warning("model %s: not using the disk cache: %s", uri, exc)
        return None
    problem = check_seal(cached)
    if problem is not None:
        log.warning("model %s: the unpacked copy in %s cannot be trusted (%s); downloading again", uri, cached, problem)
        shutil.rmtree(cached, ignore_errors=True)
        return None
    try:
        artifact = read_serving_dir(cached, source=uri)
    except ArtifactError as exc:
        log.warning("model %s: the unpacked copy in %s is damaged (%s); downloading again", uri, cached, exc.message)
        shutil.rmtree(cached, ignore_errors=True)
        return None
    log.info("model %s: using the unpacked copy in %s", uri, cached)
    return artifact


def cached_folder(settings: Settings, bucket: str, key: str, etag: str) -> Path:
    return settings.cache_dir / hashlib.sha256(f"{bucket}/{key}/{etag}".encode()).hexdigest()[:32]


__all__ = ["cached_copy", "cached_folder"]
