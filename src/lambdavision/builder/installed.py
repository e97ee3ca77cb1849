"""Sizes of other deployments (the benchmark's baseline): installed distributions and what they require,
zipped the way `package` zips its own."""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from lambdavision.builder import zipbuild
from lambdavision.builder.plan import PackageError
from lambdavision.builder.zipbuild import ZipSizes


def installed_closure(names: Sequence[str]) -> list[importlib.metadata.Distribution]:
    """Installed distributions `names` and everything they require (extras left out), by name.

    Requirements that are not installed here (another platform's, say) are skipped.
    """
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = _normalise(pending.pop())
        if name in found:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            if name in map(_normalise, names):
                raise PackageError(f"{name} is not installed here, so its deployment size cannot be measured") from None
            continue
        found[name] = dist
        for requirement in dist.requires or []:
            spec, _, marker = requirement.partition(";")
            if "extra" in marker:
                continue
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
            if match:
                pending.append(match.group(1))
    return [found[name] for name in sorted(found)]


def installed_sizes(names: Sequence[str], out_zip: Path) -> ZipSizes:
    """Zip the installed files of `names` and their requirements the way `package` zips its own,
    unpruned and without bytecode, and measure it: a deployment as `pip install --target` would
    ship it (the guide's torch app: `installed_sizes(["torch", "numpy", "pillow"], ...)`).
    """
    members: dict[str, Path] = {}
    for dist in installed_closure(names):
        for file in dist.files or []:
            parts = PurePosixPath(str(file)).parts
            if ".." in parts or "__pycache__" in parts or str(file).endswith(".pyc"):
                continue  # console scripts outside site-packages; this interpreter's bytecode
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                members[PurePosixPath(*parts).as_posix()] = path
    zipbuild.write_reproducible_zip(members, out_zip)
    return zipbuild.sizes(out_zip)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


__all__ = ["installed_closure", "installed_sizes"]
