"""Classifier = preprocessing + a backend that maps a batch to logits; the head (softmax, or sigmoid +
threshold for a multi-label model) and top-k.

The backend is any object with `run(batch) -> logits` and `output_width` (ONNX Runtime or
TorchScript, see lambdavision.runtime.backends); this module never imports either.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from lambdavision.core.decode import DEFAULT_MEMORY_BUDGET, MemoryBudget
from lambdavision.core.errors import ArtifactError, BadRequest, LambdaVisionError
from lambdavision.core.head import Head
from lambdavision.core.preprocess import DEFAULT_MAX_PIXELS, Preprocessing, preprocess


class Backend(Protocol):
    """What the Classifier needs from an inference engine."""

    name: str

    @property
    def output_width(self) -> int | None:
        """Number of logits per sample, when the model declares it."""
        ...

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, classes) logits."""
        ...


@dataclass(frozen=True)
class Prediction:
    """Top class and top-k, as plain Python types (numpy floats do not serialise in Lambda)."""

    label: str
    confidence: float
    top: list[tuple[str, float]]
    # Multi-label heads only: every class whose probability is over the threshold, highest first.
    labels: list[tuple[str, float]] | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "class": self.label,
            "confidence": self.confidence,
            "predictions": [{"class": c, "confidence": p} for c, p in self.top],
        }
        if self.labels is not None:
            out["labels"] = [{"class": c, "confidence": p} for c, p in self.labels]
            out["threshold"] = self.threshold
        return out


@dataclass
class Timings:
    """Milliseconds spent per stage of one request (Server-Timing, logs, benchmarks)."""

    fetch_ms: float = 0.0
    decode_ms: float = 0.0
    inference_ms: float = 0.0
    image_sizes: list[tuple[int, int]] = field(default_factory=list)  # original (width, height) of each image


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return result


def sigmoid(logits: np.ndarray) -> np.ndarray:
    # exp of a negative magnitude only: no overflow warning for logits in the thousands.
    e = np.exp(-np.abs(logits))
    result: np.ndarray = np.where(logits >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return result


def probabilities(logits: np.ndarray, head: Head) -> np.ndarray:
    """(N, classes) logits -> what the head answers: softmax rows, or independent sigmoids."""
    return sigmoid(logits) if head.multi_label else softmax(logits)


class Classifier:
    """Classifies image bytes with a loaded model."""

    def __init__(
        self,
        classes: Sequence[str],
        preprocessing: Preprocessing,
        backend: Backend,
        source: str = "model",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        head: Head | None = None,
    ) -> None:
        width = backend.output_width
        if width is not None and width != len(classes):
            raise ArtifactError(
                f"{source}: the class list has {len(classes)} names but the model outputs {width} scores"
            )
        if not classes:
            raise ArtifactError(f"{source}: the class list is empty")
        self.classes = list(classes)
        self.preprocessing = preprocessing
        self.backend = backend
        self.source = source
        self.max_pixels = max_pixels
        self.memory_budget = memory_budget
        self.head = head or Head()

    def check_topk(self, topk: int) -> int:
        if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
            raise BadRequest("topk must be a positive integer")
        return min(topk, len(self.classes))

    def preprocess(
        self, data: bytes, sizes: list[tuple[int, int]] | None = None, budget: MemoryBudget | None = None
    ) -> np.ndarray:
        return preprocess(data, self.preprocessing, self.max_pixels, sizes, budget)

    def request_budget(self, images: Sequence[bytes | LambdaVisionError]) -> MemoryBudget:
        """The memory budget of one request, already charged with its images' bytes (all held at once)."""
        budget = MemoryBudget(self.memory_budget)
        budget.charge(sum(len(i) for i in images if isinstance(i, bytes)), "holding this request's images")
        return budget

    def predict_arrays(self, batch: np.ndarray, topk: int = 3) -> list[Prediction]:
        """(N, 3, H, W) normalised inputs -> one Prediction each, in one forward pass."""
        k = self.check_topk(topk)
        logits = np.asarray(self.backend.run(batch), dtype=np.float64)
        if logits.ndim != 2 or logits.shape[1] != len(self.classes):
            raise ArtifactError(
                f"{self.source}: the model answered shape {logits.shape}, expected (N, {len(self.classes)})"
            )
        probs = probabilities(logits, self.head)
        results = []
        threshold = self.head.threshold
        for row in probs:
            order = np.argsort(-row, kind="stable")
            top = [(self.classes[int(i)], float(row[int(i)])) for i in order[:k]]
            labels = None
            if threshold is not None:  # fastai's decodes: probability > threshold, strictly
                labels = [(self.classes[int(i)], float(row[int(i)])) for i in order if row[int(i)] > threshold]
            results.append(Prediction(top[0][0], top[0][1], top, labels, threshold))
        return results

    def classify(self, images: Sequence[bytes], topk: int = 3, timings: Timings | None = None) -> list[Prediction]:
        """Image bytes -> predictions; the first bad image raises its error."""
        started = time.perf_counter()
        sizes = timings.image_sizes if timings is not None else None
        budget = self.request_budget(images)
        batch = np.stack([self.preprocess(data, sizes, budget) for data in images])
        decoded = time.perf_counter()
        results = self.predict_arrays(batch, topk)
        if timings is not None:
            timings.decode_ms += (decoded - started) * 1000
            timings.inference_ms += (time.perf_counter() - decoded) * 1000
        return results

    def classify_each(
        self, images: Sequence[bytes | LambdaVisionError], topk: int = 3, timings: Timings | None = None
    ) -> list[Prediction | LambdaVisionError]:
        """A batch where each image succeeds or fails on its own; good ones share one forward."""
        started = time.perf_counter()
        inputs: list[np.ndarray] = []
        slots: list[int] = []
        results: list[Prediction | LambdaVisionError | None] = []
        budget = self.request_budget(images)
        for index, item in enumerate(images):
            if isinstance(item, LambdaVisionError):
                results.append(item)
                continue
            try:
                inputs.append(self.preprocess(item, timings.image_sizes if timings is not None else None, budget))
            except LambdaVisionError as exc:
                results.append(exc)
                continue
            slots.append(index)
            results.append(None)  # filled by the shared forward pass below
        decoded = time.perf_counter()
        if inputs:
            for slot, prediction in zip(slots, self.predict_arrays(np.stack(inputs), topk), strict=True):
                results[slot] = prediction
        if timings is not None:
            timings.decode_ms += (decoded - started) * 1000
            timings.inference_ms += (time.perf_counter() - decoded) * 1000
        return [r for r in results if r is not None]
