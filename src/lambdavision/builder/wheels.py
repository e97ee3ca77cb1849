"""Binary wheels for a Lambda runtime: which ones, fetched once into a local cache, unpacked.

pip does the resolving and downloading (`pip download` with the Lambda platform's tags); we do the
unpacking ourselves. A wheel is a zip with a fixed layout, so `zipfile` installs it exactly and
deterministically, with no dependency on which interpreters this machine has; the runtime's own
CPython is only wanted later, to compile `.pyc` files, and the package still works without it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath

from lambdavision.builder.runtimes import SUCCESSORS, retired_reason
from lambdavision.core.errors import LambdaVisionError

Log = Callable[[str], None]

# Lambda runtimes we can build for, and the newest glibc of their OS. python3.11 runs on Amazon
# Linux 2 (glibc 2.26): onnxruntime ships only manylinux_2_28 wheels, which cannot load there.
SUPPORTED_RUNTIMES: Mapping[str, int] = {"python3.12": 34, "python3.13": 34, "python3.14": 34}
REFUSED_RUNTIMES: Mapping[str, str] = {
    "python3.11": (
        "onnxruntime's wheels need glibc 2.28 and Lambda's python3.11 runs on Amazon Linux 2 "
        "(glibc 2.26); use Runtime: python3.12 or python3.13"
    ),
}
ARCHITECTURES: Mapping[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}
OLDEST_MANYLINUX_MINOR = 17  # manylinux2014 == manylinux_2_17

# What the function imports at run time. boto3 is optional: Lambda's runtimes carry their own.
RUNTIME_DEPENDENCIES: tuple[str, ...] = ("onnxruntime", "numpy", "pillow")
BOTO3_DEPENDENCIES: tuple[str, ...] = ("boto3",)
# Requirements of onnxruntime that `import onnxruntime` + InferenceSession never import (they
# serve its converters and tools). The self-containment test runs a session without them.
UNUSED_DISTRIBUTIONS: frozenset[str] = frozenset(
    {"protobuf", "flatbuffers", "packaging", "sympy", "mpmath", "coloredlogs", "humanfriendly"}
)


@dataclass(frozen=True)
class Target:
    """The Lambda platform a package is built for."""

    runtime: str  # "python3.12"
    architecture: str  # "x86_64" | "arm64" (Lambda's spelling)

    @classmethod
    def parse(cls, runtime: str, architecture: str) -> Target:
        retired = retired_reason(runtime, date.today())
        if retired is not None and runtime not in SUPPORTED_RUNTIMES:
            raise LambdaVisionError(f"cannot package for {runtime}: {retired}; use Runtime: {SUCCESSORS}")
        if runtime in REFUSED_RUNTIMES:
            raise LambdaVisionError(f"cannot package for {runtime}: {REFUSED_RUNTIMES[runtime]}")
        if runtime not in SUPPORTED_RUNTIMES:
            supported = ", ".join(SUPPORTED_RUNTIMES)
            raise LambdaVisionError(f"cannot package for Runtime {runtime!r}: supported are {supported}")
        if architecture not in ARCHITECTURES:
            raise LambdaVisionError(f"unknown architecture {architecture!r}: use one of {', '.join(ARCHITECTURES)}")
        return cls(runtime, architecture)

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")  # "3.12"

    @property
    def abi(self) -> str:
        return "cp" + self.python_version.replace(".", "")  # "cp312"

    @property
    def machine(self) -> str:
        return ARCHITECTURES[self.architecture]  # "aarch64"

    @property
    def platform_tags(self) -> list[str]:
        """Newest first: manylinux_2_34 down to manylinux2014, as pip's --platform wants them."""
        newest = SUPPORTED_RUNTIMES[self.runtime]
        tags = [f"manylinux_2_{minor}_{self.machine}" for minor in range(newest, OLDEST_MANYLINUX_MINOR - 1, -1)]
        return [*tags, f"manylinux2014_{self.machine}"]

    @property
    def slug(self) -> str:
        return f"{self.runtime}-{self.architecture}"


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """~/.cache/lambdavision, or $LAMBDAVISION_CACHE_DIR, or $XDG_CACHE_HOME/lambdavision."""
    if environ.get("LAMBDAVISION_CACHE_DIR"):
        return Path(environ["LAMBDAVISION_CACHE_DIR"])
    base = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "lambdavision"


def requirements(include_boto3: bool) -> list[str]:
    """Pinned to the versions installed here, so Lambda runs what `lambdavision local` ran."""
    names = [*RUNTIME_DEPENDENCIES, *(BOTO3_DEPENDENCIES if include_boto3 else ())]
    pinned = []
    for name in names:
        try:
            pinned.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pinned.append(name)
    return pinned


def fetch_wheels(
    target: Target,
    reqs: Sequence[str],
    cache_dir: Path,
    log: Log,
    refresh: bool = False,
) -> list[Path]:
    """The wheels for `reqs` on `target`, downloaded once into the cache and reused after.

    The cache holds, per target, the wheel files and one small JSON list per requirement set
    naming the wheels pip resolved it to; a set whose wheels are all present needs no network.
    """
    wheel_dir = cache_dir / "wheels" / target.slug
    set_key = hashlib.sha256(json.dumps([sorted(reqs), target.platform_tags]).encode()).hexdigest()[:16]
    set_file = wheel_dir / "sets" / f"{set_key}.json"
    if not refresh and set_file.is_file():
        names = json.loads(set_file.read_text())
        wheels = [wheel_dir / name for name in names]
        if all(w.is_file() for w in wheels):
            log(f"wheel cache hit for {target.slug}: {len(names)} wheels, no download")
            return wheels
    log(f"downloading wheels for {target.slug}: {' '.join(reqs)}")
    wheel_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheel_dir, prefix=".download-") as tmp:
        _pip_download(target, reqs, Path(tmp), find_links=wheel_dir)
        names = sorted(p.name for p in Path(tmp).glob("*.whl"))
        for name in names:
            os.replace(Path(tmp) / name, wheel_dir / name)  # atomic: a concurrent run sees whole files
    set_file.parent.mkdir(exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{set_file.name}.", dir=set_file.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(names))
    os.replace(partial, set_file)
    return [wheel_dir / name for name in names]


def _pip_download(target: Target, reqs: Sequence[str], dest: Path, find_links: Path) -> None:
    # The cache folder as --find-links: wheels fetched for another requirement set are reused.
    platforms = [arg for tag in target.platform_tags for arg in ("--platform", tag)]
    cmd = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
        "--only-binary=:all:", *platforms, "--python-version", target.python_version,
        "--implementation", "cp", "--abi", target.abi, "--find-links", str(find_links),
        "--dest", str(dest), *reqs,
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise LambdaVisionError(f"cannot run pip to fetch wheels: {exc}") from exc
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit status {proc.returncode}"
        raise LambdaVisionError(f"pip could not fetch binary wheels of {' '.join(reqs)} for {target.slug}: {last}")


_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def distribution_name(wheel: Path) -> str:
    """The normalised project name of a wheel file ("pillow", "python_dateutil" -> "python-dateutil")."""
    match = _WHEEL_NAME.match(wheel.name)
    if match is None:
        raise LambdaVisionError(f"not a wheel file name: {wheel.name}")
    return re.sub(r"[-_.]+", "-", match["name"]).lower()


def wanted_wheels(wheels: Sequence[Path]) -> list[Path]:
    """The wheels worth installing: all but onnxruntime's never-imported requirements."""
    return [w for w in wheels if distribution_name(w) not in UNUSED_DISTRIBUTIONS]


def unpack_wheel(wheel: Path, dest: Path) -> None:
    """Install a wheel into `dest` the way `pip install --target` lays it out.

    `<dist>.data/purelib|platlib` go to the top; scripts, headers and data never run on Lambda.
    Member names are checked so a crafted wheel cannot write outside `dest`.
    """
    try:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                path = PurePosixPath(info.filename)
                if path.is_absolute() or ".." in path.parts or "\\" in info.filename:
                    raise LambdaVisionError(f"unsafe path {info.filename!r} in {wheel.name}")
                if path.parts[0].endswith(".data"):
                    if len(path.parts) < 3 or path.parts[1] not in ("purelib", "platlib"):
                        continue
                    path = PurePosixPath(*path.parts[2:])
                out = dest.joinpath(*path.parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise LambdaVisionError(f"corrupt wheel {wheel} (delete it from the cache): {exc}") from exc


@dataclass(frozen=True)
class Interpreter:
    path: Path
    version: str  # the full version, "3.12.1": part of the staged-dependencies cache key


def find_python(version: str, environ: Mapping[str, str]) -> Interpreter | None:
    """A working CPython `version` ("3.12") on this machine, or None.

    PATH names come first, then pyenv's versions folder. A pyenv shim for a version that is not
    selected exists on PATH yet fails, so every candidate is run once to check it.
    """
    candidates: list[Path] = []
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        candidates.append(Path(sys.executable))
    found = shutil.which(f"python{version}", path=environ.get("PATH"))
    if found:
        candidates.append(Path(found))
    pyenv_root = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    installed = sorted(
        pyenv_root.glob(f"versions/{version}.*/bin/python{version}"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parts[-3].split(".")],
        reverse=True,
    )
    candidates.extend(installed)
    probe = "import platform, sys; print(platform.python_version()); print(sys.executable)"
    for candidate in candidates:
        try:
            proc = subprocess.run(
                [str(candidate), "-I", "-c", probe], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        full, _, executable = proc.stdout.strip().partition("\n")
        if proc.returncode == 0 and (full == version or full.startswith(version + ".")):
            # The interpreter itself, not a launcher (a pyenv shim costs a bash start per process).
            real = Path(executable.strip()) if executable.strip() else candidate
            return Interpreter(real if real.is_file() else candidate, full)
    return None
