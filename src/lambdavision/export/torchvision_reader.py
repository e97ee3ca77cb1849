"""torchvision transforms -> a recorded pipeline, so a torchvision user gets torchvision's numbers.

Read: a weights preset (`weights.transforms()`, torchvision's `ImageClassification`: resize the
shorter side, centre crop, to float, Normalize) and the classic `transforms.Compose([Resize,
CenterCrop, ToTensor, Normalize])`. Given a PIL image, as a torchvision user feeds one
(`Image.open(path).convert("RGB")`), torchvision resizes with Pillow in uint8 (its `antialias` only
matters for tensors), which is what the recorded steps repeat. Anything else is refused by name.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from lambdavision.core.errors import ExportError
from lambdavision.core.head import Head
from lambdavision.core.preprocess import Preprocessing
from lambdavision.core.steps import CenterCrop, Resize, Step
from lambdavision.export.check import ReadModel
from lambdavision.export.compat import import_torchvision

# torchvision's InterpolationMode values -> the Pillow filter torchvision uses for a PIL image.
_RESAMPLE = {
    "nearest": "nearest",
    "nearest-exact": "nearest",  # torchvision maps it to Pillow's NEAREST for PIL images
    "bilinear": "bilinear",
    "bicubic": "bicubic",
    "box": "box",
    "hamming": "hamming",
    "lanczos": "lanczos",
}


def read_transforms(model: Any, transforms: Any) -> ReadModel:
    """The preset or Compose as a pipeline; ExportError naming what cannot be recorded."""
    torchvision = import_torchvision()
    from torchvision.transforms import _presets

    if isinstance(transforms, functools.partial):  # `weights.transforms` not yet called
        transforms = transforms()
    t = torchvision.transforms
    if isinstance(transforms, _presets.ImageClassification):
        preprocessing = _pipeline(
            [
                Resize(_one(transforms.resize_size, "resize_size"), None, _resample(transforms.interpolation)),
                CenterCrop(_crop_size(transforms.crop_size)),
            ],
            transforms.mean,
            transforms.std,
        )
    elif isinstance(transforms, t.Compose):
        preprocessing = _compose(transforms, t)
    else:
        raise ExportError(
            f"cannot read transforms of type {type(transforms).__name__}: give a weights preset "
            "(weights.transforms()) or transforms.Compose([Resize, CenterCrop, ToTensor, Normalize])"
        )
    return ReadModel(
        model=model,
        classes=[],
        preprocessing=preprocessing,
        head=Head(),
        reference=lambda path: _reference(model, transforms, path),
        reference_name="the model with its transforms",
        extra={"source": f"torchvision {torchvision.__version__} transforms"},
    )


def _compose(compose: Any, t: Any) -> Preprocessing:
    steps: list[Step] = []
    mean = std = None
    tensor = False
    for tfm in compose.transforms:
        name = type(tfm).__name__
        if isinstance(tfm, t.Resize) and not tensor:
            size = tfm.size
            if isinstance(size, (list, tuple)):
                size = size[0] if len(size) == 1 else (int(size[0]), int(size[1]))
            steps.append(Resize(size, tfm.max_size, _resample(tfm.interpolation)))
        elif isinstance(tfm, t.CenterCrop) and not tensor:
            steps.append(CenterCrop(_crop_size(tfm.size)))
        elif isinstance(tfm, t.ToTensor) and not tensor:
            tensor = True
        elif isinstance(tfm, t.Normalize) and tensor and mean is None:
            mean, std = tuple(tfm.mean), tuple(tfm.std)
        else:
            raise ExportError(
                f"the transform {name} (step {len(steps) + 1} of the Compose) is not one lambdavision records: "
                "it reads Resize, CenterCrop, ToTensor and Normalize, in that order"
            )
    if not tensor:
        raise ExportError("the Compose has no ToTensor; lambdavision records Resize, CenterCrop, ToTensor, Normalize")
    return _pipeline(steps, mean, std)


def _pipeline(steps: list[Step], mean: Any, std: Any) -> Preprocessing:
    stats: list[tuple[float, float, float] | None] = []
    for values in (mean, std):
        if values is None:
            stats.append(None)
            continue
        numbers = [float(v) for v in values]
        if len(numbers) != 3:
            raise ExportError(f"Normalize needs 3 values per statistic (R, G, B), got {numbers}")
        stats.append((numbers[0], numbers[1], numbers[2]))
    try:
        return Preprocessing.pipeline(tuple(steps), stats[0], stats[1], 255.0)
    except ValueError as exc:
        raise ExportError(f"the transforms cannot be served: {exc}") from None


def _one(value: Any, name: str) -> int:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) != 1:
        raise ExportError(f"the preset's {name} is {value!r}; lambdavision reads one number (the shorter side)")
    return int(values[0])


def _crop_size(value: Any) -> tuple[int, int]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    return (int(values[0]), int(values[-1]))


def _resample(mode: Any) -> str:
    value = str(getattr(mode, "value", mode))
    if value not in _RESAMPLE:
        raise ExportError(f"interpolation {mode!r} is not one lambdavision records ({', '.join(_RESAMPLE)})")
    return _RESAMPLE[value]


def _reference(model: Any, transforms: Any, path: Path) -> np.ndarray:
    """torchvision's own answer: the PIL image through the transforms, the model, softmax."""
    import torch
    from PIL import Image

    with Image.open(path) as image:
        batch = transforms(image.convert("RGB"))[None]
    with torch.no_grad():
        result: np.ndarray = torch.softmax(model(batch).double(), dim=-1)[0].numpy()
    return result
