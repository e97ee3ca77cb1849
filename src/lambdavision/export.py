"""torch / fastai model -> `model.tar.gz` with TorchScript and ONNX (the `[export]` extra).

torch, onnx and onnxruntime are imported inside the functions, so `import lambdavision.export`
costs nothing and a missing torch becomes one clear error. Every export checks, on a batch of
random inputs, that ONNX Runtime (and the TorchScript copy) give the model's own answers before
anything is written.

Two ONNX exporters, because neither covers both cases in torch 2.13:
- a live `nn.Module` goes through the default `torch.export`-based exporter (`dynamo=True`);
- a TorchScript module (a loaded `.pth`, for `convert` and `export --torchscript`) cannot, so it
  goes through the TorchScript-based one (`dynamo=False`, `dynamic_axes`).
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

from lambdavision.core.artifact import Manifest, read_artifact, write_artifact
from lambdavision.core.errors import LambdaVisionError
from lambdavision.core.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

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
    torchscript: bool = True,
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
        with _quiet_torch():
            reloaded = torch.jit.load(io.BytesIO(scripted_bytes), map_location="cpu")
        _require_agreement("TorchScript", expected, _forward(reloaded, batch, torch, "TorchScript"))

    onnx_bytes = _onnx_dynamo(model, batch, torch)
    _check_onnx(onnx_bytes, batch, expected)
    return write_artifact(
        out_path,
        classes=class_list,
        preprocessing=preprocessing,
        onnx=onnx_bytes,
        torchscript=scripted_bytes,
        extra={**_export_extra(onnx_bytes, "dynamo", torch), **(extra or {})},
    )


def export_torchscript(
    torchscript_path: str | Path,
    classes_path: str | Path,
    out_path: str | Path,
    input_size: int = 224,
    resize_size: int | None = None,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    torchscript: bool = True,
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


def convert(old_tar: str | Path, new_tar: str | Path, *, torchscript: bool = True, check_batch: int = 8) -> Manifest:
    """Add ONNX and the manifest to a classic tarball (`.pth` + class list), keeping the `.pth`.

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
        with _quiet_torch():
            module = torch.jit.load(io.BytesIO(scripted_bytes), map_location="cpu")
    except Exception as exc:
        raise ExportError(f"{where}: not a TorchScript model torch can load ({_first_line(exc)})") from exc
    module.eval()
    batch = _check_batch(torch, check_batch, preprocessing.input_size)
    expected = _forward(module, batch, torch, where)
    _check_width(expected, class_list)
    onnx_bytes = _onnx_torchscript(module, batch, torch)
    _check_onnx(onnx_bytes, batch, expected)
    return write_artifact(
        out_path,
        classes=class_list,
        preprocessing=preprocessing,
        onnx=onnx_bytes,
        torchscript=scripted_bytes if keep_torchscript else None,
        torchscript_name=torchscript_name,
        extra=_export_extra(onnx_bytes, "torchscript", torch),
    )


# --- int8 quantisation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuantizeReport:
    """What int8 quantisation bought and cost, measured here on the held-out images."""

    float_bytes: int
    int8_bytes: int
    float_ms: float  # median per image, batch of one, this machine
    int8_ms: float
    agreement: float  # share of held-out images whose top-1 class is unchanged
    held_out: int
    calibration: int

    def lines(self) -> list[str]:
        return [
            f"size: {self.float_bytes / 1e6:.3g} MB float -> {self.int8_bytes / 1e6:.3g} MB int8 "
            f"({self.float_bytes / max(1, self.int8_bytes):.1f}x smaller)",
            f"speed (batch of 1, this machine): {self.float_ms:.3g} ms float -> {self.int8_ms:.3g} ms int8 "
            f"({self.float_ms / max(1e-9, self.int8_ms):.2f}x)",
            f"top-1 agreement with the float model: {self.agreement:.2%} of {self.held_out} held-out images "
            f"(calibrated on {self.calibration})",
        ]


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")


def load_image_dir(directory: str | Path, preprocessing: Preprocessing) -> list[np.ndarray]:
    """Every image in `directory` (sorted by name), preprocessed exactly as serving does."""
    from lambdavision.core.preprocess import preprocess

    folder = Path(directory)
    if not folder.is_dir():
        raise ExportError(f"{folder}: not a directory of images")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    inputs = []
    for path in paths:
        try:
            inputs.append(preprocess(path.read_bytes(), preprocessing))
        except LambdaVisionError as exc:
            raise ExportError(f"{path}: {exc.message}") from exc
    return inputs


def split_held_out(inputs: Sequence[np.ndarray], every: int = 5) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Deterministic split: every `every`-th input is held out to judge agreement, the rest calibrate."""
    calibration = [x for i, x in enumerate(inputs) if i % every != every - 1]
    held_out = [x for i, x in enumerate(inputs) if i % every == every - 1]
    return calibration, held_out


def quantize_int8(
    artifact_path: str | Path,
    out_path: str | Path,
    calibration: Sequence[np.ndarray],
    held_out: Sequence[np.ndarray],
    *,
    min_agreement: float = 0.99,
    torchscript: bool = True,
) -> tuple[Manifest, QuantizeReport]:
    """Static int8 quantisation of an artifact's ONNX model (QDQ, u8 activations, s8 per-channel
    weights, MinMax calibration), refused if top-1 agreement on `held_out` is below `min_agreement`.

    Inputs are preprocessed (3, H, W) float32 arrays (see `load_image_dir`). Static, not dynamic:
    dynamic quantisation was ~4x slower than float on conv nets here.
    """
    if len(calibration) < 1 or len(held_out) < 1:
        raise ExportError("int8 quantisation needs calibration images and held-out images (at least 1 each)")
    artifact = read_artifact(artifact_path, want_torchscript=torchscript)
    if artifact.onnx is None:
        raise ExportError(f"{artifact.source}: has no model.onnx to quantise; run `lambdavision convert` first")
    extra = dict(artifact.manifest.extra) if artifact.manifest is not None else {}
    if extra.get("quantized"):
        raise ExportError(f"{artifact.source}: is already quantised ({extra['quantized']})")

    int8 = _quantize_static(artifact.onnx, np.stack(calibration))
    held = np.stack(held_out)
    float_session, int8_session = _session(artifact.onnx), _session(int8)
    float_top1 = _top1(float_session, held)
    int8_top1 = _top1(int8_session, held)
    agreement = float((float_top1 == int8_top1).mean())
    report = QuantizeReport(
        float_bytes=len(artifact.onnx),
        int8_bytes=len(int8),
        float_ms=_median_ms(float_session, held[:1]),
        int8_ms=_median_ms(int8_session, held[:1]),
        agreement=agreement,
        held_out=len(held_out),
        calibration=len(calibration),
    )
    if agreement < min_agreement:
        raise ExportError(
            f"int8 model agrees with the float model on only {agreement:.2%} of {len(held_out)} held-out "
            f"images (minimum {min_agreement:.2%}); not writing it"
        )
    extra.pop("exported_by", None)
    extra.update(
        quantized="int8",
        quantization={
            "format": "QDQ",
            "activations": "uint8",
            "weights": "int8 per-channel",
            "calibration_images": len(calibration),
            "held_out_images": len(held_out),
            "top1_agreement": round(agreement, 4),
        },
    )
    manifest = write_artifact(
        out_path,
        classes=artifact.classes,
        preprocessing=artifact.preprocessing,
        onnx=int8,
        torchscript=artifact.torchscript if torchscript else None,
        torchscript_name=artifact.torchscript_name or "model.pth",
        extra=extra,
    )
    return manifest, report


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over an (N, 3, H, W) array."""

    def __init__(self, input_name: str, inputs: np.ndarray, batch: int = 16) -> None:
        self._feeds = iter([{input_name: inputs[i : i + batch]} for i in range(0, len(inputs), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _quantize_static(onnx_bytes: bytes, calibration: np.ndarray) -> bytes:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="lambdavision-int8-") as tmp, _quiet_torch():
        float_path, pre_path, int8_path = (Path(tmp) / n for n in ("float.onnx", "pre.onnx", "int8.onnx"))
        float_path.write_bytes(onnx_bytes)
        try:
            quant_pre_process(str(float_path), str(pre_path))  # shape inference + graph fusions first
        except Exception:  # an optimisation only: quantise the model as it is
            pre_path = float_path
        input_name = _session(onnx_bytes).get_inputs()[0].name
        try:
            quantize_static(
                str(pre_path),
                str(int8_path),
                _Batches(input_name, calibration),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                calibrate_method=CalibrationMethod.MinMax,
            )
        except Exception as exc:
            raise ExportError(f"int8 quantisation failed: {_first_line(exc)}") from exc
        return int8_path.read_bytes()


def _session(onnx_bytes: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def _top1(session: Any, inputs: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    tops = [session.run(None, {name: inputs[i : i + 64]})[0].argmax(axis=1) for i in range(0, len(inputs), 64)]
    return np.concatenate(tops)


def _median_ms(session: Any, one: np.ndarray, runs: int = 20) -> float:
    import time

    name = session.get_inputs()[0].name
    session.run(None, {name: one})  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, {name: one})
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


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
            raise ExportError(f"{what} fails on a {tuple(batch.shape)} input: {_first_line(exc)}") from exc
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
    with torch.no_grad(), _quiet_torch():
        try:
            traced = torch.jit.trace(model, batch[:2])
        except Exception as exc:
            raise ExportError(f"torch.jit.trace failed: {_first_line(exc)}") from exc
    buffer = io.BytesIO()
    with _quiet_torch():
        torch.jit.save(traced, buffer)
    return buffer.getvalue()


def _onnx_dynamo(model: Any, batch: torch.Tensor, torch: Any) -> bytes:
    with tempfile.TemporaryDirectory(prefix="lambdavision-export-") as tmp, _quiet_torch():
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
            raise ExportError(f"ONNX export (torch.export-based) failed: {_first_line(exc)}") from exc
        return path.read_bytes()


def _onnx_torchscript(module: Any, batch: torch.Tensor, torch: Any) -> bytes:
    buffer = io.BytesIO()
    with _quiet_torch():
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
            raise ExportError(f"ONNX export (TorchScript-based) failed: {_first_line(exc)}") from exc
    return buffer.getvalue()


def _check_onnx(onnx_bytes: bytes, batch: Any, expected: np.ndarray) -> None:
    """ONNX Runtime must reproduce the model on the whole batch and on a batch of one (the batch
    axis must really be dynamic)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    inputs = batch.numpy()
    try:
        session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        logits: np.ndarray = session.run(None, {name: inputs})[0]
        single: np.ndarray = session.run(None, {name: inputs[:1]})[0]
    except Exception as exc:
        raise ExportError(f"ONNX Runtime cannot run the exported model: {_first_line(exc)}") from exc
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
def _quiet_torch() -> Iterator[None]:
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


__all__ = [
    "INSTALL_HINT",
    "Agreement",
    "ExportError",
    "QuantizeReport",
    "convert",
    "export",
    "export_torchscript",
    "load_image_dir",
    "measure_agreement",
    "quantize_int8",
    "split_held_out",
]
