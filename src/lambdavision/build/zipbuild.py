"""Turn a staged folder into what Lambda runs: pruned, compiled to `.pyc`, zipped reproducibly.

Everything here works on local folders and files; nothing talks to AWS.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import struct
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

# --- pruning: what never runs on Lambda. Each rule says why; the self-containment test proves
# the handler still imports and runs without it.

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


# --- native libraries

ELF_MACHINES: Mapping[str, int] = {"x86_64": 62, "arm64": 183}


def elf_machine(header: bytes) -> int | None:
    """e_machine of an ELF header (little-endian, as on both Lambda architectures), else None."""
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little")


def elf_needed(data: bytes) -> list[str] | None:
    """The DT_NEEDED names of a 64-bit little-endian ELF file (both Lambda architectures), or None
    when `data` is not one or cannot be read (callers then assume nothing)."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    try:
        (phoff,) = struct.unpack_from("<Q", data, 32)
        phentsize, phnum = struct.unpack_from("<HH", data, 54)
        loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
        dynamic: tuple[int, int] | None = None
        for i in range(phnum):
            p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
            if p_type == 1:  # PT_LOAD
                loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == 2:  # PT_DYNAMIC
                dynamic = (p_offset, p_filesz)
        if dynamic is None:
            return []  # statically linked
        needed_offsets: list[int] = []
        strtab_addr = None
        for offset in range(dynamic[0], dynamic[0] + dynamic[1], 16):
            tag, value = struct.unpack_from("<qQ", data, offset)
            if tag == 0:  # DT_NULL
                break
            if tag == 1:  # DT_NEEDED: an offset into the string table
                needed_offsets.append(value)
            elif tag == 5:  # DT_STRTAB: its virtual address
                strtab_addr = value
        if strtab_addr is None:
            return None if needed_offsets else []
        strtab = next(off + strtab_addr - vaddr for vaddr, off, size in loads if vaddr <= strtab_addr < vaddr + size)
        names = []
        for name_offset in needed_offsets:
            start = strtab + name_offset
            names.append(data[start : data.index(b"\0", start)].decode("ascii"))
        return names
    except (struct.error, ValueError, StopIteration, UnicodeDecodeError):
        return None


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


def check_native_libraries(root: Path, architecture: str) -> int:
    """Every ELF file under `root` must be built for `architecture`. Returns how many were seen."""
    want = ELF_MACHINES[architecture]
    seen = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as fh:
            machine = elf_machine(fh.read(20))
        if machine is None:
            continue
        seen += 1
        if machine != want:
            raise LambdaVisionError(
                f"{path.relative_to(root)} is a native library for another machine "
                f"(ELF e_machine {machine}), not {architecture}"
            )
    return seen


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
