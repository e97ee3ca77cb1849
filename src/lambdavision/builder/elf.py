"""Native libraries in a staged folder, read as ELF files: which machine each is built for (refusing
another architecture's), and which libraries each links (DT_NEEDED)."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path

from lambdavision.core.errors import LambdaVisionError

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


__all__ = ["ELF_MACHINES", "check_native_libraries", "elf_machine", "elf_needed"]
