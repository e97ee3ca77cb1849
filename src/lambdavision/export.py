"""torch / fastai model -> `model.tar.gz` with TorchScript and ONNX (the `[export]` extra).

torch, onnx and onnxruntime are imported inside the functions, so `import lambdavision.export`
costs nothing and a missing torch becomes one clear error. Every export checks, on a batch of
random inputs, that ONNX Runtime (and the TorchScript copy) give the model's own answers before
anything is written.

Two ONNX exporters, because neither covers both cases in torch 2.13:
- a live `nn.Module` goes through the default `torch.export`-based exporter (`dynamo=True`);
- a TorchScript module (a loaded `.pth`, for `convert` and `export --torchscript`) cannot, so it
  goes through the TorchScript-based one (`dynamo=False`, `dynamic_axes`).

int8 quantisation of an exported artifact is in `lambdavision.quantize`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lambdavision.backends import OnnxBackend
from lambdavision.core.artifact import Manifest, read_artifact, write_artifact
from lambdavision.core.errors import LambdaVisionError
from lambdavision.core.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from lambdavision.onnx_weights import split_weights

if TYPE_CHECKING:
    import torch

INSTALL_HINT = "pip install 'lambdavision[export]'"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
_SEED = 20240601


class ExportError(LambdaVisionError):
    """The model cannot be exported, or its exported copies disagree with it; nothing was written."""


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


def export(
    model_or_learner: Any,
    classes: Sequence[str] | None = None,
    out_path: str | Path = "model.tar.gz",
    input_size: int = 224,
    resize_size: int | None = None,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    torchscript: bool = False,
    check_batch: int = 8,
    extra: dict[str, Any] | None = None,
) -> Manifest:
    """Export a `torch.nn.Module` or a fastai-style learner to a full-layout artifact.

    A learner is duck-typed (never imports fastai): `.model` plus `.dls.vocab`, or the older
    `.data.classes`; its vocabulary is the default class list. `resize_size` defaults to the
    ImageNet ratio 256/224 of `input_size`.
    """
    torch = _import_torch()
    model, learner_classes = _unwrap(model_or_learner, torch)
    class_list = _class_list(classes if classes is not None else learner_classes)
    preprocessing = _preprocessing(input_size, resize_size, mean, std)
    model = copy.deepcopy(model).cpu().eval()  # never move or switch the caller's model
    batch = _check_batch(torch, check_batch, input_size)
    expected = _forward(model, batch, torch, "the model")
    _check_width(expected, class_list)

    scripted_bytes = _trace(model, batch, torch) if torchscript else None
    if scripted_bytes is not None:
        with quiet_torch():
            reloaded = torch.jit.load(io.BytesIO(scripted_bytes), map_location="cpu")
        _require_agreement("TorchScript", expected, _forward(reloaded, batch, torch, "TorchScript"))

    return _write_checked(
        _onnx_dynamo(model, batch, torch),
        "dynamo",
        torch,
        batch,
        expected,
        out_path,
        classes=class_list,
        preprocessing=preprocessing,
        torchscript=scripted_bytes,
        extra=extra,
    )


def export_torchscript(
    torchscript_path: str | Path,
    classes_path: str | Path,
    out_path: str | Path,
    input_size: int = 224,
    resize_size: int | None = None,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    torchscript: bool = False,
    check_batch: int = 8,
) -> Manifest:
    """From loose files: an existing TorchScript `.pth` and a class list (one name per line)."""
    pth = Path(torchscript_path)
    classes_file = Path(classes_path)
    try:
        scripted_bytes = pth.read_bytes()
        classes_text = classes_file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExportError(f"{classes_file}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ExportError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    classes = [line.strip() for line in classes_text.splitlines() if line.strip()]
    name = pth.name if pth.suffix == ".pth" else f"{pth.stem}.pth"
    return _export_scripted(
        scripted_bytes,
        name,
        str(pth),
        classes,
        _preprocessing(input_size, resize_size, mean, std),
        out_path,
        keep_torchscript=torchscript,
        check_batch=check_batch,
    )


def convert(old_tar: str | Path, new_tar: str | Path, *, torchscript: bool = False, check_batch: int = 8) -> Manifest:
    """Add ONNX and the manifest to a classic tarball (`.pth` + class list); `torchscript=True` keeps the `.pth`.

    A classic tarball says nothing about preprocessing, so the guide's (Resize 256, CenterCrop
    224, ImageNet statistics) is assumed; a full artifact keeps its own.
    """
    artifact = read_artifact(old_tar, want_torchscript=True)
    if artifact.torchscript is None or artifact.torchscript_name is None:
        raise ExportError(f"{old_tar}: holds no TorchScript (.pth) model to convert")
    return _export_scripted(
        artifact.torchscript,
        artifact.torchscript_name,
        f"{old_tar}: {artifact.torchscript_name}",
        artifact.classes,
        artifact.preprocessing,
        new_tar,
        keep_torchscript=torchscript,
        check_batch=check_batch,
    )


# --- the TorchScript-based path ---------------------------------------------------------------------


def _export_scripted(
    scripted_bytes: bytes,
    torchscript_name: str,
    where: str,
    classes: Sequence[str],
    preprocessing: Preprocessing,
    out_path: str | Path,
    *,
    keep_torchscript: bool,
    check_batch: int,
) -> Manifest:
    torch = _import_torch()
    class_list = _class_list(classes)
    try:
        with quiet_torch():
            module = torch.jit.load(io.BytesIO(scripted_bytes), map_location="cpu")
    except Exception as exc:
        raise ExportError(f"{where}: not a TorchScript model torch can load ({first_line(exc)})") from exc
    module.eval()
    batch = _check_batch(torch, check_batch, preprocessing.input_size)
    expected = _forward(module, batch, torch, where)
    _check_width(expected, class_list)
    return _write_checked(
        _onnx_torchscript(module, batch, torch),
        "torchscript",
        torch,
        batch,
        expected,
        out_path,
        classes=class_list,
        preprocessing=preprocessing,
        torchscript=scripted_bytes if keep_torchscript else None,
        torchscript_name=torchscript_name,
    )


def _write_checked(
    onnx_model: bytes,
    exporter: str,
    torch: Any,
    batch: Any,
    expected: np.ndarray,
    out_path: str | Path,
    *,
    classes: list[str],
    preprocessing: Preprocessing,
    torchscript: bytes | None,
    torchscript_name: str = "model.pth",
    extra: dict[str, Any] | None = None,
) -> Manifest:
    """The artifact, with the weights in model.onnx.data, once ONNX Runtime reproduces the model
    from exactly the graph and weights written."""
    graph, weights = split_weights(onnx_model)
    _check_onnx(graph, weights, batch, expected)
    return write_artifact(
        out_path,
        classes=classes,
        preprocessing=preprocessing,
        onnx=graph,
        onnx_data=weights,
        torchscript=torchscript,
        torchscript_name=torchscript_name,
        extra={**_export_extra(graph, exporter, torch), **(extra or {})},
    )


# --- helpers ----------------------------------------------------------------------------------------


def _import_torch() -> Any:
    try:
        import onnx  # noqa: F401  (both exporters need it)
        import torch
    except ImportError as exc:
        raise ExportError(f"exporting needs torch and onnx ({exc.name} is missing): {INSTALL_HINT}") from exc
    return torch


def _unwrap(obj: Any, torch: Any) -> tuple[Any, list[str] | None]:
    """The `nn.Module` to export and, for a learner, its vocabulary."""
    if isinstance(obj, torch.nn.Module):
        return obj, None
    model = getattr(obj, "model", None)
    if not isinstance(model, torch.nn.Module):
        raise ExportError(
            f"cannot export a {type(obj).__name__}: expected a torch.nn.Module or a fastai-style learner with a .model"
        )
    vocab = getattr(getattr(obj, "dls", None), "vocab", None)
    if vocab is None:
        vocab = getattr(getattr(obj, "data", None), "classes", None)  # fastai v1
    return model, None if vocab is None else [str(c) for c in vocab]


def _class_list(classes: Sequence[str] | None) -> list[str]:
    if classes is None:
        raise ExportError("no class names: pass classes=[...] (or a learner with .dls.vocab)")
    if isinstance(classes, str):
        raise ExportError("classes must be a list of names, not one string")
    return [str(c) for c in classes]


def _preprocessing(
    input_size: int,
    resize_size: int | None,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> Preprocessing:
    if input_size < 8:
        raise ExportError(f"input size {input_size} is too small")
    resize = round(input_size * 256 / 224) if resize_size is None else resize_size
    if resize < input_size:
        raise ExportError(f"resize size {resize} is smaller than the input size {input_size}")
    if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
        raise ExportError("mean and std must be 3 numbers each, std > 0")
    return Preprocessing(
        input_size=input_size,
        resize_size=resize,
        mean=(float(mean[0]), float(mean[1]), float(mean[2])),
        std=(float(std[0]), float(std[1]), float(std[2])),
    )


def _check_batch(torch: Any, size: int, input_size: int) -> Any:
    # At least 2: the dynamo exporter specialises a batch axis of size 1 into a constant.
    generator = torch.Generator().manual_seed(_SEED)
    return torch.randn(max(2, size), 3, input_size, input_size, generator=generator)


def _forward(module: Any, batch: torch.Tensor, torch: Any, what: str) -> np.ndarray:
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


def _check_width(logits: np.ndarray, classes: list[str]) -> None:
    if logits.shape[1] != len(classes):
        raise ExportError(f"the model outputs {logits.shape[1]} logits but there are {len(classes)} class names")


def _trace(model: Any, batch: torch.Tensor, torch: Any) -> bytes:
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


def _onnx_dynamo(model: Any, batch: torch.Tensor, torch: Any) -> bytes:
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


def _onnx_torchscript(module: Any, batch: torch.Tensor, torch: Any) -> bytes:
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


def _check_onnx(graph: bytes, weights: bytes | None, batch: Any, expected: np.ndarray) -> None:
    """ONNX Runtime must reproduce the model, in the form the artifact stores it, on the whole
    batch and on a batch of one (the batch axis must really be dynamic)."""
    inputs = batch.numpy()
    try:
        backend = OnnxBackend(graph, "the exported model", threads=2, weights=weights)
        logits = backend.run(inputs)
        single = backend.run(inputs[:1])
    except Exception as exc:
        raise ExportError(f"ONNX Runtime cannot run the exported model: {first_line(exc)}") from exc
    _require_agreement("ONNX", expected, logits)
    _require_agreement("ONNX (batch of one)", expected[:1], single)


def measure_agreement(expected: np.ndarray, actual: np.ndarray) -> Agreement:
    """Max |Δlogit|, the largest |logit|, and how many samples change their top-1 class."""
    if expected.shape != actual.shape:
        return Agreement(float("inf"), float(np.abs(expected).max()), expected.shape[0])
    return Agreement(
        max_abs_diff=float(np.abs(expected - actual).max()),
        max_abs_logit=float(np.abs(expected).max()),
        top1_mismatches=int((expected.argmax(axis=1) != actual.argmax(axis=1)).sum()),
    )


def _require_agreement(what: str, expected: np.ndarray, actual: np.ndarray) -> Agreement:
    agreement = measure_agreement(expected, actual)
    if not agreement.ok:
        raise ExportError(
            f"{what} copy disagrees with the model, refusing to write the artifact: max |Δlogit| "
            f"{agreement.max_abs_diff:.3g} (tolerance {agreement.tolerance:.3g}), top-1 differs on "
            f"{agreement.top1_mismatches} of {expected.shape[0]} samples"
        )
    return agreement


def _export_extra(onnx_bytes: bytes, exporter: str, torch: Any) -> dict[str, Any]:
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
    "convert",
    "export",
    "export_torchscript",
    "measure_agreement",
]
