"""How a classifier's logits become answers: softmax over the classes, or a sigmoid per class.

Recorded in the manifest (`core.manifest`, format 3 for a sigmoid head) and applied by `core.classify`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdavision.core.errors import ArtifactError


@dataclass(frozen=True)
class Head:
    """How logits become answers: softmax over the classes (one label), or a sigmoid per class and
    every class over `threshold` (fastai's multi-label `BCEWithLogitsLossFlat`)."""

    activation: str = "softmax"
    threshold: float | None = None

    @property
    def multi_label(self) -> bool:
        return self.activation == "sigmoid"

    def to_dict(self) -> dict[str, Any]:
        if self.multi_label:
            return {"activation": self.activation, "threshold": self.threshold}
        return {"activation": self.activation}

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> Head:
        where = f"{where}: head"
        if not isinstance(raw, Mapping):
            raise ArtifactError(f"{where}: must be an object, got {type(raw).__name__}")
        activation = raw.get("activation")
        if activation == "softmax":
            return cls()
        if activation != "sigmoid":
            raise ArtifactError(f"{where}: activation must be 'softmax' or 'sigmoid', got {activation!r}")
        threshold = raw.get("threshold")
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 < threshold < 1:
            raise ArtifactError(f"{where}: a sigmoid head needs a threshold between 0 and 1, got {threshold!r}")
        return cls("sigmoid", float(threshold))


def sigmoid_head(threshold: float) -> Head:
    if not (isinstance(threshold, (int, float)) and 0 < threshold < 1 and math.isfinite(threshold)):
        raise ValueError(f"the threshold must be between 0 and 1, got {threshold!r}")
    return Head("sigmoid", float(threshold))


__all__ = ["Head", "sigmoid_head"]
