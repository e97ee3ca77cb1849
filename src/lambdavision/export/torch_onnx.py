"""torch -> ONNX (and TorchScript), and the checks that the copies give the model's own answers.

torch, onnx and onnxruntime are imported inside the functions, so importing this module costs
nothing and a missing torch becomes one clear error.

Two ONNX exporters, because neither covers both cases in torch 2.13:
- a live `nn.Module` goes through the default `torch.export`-based exporter (`dynamo=True`);
- a TorchScript module (a loaded `.pth`, for `convert` and `export --torchscript`) cannot, so it
  goes through the TorchScript-based one (`dynamo=False`, `dynamic_axes`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lambdavision.core.errors import ExportError
from lambdavision.runtime.backends import OnnxBackend

if TYPE_CHECKING:
    import torch

INSTALL_HINT = "pip install 'lambdavision[export]'"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
_SEED = 20240601


@dataclass(frozen=True)
class Agreement:
    """How closely an exported copy reproduces the model on the check batch."""

    max_abs_diff: float
    max_abs_logit: float
    top1_mismatches: int

    @property
    def tolerance(self) -> float:
        # Relative: a random-weight ResNet-50 reaches logits in the thousands.
        return 1e-4 + 1e-3 * self.max_abs_logit

    @property
    def ok(self) -> bool:
        return self.top1_mismatches == 0 and self.max_abs_diff <= self.tolerance


# --- helpers ----------------------------------------------------------------------------------------


def import_torch() -> Any:
    try:
        import onnx  # noqa: F401  (both exporters need it)
        import torch
    except ImportError as exc:
        raise ExportError(f"exporting needs torch and onnx ({exc.name} is missing): {INSTALL_HINT}") from exc
    return torch


def check_batch(torch: Any, size: int, shape: tuple[int, int]) -> Any:
    # At least 2: the dynamo exporter specialises a batch axis of size 1 into a constant.
    generator = torch.Generator().manual_seed(_SEED)
    return torch.randn(max(2, size), 3, *shape, generator=generator)


def forward(module: Any, batch: torch.Tensor, torch: Any, what: str) -> np.ndarray:
    with torch.no_grad():
        try:
            out = module(batch)
        except Exception as exc:
            raise ExportError(f"{what} fails on a {tuple(batch.shape)} input: {first_line(exc)}") from exc
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != batch.shape[0]:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ExportError(f"{what} must return one (batch, classes) tensor of logits, got {shape}")
    result: np.ndarray = out.detach().float().numpy()
    return result


def check_width(logits: np.ndarray, classes: list[str]) -> None:
    if logits.shape[1] != len(classes):
        raise ExportError(f"the model outputs {logits.shape[1]} logits but there are {len(classes)} class names")


def trace(model: Any, batch: torch.Tensor, torch: Any) -> bytes:
    """torch.jit.trace + torch.jit.save, as the guide does, into bytes."""
    with torch.no_grad(), quiet_torch():
        try:
            traced = torch.jit.trace(model, batch[:2])
        except Exception as exc:
            raise ExportError(f"torch.jit.trace failed: {first_line(exc)}") from exc
    buffer = io.BytesIO()
    with quiet_torch():
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def onnx_dynamo(model: Any, batch: torch.Tensor, torch: Any) -> bytes:
    with tempfile.TemporaryDirectory(prefix="lambdavision-export-") as tmp, quiet_torch():
        path = Path(tmp) / "model.onnx"
        try:
            torch.onnx.export(
                model,
                (batch,),
                str(path),
                dynamo=True,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                external_data=False,  # one self-contained file: a side .onnx.data breaks on rename
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                verbose=False,
            )
        except Exception as exc:
            raise ExportError(f"ONNX export (torch.export-based) failed: {first_line(exc)}") from exc
        return path.read_bytes()


def onnx_torchscript(module: Any, batch: torch.Tensor, torch: Any) -> bytes:
    buffer = io.BytesIO()
    with quiet_torch():
        try:
            torch.onnx.export(
                module,
                (batch,),
                buffer,
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=17,
            )
        except Exception as exc:
            raise ExportError(f"ONNX export (TorchScript-based) failed: {first_line(exc)}") from exc
    return buffer.getvalue()


def check_onnx(graph: bytes, weights: bytes | None, batch: Any, expected: np.ndarray) -> None:
    """ONNX Runtime must reproduce the model, in the form the artifact stores it, on the whole
    batch and on a batch of one (the batch axis must really be dynamic)."""
    inputs = batch.numpy()
    try:
        backend = OnnxBackend(graph, "the exported model", threads=2, weights=weights)
        logits = backend.run(inputs)
        single = backend.run(inputs[:1])
    except Exception as exc:
        raise ExportError(f"ONNX Runtime cannot run the exported model: {first_line(exc)}") from exc
    require_agreement("ONNX", expected, logits)
    require_agreement("ONNX (batch of one)", expected[:1], single)


def measure_agreement(expected: np.ndarray, actual: np.ndarray) -> Agreement:
    """Max |Δlogit|, the largest |logit|, and how many samples change their top-1 class."""
    if expected.shape != actual.shape:
        return Agreement(float("inf"), float(np.abs(expected).max()), expected.shape[0])
    return Agreement(
        max_abs_diff=float(np.abs(expected - actual).max()),
        max_abs_logit=float(np.abs(expected).max()),
        top1_mismatches=int((expected.argmax(axis=1) != actual.argmax(axis=1)).sum()),
    )


def require_agreement(what: str, expected: np.ndarray, actual: np.ndarray) -> Agreement:
    agreement = measure_agreement(expected, actual)
    if not agreement.ok:
        raise ExportError(
            f"{what} copy disagrees with the model, refusing to write the artifact: max |Δlogit| "
            f"{agreement.max_abs_diff:.3g} (tolerance {agreement.tolerance:.3g}), top-1 differs on "
            f"{agreement.top1_mismatches} of {expected.shape[0]} samples"
        )
    return agreement


def export_extra(onnx_bytes: bytes, exporter: str, torch: Any) -> dict[str, Any]:
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"opset": opset, "onnx_exporter": exporter, "torch": str(torch.__version__)}


@contextlib.contextmanager
def quiet_torch() -> Iterator[None]:
    """Hide the exporter's harmless chatter ("torchvision is not installed...", tracer warnings)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch._dynamo", "torch.export")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def first_line(exc: BaseException) -> str:
    """The exception's first line, for one-line errors."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


__all__ = [
    "INSTALL_HINT",
    "Agreement",
    "ExportError",
    "first_line",
    "measure_agreement",
    "quiet_torch",
]
