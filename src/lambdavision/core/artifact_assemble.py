"""What an artifact scan has read so far, checked against the manifest, and assembled into an Artifact.

`core.artifact_scan` fills a `Scan` member by member; every member is checked against the sha256
its manifest records (`verify`), and the result is a full-layout or classic `Artifact`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from lambdavision.core.artifact import Artifact, decode_classes
from lambdavision.core.errors import ArtifactError
from lambdavision.core.manifest import CLASSES_NAME, MANIFEST_NAME, ONNX_DATA_NAME, ONNX_NAME, Manifest


@dataclass
class Scan:
    """What has been read so far."""

    manifest: Manifest | None = None
    manifest_first: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    streamed: dict[str, str] = field(default_factory=dict)  # member -> sha256, written to onnx_dir
    onnx_path: Path | None = None
    seen: set[str] = field(default_factory=set)
    skipped: set[str] = field(default_factory=set)
    skipped_bytes: int = 0


def needed(manifest: Manifest, want_torchscript: bool) -> set[str]:
    """The members a server reads: all but the TorchScript copy when there is an ONNX model."""
    names = set(manifest.sha256)
    if want_torchscript or ONNX_NAME not in names:
        return names
    return {n for n in names if not n.endswith(".pth")}


def verify(name: str, data: bytes, manifest: Manifest, source: str) -> None:
    verify_digest(name, hashlib.sha256(data).hexdigest(), manifest, source)


def verify_digest(name: str, actual: str, manifest: Manifest, source: str) -> None:
    expected = manifest.sha256.get(name)
    if expected is None:
        raise ArtifactError(f"{source}: member {name!r} is not listed in {MANIFEST_NAME}")
    if actual != expected:
        raise ArtifactError(
            f"{source}: member {name!r} is corrupt: sha256 {actual[:12]}… does not match the "
            f"manifest's {expected[:12]}…"
        )


def verify_read_so_far(scan: Scan, manifest: Manifest, source: str) -> None:
    for name in list(scan.files):
        if name in manifest.sha256:
            verify(name, scan.files[name], manifest, source)
        else:
            del scan.files[name]  # a stray candidate the manifest does not claim
    for name, digest in scan.streamed.items():
        verify_digest(name, digest, manifest, source)


def assemble_full(scan: Scan, manifest: Manifest, source: str, want_torchscript: bool) -> Artifact:
    for name in sorted(needed(manifest, want_torchscript)):
        if name not in scan.files and name not in scan.streamed:
            raise ArtifactError(f"{source}: member {name!r} listed in {MANIFEST_NAME} is missing")
    classes = decode_classes(scan.files[CLASSES_NAME], CLASSES_NAME, source)
    if len(classes) != manifest.num_classes:
        raise ArtifactError(
            f"{source}: {CLASSES_NAME} has {len(classes)} classes but {MANIFEST_NAME} says "
            f"num_classes={manifest.num_classes}"
        )
    torchscript_names = sorted(n for n in manifest.sha256 if n.endswith(".pth"))
    if len(torchscript_names) > 1:
        raise ArtifactError(f"{source}: more than one TorchScript member: {', '.join(torchscript_names)}")
    onnx = scan.files.get(ONNX_NAME)
    if ONNX_DATA_NAME in manifest.sha256 and ONNX_NAME not in manifest.sha256:
        raise ArtifactError(f"{source}: {MANIFEST_NAME} lists {ONNX_DATA_NAME} but no {ONNX_NAME}")
    torchscript_name = torchscript_names[0] if torchscript_names else None
    if onnx is None and scan.onnx_path is None and torchscript_name is None:
        raise ArtifactError(f"{source}: {MANIFEST_NAME} lists neither {ONNX_NAME} nor a .pth model")
    return Artifact(
        source=source,
        classes=classes,
        manifest=manifest,
        onnx=onnx,
        torchscript=scan.files.get(torchscript_name) if torchscript_name else None,
        torchscript_name=torchscript_name,
        onnx_path=scan.onnx_path,
        onnx_data=scan.files.get(ONNX_DATA_NAME),
    )


def assemble_classic(scan: Scan, source: str) -> Artifact:
    pth = pick(scan, ".pth", "TorchScript model (*.pth)", None, source)
    txt = pick(scan, ".txt", f"class list (*.txt, e.g. {CLASSES_NAME})", CLASSES_NAME, source)
    return Artifact(
        source=source,
        classes=decode_classes(scan.files[txt], txt, source),
        manifest=None,
        onnx=None,
        torchscript=scan.files[pth],
        torchscript_name=pth,
    )


def pick(scan: Scan, suffix: str, what: str, preferred: str | None, source: str) -> str:
    names = sorted(n for n in scan.files if n.endswith(suffix))
    if not names:
        raise ArtifactError(
            f"{source}: no {MANIFEST_NAME} and no {what} at the top level; "
            f"members: {', '.join(sorted(scan.seen)) or 'none'}"
        )
    if len(names) == 1:
        return names[0]
    if preferred in names:
        return preferred
    raise ArtifactError(f"{source}: ambiguous, several {suffix} members: {', '.join(names)}")


__all__ = ["Scan", "assemble_classic", "assemble_full", "needed", "verify", "verify_digest", "verify_read_so_far"]
