"""Static int8 quantisation of an artifact's ONNX model (onnxruntime's quantiser, the `[export]` extra).

`load_image_dir` preprocesses a folder of images exactly as serving does, `split_held_out` keeps
some of them back, and `quantize_int8` calibrates on the rest, then writes the int8 artifact only
if its top-1 answers agree with the float model's on the held-out images; `QuantizeReport` says
what that bought (size, speed) and cost (agreement). onnxruntime is imported inside the functions.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lambdavision.core.artifact import Manifest
from lambdavision.core.errors import ExportError, LambdaVisionError
from lambdavision.core.preprocess import Preprocessing
from lambdavision.export import first_line, quiet_torch
from lambdavision.onnx_weights import join_weights, split_weights
from lambdavision.runtime.artifact_files import read_artifact, write_artifact


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

    float_model = join_weights(artifact.onnx, artifact.onnx_data)
    int8 = _quantize_static(float_model, np.stack(calibration))
    held = np.stack(held_out)
    float_session, int8_session = _session(float_model), _session(int8)
    float_top1 = _top1(float_session, held)
    int8_top1 = _top1(int8_session, held)
    agreement = float((float_top1 == int8_top1).mean())
    report = QuantizeReport(
        float_bytes=len(float_model),
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
    int8_graph, int8_weights = split_weights(int8)
    manifest = write_artifact(
        out_path,
        classes=artifact.classes,
        preprocessing=artifact.preprocessing,
        onnx=int8_graph,
        onnx_data=int8_weights,
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

    with tempfile.TemporaryDirectory(prefix="lambdavision-int8-") as tmp, quiet_torch():
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
            raise ExportError(f"int8 quantisation failed: {first_line(exc)}") from exc
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


__all__ = [
    "IMAGE_SUFFIXES",
    "QuantizeReport",
    "load_image_dir",
    "quantize_int8",
    "split_held_out",
]
