"""Pruning a staged folder: what never runs on Lambda goes. Each rule says why; the self-containment
test proves the handler still imports and runs without it."""

from __future__ import annotations

import fnmatch
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lambdavision.builder.elf import elf_needed

# Directory names, anywhere in the tree.
PRUNE_DIR_NAMES: Mapping[str, str] = {
    "tests": "test suites",
    "__pycache__": "bytecode of another Python (recompiled for the runtime)",
}
# Paths relative to the staging root; a matching directory goes whole. fnmatch's `*` crosses `/`.
PRUNE_PATH_GLOBS: Mapping[str, str] = {
    "onnxruntime/tools": "model conversion tools",
    "onnxruntime/quantization": "quantisation tooling (export time only)",
    "onnxruntime/transformers": "transformer-model optimisers",
    "onnxruntime/capi/libonnxruntime.so*": "C API library; the Python module does not link it",
    "numpy/_core/include": "C headers",
    "numpy/_core/lib": "static library and pkg-config files for building extensions",
    "numpy/f2py": "Fortran wrapper generator, imported only on attribute access",
    "numpy/_pyinstaller": "PyInstaller hooks",
    "numpy/_core/_simd.*": "numpy's SIMD test module",
    "numpy/_core/_*_tests.*": "numpy's test-only extension modules",
    # Pillow's optional extension modules (each imported in a try: absent = feature off). The API
    # accepts JPEG, PNG, WebP, GIF and BMP; their vendored libraries go with them (see below).
    "PIL/_avif.*": "AVIF codec (not an accepted upload format)",
    "PIL/_imagingft.*": "FreeType text rendering (ImageFont)",
    "PIL/_imagingtk.*": "Tk bindings",
    "*.dist-info/RECORD": "install record listing files that were pruned",
    "*.dist-info/INSTALLER": "installer marker",
    "*.dist-info/REQUESTED": "installer marker",
    "*.dist-info/direct_url.json": "installer marker",
    "*.dist-info/entry_points.txt": "console scripts, which are not shipped",
}
# File names, anywhere in the tree (never inside *.dist-info, which holds licence texts).
PRUNE_FILE_GLOBS: Mapping[str, str] = {
    "*.pyi": "type stubs",
    "*.h": "C headers",
    "*.hpp": "C++ headers",
    "*.pxd": "Cython headers",
    "*.pyx": "Cython sources",
    "*.a": "static libraries",
    "*.pyc": "bytecode of another Python (recompiled for the runtime)",
}


@dataclass(frozen=True)
class Pruned:
    path: str  # POSIX, relative to the root
    reason: str
    size: int  # bytes removed


def prune_reason(rel_path: str, is_dir: bool) -> str | None:
    """Why `rel_path` (POSIX, relative to the staging root) is dropped, or None to keep it."""
    name = rel_path.rsplit("/", 1)[-1]
    if is_dir and name in PRUNE_DIR_NAMES:
        return PRUNE_DIR_NAMES[name]
    for pattern, reason in PRUNE_PATH_GLOBS.items():
        if fnmatch.fnmatchcase(rel_path, pattern):
            return reason
    in_dist_info = any(part.endswith(".dist-info") for part in rel_path.split("/")[:-1])
    if not is_dir and not in_dist_info:
        for pattern, reason in PRUNE_FILE_GLOBS.items():
            if fnmatch.fnmatchcase(name, pattern):
                return reason
    return None


def prune(root: Path) -> list[Pruned]:
    """Delete from `root` everything a rule above names, then the vendored libraries nothing left
    links to; return what went, in path order."""
    removed = _prune_by_rules(root)
    removed.extend(prune_unlinked_libraries(root))
    return sorted(removed, key=lambda p: p.path)


def _prune_by_rules(root: Path) -> list[Pruned]:
    removed: list[Pruned] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        for dirname in sorted(dirnames):
            reason = prune_reason(prefix + dirname, is_dir=True)
            if reason is not None:
                size = tree_size(here / dirname)
                shutil.rmtree(here / dirname)
                dirnames.remove(dirname)  # don't descend into what is gone
                removed.append(Pruned(prefix + dirname, reason, size))
        for filename in sorted(filenames):
            reason = prune_reason(prefix + filename, is_dir=False)
            if reason is not None:
                path = here / filename
                size = path.lstat().st_size
                path.unlink()
                removed.append(Pruned(prefix + filename, reason, size))
    return removed


def tree_size(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file())


def prune_unlinked_libraries(root: Path) -> list[Pruned]:
    """Drop libraries vendored by auditwheel (`<dist>.libs/`) that no remaining module needs.

    auditwheel copies in exactly what the wheel's extension modules link; once a module is pruned
    (Pillow's AVIF codec, say) its libraries are dead weight. Reachability follows DT_NEEDED from
    every native file outside the `.libs` folders. If any native file cannot be read, nothing goes.
    """
    vendored: dict[str, Path] = {}
    needed_by: dict[Path, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as fh:
            if fh.read(4) != b"\x7fELF":
                continue
            fh.seek(0)
            needed = elf_needed(fh.read())
        if needed is None:
            return []
        needed_by[path] = needed
        if path.parent.name.endswith(".libs"):
            vendored[path.name] = path
    reached: set[str] = set()
    pending = [name for path, names in needed_by.items() if not path.parent.name.endswith(".libs") for name in names]
    while pending:
        name = pending.pop()
        if name in reached or name not in vendored:
            continue
        reached.add(name)
        pending.extend(needed_by[vendored[name]])
    removed = []
    for name, path in sorted(vendored.items()):
        if name not in reached:
            removed.append(
                Pruned(
                    path.relative_to(root).as_posix(), "vendored library nothing links any more", path.stat().st_size
                )
            )
            path.unlink()
    return removed


__all__ = [
    "PRUNE_DIR_NAMES",
    "PRUNE_FILE_GLOBS",
    "PRUNE_PATH_GLOBS",
    "Pruned",
    "prune",
    "prune_reason",
    "prune_unlinked_libraries",
    "tree_size",
]
