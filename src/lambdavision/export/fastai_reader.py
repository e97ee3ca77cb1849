"""A fastai Learner -> its model, vocabulary, inference pipeline and head, as `learn.predict` uses them.

`learn.predict(item)` runs the validation DataLoader's transforms (`dls.valid`): `after_item` on the
PIL image (Resize, ...; then ToTensor) and `after_batch` on the tensor (IntToFloatTensor, then
Normalize). A transform whose `split_idx` is 0 runs only on the training set and is skipped, as
fastai skips it. Every other transform must be one the manifest can record; anything else (a
custom transform, a resize done on the batch by `aug_transforms(size=...)`, a grey-scale input)
is refused with its name and what to do, never dropped. The head comes from the loss function's
own `activation` and `decodes`: softmax + argmax, or sigmoid + threshold (multi-label).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lambdavision.core.errors import ExportError
from lambdavision.core.head import Head, sigmoid_head
from lambdavision.core.preprocess import Preprocessing
from lambdavision.core.steps import FastaiCropPad, FastaiResize, Step
from lambdavision.export.check import ReadModel
from lambdavision.export.compat import import_fastai_learner
from lambdavision.export.torch_onnx import first_line

# Pillow's resampling constants (what fastai's `resamples` holds) by name.
_PIL_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
_FIX = "remove it before `learn.export()` (or give it split_idx=0 so it runs on the training set only)"


def is_fastai_learner(obj: Any) -> bool:
    """True for a real fastai `Learner` (fastai is then already imported; never imported here)."""
    import sys

    learner_module = sys.modules.get("fastai.learner")
    return learner_module is not None and isinstance(obj, learner_module.Learner)


def load_learner(path: str | Path) -> Any:
    """`fastai.learner.load_learner(path, cpu=True)`. It UNPICKLES: trusted files only."""
    learner_module = import_fastai_learner()
    try:
        return learner_module.load_learner(path, cpu=True)
    except FileNotFoundError as exc:
        raise ExportError(f"{path}: no such file") from exc
    except Exception as exc:
        raise ExportError(f"{path}: not a fastai Learner fastai can load ({first_line(exc)})") from exc


def read_learner(learn: Any) -> ReadModel:
    """What `learn.predict` does, or an ExportError naming what cannot be recorded."""
    import torch
    from fastai.data.transforms import IntToFloatTensor, Normalize, ToTensor
    from fastai.vision import augment

    dls = learn.dls
    if getattr(dls, "n_inp", 1) != 1:
        raise ExportError(f"the Learner's DataLoaders take {dls.n_inp} inputs; lambdavision serves one image")
    valid = dls.valid
    steps: list[Step] = []
    divisor: float | None = None
    mean = std = None
    for stage in ("after_item", "before_batch", "after_batch"):
        for tfm in getattr(valid, stage).fs:
            name = type(tfm).__name__
            if getattr(tfm, "split_idx", None) == 0:
                continue  # training-only augmentation: learn.predict skips it too
            if isinstance(tfm, augment.Resize):
                steps.append(_resize(tfm))
            elif isinstance(tfm, augment.RandomResizedCrop):
                steps.extend(_random_resized_crop(tfm))
            elif isinstance(tfm, (augment.CropPad, augment.RandomCrop)):
                steps.append(FastaiCropPad(_hw(tfm.size), str(getattr(tfm, "pad_mode", "zeros"))))
            elif isinstance(tfm, ToTensor):
                continue
            elif isinstance(tfm, IntToFloatTensor):
                divisor = _divisor(tfm)
            elif isinstance(tfm, Normalize):
                mean, std = _stats(tfm, torch)
            elif isinstance(tfm, augment.AffineCoordTfm) and getattr(tfm, "size", None) is None:
                continue  # at predict time an identity affine (flip, rotate, zoom, warp all off)
            elif isinstance(tfm, (augment.AffineCoordTfm, augment.RandomResizedCropGPU)):
                raise ExportError(
                    f"the Learner's batch transform {name} resizes the image on the batch at predict time "
                    "(aug_transforms(size=...) or RandomResizedCropGPU), which lambdavision cannot record: "
                    "put the size in item_tfms=Resize(...) and call aug_transforms() without size"
                )
            else:
                raise ExportError(
                    f"the Learner's {stage} transform {name} runs at predict time and lambdavision cannot record "
                    f"it in the manifest: {_FIX}"
                )
    if not steps:
        raise ExportError("the Learner resizes nothing at predict time: give it item_tfms=Resize(size)")
    if divisor is None:
        raise ExportError("the Learner has no IntToFloatTensor in its batch transforms; lambdavision needs one")
    try:
        preprocessing = Preprocessing.pipeline(tuple(steps), mean, std, divisor)
    except ValueError as exc:
        raise ExportError(f"the Learner's transforms cannot be served: {exc}") from None
    classes = _vocab(dls)
    head = _head(learn.loss_func, len(classes), torch)
    _check_rgb_input(learn)
    return ReadModel(
        model=learn.model,
        classes=classes,
        preprocessing=preprocessing,
        head=head,
        reference=lambda path: _predict(learn, path),
        reference_name="learn.predict",
        extra={"source": f"fastai {_fastai_version()} Learner"},
    )


def _check_rgb_input(learn: Any) -> None:
    """fastai opens an item as its input type says: a grey-scale Learner (PILImageBW) is refused."""
    import tempfile

    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="lambdavision-fastai-") as tmp:
        probe = Path(tmp) / "probe.png"
        Image.new("RGB", (48, 32), (120, 60, 30)).save(probe)
        try:
            item = learn.dls.test_dl([probe], num_workers=0).dataset[0][0]
        except Exception as exc:
            raise ExportError(f"the Learner cannot open an image for predict: {first_line(exc)}") from exc
    mode = getattr(item, "mode", None)
    if mode != "RGB":
        raise ExportError(
            f"the Learner opens images as {type(item).__name__} (mode {mode!r}); lambdavision serves RGB models only"
        )


def _hw(size: Any) -> tuple[int, int]:
    """fastai keeps sizes as (width, height); the manifest as (height, width)."""
    return (int(size[1]), int(size[0]))


def _resample(tfm: Any) -> str:
    mode = getattr(tfm, "mode", 2)
    if mode not in _PIL_RESAMPLE:
        raise ExportError(f"the Learner's {type(tfm).__name__} resamples with {mode!r}, not a Pillow filter")
    return _PIL_RESAMPLE[mode]


def _resize(tfm: Any) -> FastaiResize:
    method, pad_mode = str(tfm.method), str(tfm.pad_mode)
    if method not in ("crop", "squish", "pad") or pad_mode not in ("zeros", "reflection", "border"):
        raise ExportError(
            f"the Learner's Resize has method {method!r} / pad_mode {pad_mode!r}, unknown to lambdavision"
        )
    return FastaiResize(_hw(tfm.size), method, pad_mode, _resample(tfm))


def _random_resized_crop(tfm: Any) -> list[Step]:
    """At predict time fastai's RandomResizedCrop squishes the whole image to the size plus a margin
    (`val_xtra`, rounded up to a multiple of 8), then crops the centre."""
    import math

    width, height = int(tfm.size[0]), int(tfm.size[1])
    xtra = math.ceil(max(width, height) * tfm.val_xtra / 8) * 8
    return [
        FastaiResize((height + xtra, width + xtra), "squish", "zeros", _resample(tfm)),
        FastaiCropPad((height, width), "zeros"),
    ]


def _divisor(tfm: Any) -> float:
    div = getattr(tfm, "div", None)
    if not isinstance(div, (int, float)) or isinstance(div, bool) or not div > 0:
        raise ExportError(f"the Learner's IntToFloatTensor divides by {div!r}; lambdavision needs a positive number")
    return float(div)


def _stats(tfm: Any, torch: Any) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    if tfm.mean is None or tfm.std is None:
        raise ExportError("the Learner's Normalize has no statistics yet (build the DataLoaders before exporting)")
    mean = torch.as_tensor(tfm.mean).detach().cpu().double().flatten().tolist()
    std = torch.as_tensor(tfm.std).detach().cpu().double().flatten().tolist()
    if len(mean) != 3 or len(std) != 3 or tuple(getattr(tfm, "axes", (0, 2, 3))) != (0, 2, 3):
        raise ExportError(
            f"the Learner's Normalize is not per channel over 3 channels (mean {mean}, std {std}); "
            "lambdavision records Normalize.from_stats(mean, std) with 3 values each"
        )
    return (mean[0], mean[1], mean[2]), (std[0], std[1], std[2])


def _vocab(dls: Any) -> list[str]:
    vocab = getattr(dls, "vocab", None)
    if vocab is None:
        raise ExportError("the Learner's DataLoaders have no vocab: lambdavision serves classifiers")
    names = list(vocab)
    if any(hasattr(n, "__len__") and not isinstance(n, str) for n in names):  # one CategoryMap per target
        raise ExportError("the Learner has several vocabularies (several targets); lambdavision serves one")
    return [str(n) for n in names]


def _head(loss_func: Any, width: int, torch: Any) -> Head:
    """Softmax + argmax, or sigmoid + threshold, told apart by what the loss function really does."""
    name = type(loss_func).__name__
    activation = getattr(loss_func, "activation", None)
    decodes = getattr(loss_func, "decodes", None)
    if activation is None or decodes is None:
        raise ExportError(
            f"the Learner's loss function {name} has no activation/decodes, so learn.predict answers raw "
            "scores; use CrossEntropyLossFlat (one label) or BCEWithLogitsLossFlat (multi-label)"
        )
    order = torch.randperm(max(width, 2), generator=torch.Generator().manual_seed(0))
    probe = torch.linspace(-3.0, 2.5, max(width, 2))[order].reshape(1, -1)
    with torch.no_grad():
        probs = activation(probe)
        decoded = decodes(probs)
    if torch.allclose(probs, torch.softmax(probe, dim=-1), atol=1e-6) and torch.equal(
        torch.as_tensor(decoded).long().flatten(), probe.argmax(dim=-1).flatten()
    ):
        return Head()
    threshold = getattr(loss_func, "thresh", None)
    if (
        torch.allclose(probs, torch.sigmoid(probe), atol=1e-6)
        and isinstance(threshold, (int, float))
        and 0 < threshold < 1
        and torch.equal(torch.as_tensor(decoded).bool(), probs > threshold)
    ):
        return sigmoid_head(float(threshold))
    raise ExportError(
        f"the Learner's loss function {name} turns logits into answers in a way lambdavision cannot record: it "
        "serves softmax + argmax (CrossEntropyLossFlat and kin) or sigmoid + threshold (BCEWithLogitsLossFlat)"
    )


def _predict(learn: Any, path: Path) -> np.ndarray:
    with learn.no_bar(), learn.no_logging():
        _, _, probs = learn.predict(path)
    result: np.ndarray = probs.detach().cpu().double().numpy()
    return result


def _fastai_version() -> str:
    import fastai

    return str(fastai.__version__)
