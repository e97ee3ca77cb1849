"""torch / fastai / torchvision model -> `model.tar.gz` with ONNX, TorchScript and the manifest.

Every export checks, on a batch of random inputs, that ONNX Runtime (and the TorchScript copy)
give the model's own logits. A fastai Learner or a model with torchvision transforms also carries
its own inference pipeline into the manifest, and is checked on photos: lambdavision's serving
path against `learn.predict` / the model with its transforms (`lambdavision.export.check`).
Nothing is written unless every check passes.
"""

from __future__ import annotations

import copy
import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lambdavision.core.artifact import Manifest, read_artifact, write_artifact
from lambdavision.core.manifest import Head
from lambdavision.core.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from lambdavision.export.check import CHECK_TOLERANCE, ReadModel, check_photos
from lambdavision.export.torch_onnx import (
    ExportError,
    check_batch,
    check_onnx,
    check_width,
    export_extra,
    first_line,
    forward,
    import_torch,
    onnx_dynamo,
    onnx_torchscript,
    quiet_torch,
    require_agreement,
    trace,
)
from lambdavision.onnx_weights import split_weights

Triple = tuple[float, float, float]


def export(
    model_or_learner: Any,
    classes: Sequence[str] | None = None,
    out_path: str | Path = "model.tar.gz",
    input_size: int | None = None,
    resize_size: int | None = None,
    mean: Triple | None = None,
    std: Triple | None = None,
    torchscript: bool = False,
    check_batch: int = 8,
    extra: dict[str, Any] | None = None,
    *,
    transforms: Any = None,
    check_images: str | Path | None = None,
    tolerance: float = CHECK_TOLERANCE,
) -> Manifest:
    """Export a fastai `Learner`, a torch model with its torchvision `transforms`, or a bare torch model.

    - A fastai Learner: its model, vocabulary, predict-time transforms and head are read
      (`lambdavision.export.fastai_reader`); what cannot be recorded is refused.
    - `transforms=weights.transforms()` (or a `transforms.Compose`): torchvision's pipeline.
    - Otherwise the classic preprocessing: Resize(`resize_size`, default `input_size` x 256/224),
      CenterCrop(`input_size`, default 224), `mean`/`std` (default ImageNet's). A duck-typed
      learner (`.model` plus `.dls.vocab` or `.data.classes`) gives its vocabulary as the classes.

    The first two are checked on photos (`check_images`, a folder; default: generated ones)
    against the library's own answers within `tolerance` (max |Δp|).
    """
    from lambdavision.export.fastai_reader import is_fastai_learner, read_learner

    torch = import_torch()
    classic = {"input_size": input_size, "resize_size": resize_size, "mean": mean, "std": std}
    read: ReadModel | None = None
    if is_fastai_learner(model_or_learner):
        _refuse_classic_args(classic, "a fastai Learner carries its own preprocessing")
        if transforms is not None:
            raise ExportError("a fastai Learner carries its own transforms: leave transforms= out")
        read = read_learner(model_or_learner)
    elif transforms is not None:
        from lambdavision.export.torchvision_reader import read_transforms

        _refuse_classic_args(classic, "transforms= gives the preprocessing")
        module, _ = _unwrap(model_or_learner, torch)
        model = copy.deepcopy(module).cpu().eval()
        read = read_transforms(model, transforms)
    if read is not None:
        class_list = _class_list(classes if classes is not None else read.classes or None)
        model, preprocessing, head = read.model, read.preprocessing, read.head
        read = dataclasses.replace(read, classes=class_list)
    else:
        model, learner_classes = _unwrap(model_or_learner, torch)
        class_list = _class_list(classes if classes is not None else learner_classes)
        preprocessing = _preprocessing(
            224 if input_size is None else input_size, resize_size, mean or IMAGENET_MEAN, std or IMAGENET_STD
        )
        head = Head()
    if check_images is not None and read is None:
        raise ExportError("check_images= needs a fastai Learner or transforms=: a bare model has no answers to compare")
    model = copy.deepcopy(model).cpu().eval()  # never move or switch the caller's model
    batch = check_batch_of(torch, check_batch, preprocessing)
    expected = forward(model, batch, torch, "the model")
    check_width(expected, class_list)

    scripted_bytes = trace(model, batch, torch) if torchscript else None
    if scripted_bytes is not None:
        with quiet_torch():
            reloaded = torch.jit.load(io.BytesIO(scripted_bytes), map_location="cpu")
        require_agreement("TorchScript", expected, forward(reloaded, batch, torch, "TorchScript"))

    graph, weights = split_weights(onnx_dynamo(model, batch, torch))
    check_onnx(graph, weights, batch, expected)
    checked: dict[str, Any] = {}
    if read is not None:
        images = None if check_images is None else Path(check_images)
        checked = {**read.extra, "photo_check": check_photos(read, graph, weights, images, tolerance).to_extra()}
    return write_artifact(
        out_path,
        classes=class_list,
        preprocessing=preprocessing,
        onnx=graph,
        onnx_data=weights,
        torchscript=scripted_bytes,
        extra={**export_extra(graph, "dynamo", torch), **checked, **(extra or {})},
        head=head,
    )


def export_fastai(
    pickle_path: str | Path,
    out_path: str | Path = "model.tar.gz",
    *,
    torchscript: bool = False,
    check_images: str | Path | None = None,
    tolerance: float = CHECK_TOLERANCE,
) -> Manifest:
    """`learn.export()`'s pickle -> artifact. It UNPICKLES the file: trusted files only."""
    from lambdavision.export.fastai_reader import load_learner

    learn = load_learner(pickle_path)
    return export(learn, out_path=out_path, torchscript=torchscript, check_images=check_images, tolerance=tolerance)


def export_torchscript(
    torchscript_path: str | Path,
    classes_path: str | Path,
    out_path: str | Path,
    input_size: int = 224,
    resize_size: int | None = None,
    mean: Triple = IMAGENET_MEAN,
    std: Triple = IMAGENET_STD,
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
    224, ImageNet statistics) is assumed; a full artifact keeps its own, and its head.
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
        head=artifact.head,
    )


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
    head: Head | None = None,
) -> Manifest:
    """The TorchScript-based path (a loaded `.pth` cannot go through torch.export)."""
    torch = import_torch()
    class_list = _class_list(classes)
    try:
        with quiet_torch():
            module = torch.jit.load(io.BytesIO(scripted_bytes), map_location="cpu")
    except Exception as exc:
        raise ExportError(f"{where}: not a TorchScript model torch can load ({first_line(exc)})") from exc
    module.eval()
    batch = check_batch_of(torch, check_batch, preprocessing)
    expected = forward(module, batch, torch, where)
    check_width(expected, class_list)
    graph, weights = split_weights(onnx_torchscript(module, batch, torch))
    check_onnx(graph, weights, batch, expected)
    return write_artifact(
        out_path,
        classes=class_list,
        preprocessing=preprocessing,
        onnx=graph,
        onnx_data=weights,
        torchscript=scripted_bytes if keep_torchscript else None,
        torchscript_name=torchscript_name,
        extra=export_extra(graph, "torchscript", torch),
        head=head,
    )


def check_batch_of(torch: Any, size: int, preprocessing: Preprocessing) -> Any:
    return check_batch(torch, size, preprocessing.input_shape)


def _refuse_classic_args(given: dict[str, Any], why: str) -> None:
    named = [name for name, value in given.items() if value is not None]
    if named:
        raise ExportError(f"{why}: leave {', '.join(named)} out")


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


def _preprocessing(input_size: int, resize_size: int | None, mean: Triple, std: Triple) -> Preprocessing:
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


__all__ = ["convert", "export", "export_fastai", "export_torchscript"]
