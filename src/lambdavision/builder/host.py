"""This machine as a platform for Lambda packages: can it run one as built, and if not, its twin's target.

A package built for Lambda holds Linux wheels for one architecture, whose native libraries need
the glibc of Lambda's OS (Amazon Linux 2023: 2.34). A Linux host of the same architecture with
that glibc runs it as it is. Anywhere else (macOS; an arm64 package on an x86_64 host; an older
glibc) the local loop runs the package's *host twin*: the same code and the same pinned versions,
built from the wheels for this host (`twin_target`). Nothing here builds; it only decides.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

from lambdavision.builder.wheels import ARCHITECTURES, OLDEST_MANYLINUX_MINOR, SUPPORTED_RUNTIMES, Target
from lambdavision.core.errors import LambdaVisionError

_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class HostPlatform:
    system: str  # platform.system(): "Linux", "Darwin", ...
    architecture: str  # Lambda's spelling ("x86_64", "arm64"), or the machine's own when Lambda has none
    glibc: tuple[int, int] | None  # (2, 36); None off glibc
    macos: tuple[int, int] | None = None  # (14, 5) on macOS

    def describe(self) -> str:
        if self.system == "Linux":
            libc = f"glibc {self.glibc[0]}.{self.glibc[1]}" if self.glibc else "no glibc"
            return f"Linux {self.architecture} ({libc})"
        return f"{self.system} {self.architecture}"


def current_host() -> HostPlatform:
    """The machine this process runs on."""
    machine = platform.machine().lower()
    glibc: tuple[int, int] | None = None
    try:
        name, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
        if name == "glibc":
            major, minor = version.split(".")[:2]
            glibc = (int(major), int(minor))
    except (ValueError, OSError, AttributeError):
        glibc = None
    macos: tuple[int, int] | None = None
    if platform.system() == "Darwin":
        parts = (platform.mac_ver()[0] or "11.0").split(".")
        macos = (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
    return HostPlatform(platform.system(), _MACHINES.get(machine, machine), glibc, macos)


@dataclass(frozen=True)
class HostTarget(Target):
    """A target whose wheels are this host's, not Lambda's: `platforms` replaces Lambda's tags."""

    platforms: tuple[str, ...] = ()

    @property
    def platform_tags(self) -> list[str]:
        return list(self.platforms)

    @property
    def slug(self) -> str:
        return f"{self.runtime}-{self.platforms[0]}" if self.platforms else super().slug


def twin_reason(target: Target, host: HostPlatform) -> str | None:
    """Why this host cannot run a package built for `target` as it is, or None when it can."""
    if host.system != "Linux":
        return f"this host runs {host.describe()}, and the package holds Linux {target.architecture} libraries"
    if host.architecture != target.architecture:
        return f"the package is built for {target.architecture} and this host is {host.architecture}"
    needed = SUPPORTED_RUNTIMES.get(target.runtime, OLDEST_MANYLINUX_MINOR)
    if host.glibc is None or host.glibc < (2, needed):
        return f"the package's wheels may need glibc 2.{needed} (Lambda's OS) and this host is {host.describe()}"
    return None


def twin_target(target: Target, host: HostPlatform) -> Target:
    """The target of `target`'s host twin: the same runtime, this host's wheels."""
    if host.system == "Linux" and host.architecture in ARCHITECTURES and host.glibc is not None:
        newest = SUPPORTED_RUNTIMES.get(target.runtime, OLDEST_MANYLINUX_MINOR)
        minor = min(host.glibc[1], newest) if host.glibc[0] == 2 else newest
        plain = Target(target.runtime, host.architecture)
        if minor == newest:
            return plain
        if minor < OLDEST_MANYLINUX_MINOR:
            raise LambdaVisionError(
                f"this host's glibc {host.glibc[0]}.{host.glibc[1]} is older than any manylinux wheel: "
                "run with --use-venv (not what Lambda runs)"
            )
        machine = ARCHITECTURES[host.architecture]
        tags = [f"manylinux_2_{m}_{machine}" for m in range(minor, OLDEST_MANYLINUX_MINOR - 1, -1)]
        return HostTarget(plain.runtime, plain.architecture, platforms=(*tags, f"manylinux2014_{machine}"))
    if host.system == "Darwin" and host.macos is not None:
        # pip takes every older macOS version of the tag as compatible too.
        major, minor = host.macos
        tag = f"macosx_{major}_{minor if major == 10 else 0}_{host.architecture}"
        return HostTarget(target.runtime, host.architecture, platforms=(tag,))
    raise LambdaVisionError(
        f"lambdavision cannot build wheels for {host.describe()}: run with --use-venv (not what Lambda runs)"
    )


def runnable_target(target: Target, host: HostPlatform) -> Target:
    """`target` itself when this host runs it, else its twin's."""
    return target if twin_reason(target, host) is None else twin_target(target, host)


__all__ = ["HostPlatform", "HostTarget", "current_host", "runnable_target", "twin_reason", "twin_target"]
