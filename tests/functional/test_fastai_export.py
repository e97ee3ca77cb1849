"""Real fastai Learners and a torchvision model: exported with their own pipelines, served through
the handler in a process without torch, and compared with `learn.predict` / the model with its
transforms on non-square JPEG and PNG photos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from lambdavision.cli import cli
from lambdavision.core.errors import ExportError
from lambdavision.core.steps import CenterCrop, FastaiCropPad, FastaiResize, Resize
from lambdavision.export import export, export_fastai
from lambdavision.export.photos import photo, write_check_photos
from lambdavision.runtime.artifact_files import read_artifact
from tests.fixtures.fastai_models import Trained, serve_without_torch

MAX_DP = 0.02


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The export check's photos plus two it never saw: a 1920x1080 JPEG and a 333x500 PNG."""
    folder = tmp_path_factory.mktemp("photos")
    paths = write_check_photos(folder)
    photo(1920, 1080, seed=101).save(folder / "hd.jpg", quality=85)
    photo(333, 500, seed=102).save(folder / "odd-portrait.png")
    return [*paths, folder / "hd.jpg", folder / "odd-portrait.png"]


def learner_probs(learn: Any, path: Path) -> np.ndarray:
    with learn.no_bar(), learn.no_logging():
        _, _, probs = learn.predict(path)
    result: np.ndarray = probs.double().numpy()
    return result


def served_probs(answer: dict[str, Any], classes: list[str]) -> np.ndarray:
    assert answer["status"] == 200, answer
    by_class = {p["class"]: p["confidence"] for p in answer["predictions"]}
    return np.array([by_class[c] for c in classes])


def assert_served_like(trained: Trained, photos: list[Path], reference: Any) -> float:
    """Same top-1 (multi-label: same labels) on every photo, max |Δp| <= 0.02; returns max |Δp|."""
    artifact = read_artifact(trained.artifact)
    answers = serve_without_torch(trained.artifact, photos)
    worst = 0.0
    for path in photos:
        expected = reference(path)
        served = served_probs(answers[str(path)], artifact.classes)
        if artifact.head.multi_label:
            threshold = artifact.head.threshold
            assert threshold is not None
            labels = {c["class"] for c in answers[str(path)]["labels"]}
            assert labels == {c for c, p in zip(artifact.classes, expected, strict=True) if p > threshold}, path.name
        else:
            assert answers[str(path)]["class"] == artifact.classes[int(expected.argmax())], path.name
        worst = max(worst, float(np.abs(served - expected).max()))
    print(f"{trained.name}: max |Δp| {worst:.5f} on {len(photos)} photos")
    assert worst <= MAX_DP
    return worst


@pytest.mark.parametrize("name", ["resnet-crop", "resnet-squish", "resnet-pad", "plain", "multi-label"])
def test_a_learner_is_served_as_learn_predict_answers(
    name: str, fastai_learners: dict[str, Trained], photos: list[Path]
) -> None:
    trained = fastai_learners[name]
    assert_served_like(trained, photos, lambda path: learner_probs(trained.source, path))


def test_torchvision_resnet18_is_served_as_its_preset_answers(torchvision_resnet: Trained, photos: list[Path]) -> None:
    import torch
    from PIL import Image

    model, transforms = torchvision_resnet.source

    def reference(path: Path) -> np.ndarray:
        with torch.no_grad():
            logits = model(transforms(Image.open(path).convert("RGB"))[None])
        result: np.ndarray = torch.softmax(logits.double(), dim=-1)[0].numpy()
        return result

    assert_served_like(torchvision_resnet, photos, reference)
    prep = read_artifact(torchvision_resnet.artifact).preprocessing
    assert prep.steps == (Resize(256, None, "bilinear"), CenterCrop((224, 224)))
    assert prep.mean == pytest.approx((0.485, 0.456, 0.406)) and prep.std == pytest.approx((0.229, 0.224, 0.225))


def test_what_the_manifest_records(fastai_learners: dict[str, Trained]) -> None:
    def manifest(name: str) -> Any:
        artifact = read_artifact(fastai_learners[name].artifact)
        assert artifact.manifest is not None
        assert artifact.manifest.format_version == 3
        return artifact.manifest

    crop = manifest("resnet-crop")
    assert crop.preprocessing.steps == (FastaiResize((224, 224), "crop", "reflection", "bilinear"),)
    assert crop.preprocessing.mean == pytest.approx((0.485, 0.456, 0.406))
    assert crop.extra["photo_check"]["photos"] == 6
    assert crop.extra["photo_check"]["max_abs_dp"] <= 0.02
    assert crop.extra["source"].startswith("fastai 2.8")
    squish = manifest("resnet-squish")
    assert squish.preprocessing.steps == (FastaiResize((160, 160), "squish", "reflection", "bilinear"),)
    assert squish.preprocessing.mean is None and squish.preprocessing.std is None
    assert manifest("resnet-pad").preprocessing.steps == (FastaiResize((96, 128), "pad", "zeros", "bilinear"),)
    assert manifest("resnet-pad").preprocessing.input_shape == (96, 128)
    plain = manifest("plain")
    assert plain.preprocessing.steps == (
        FastaiResize((80, 80), "squish", "zeros", "bilinear"),  # 64 + ceil(64 * 0.14 / 8) * 8
        FastaiCropPad((64, 64), "zeros"),
    )
    assert plain.preprocessing.mean == pytest.approx((0.5, 0.5, 0.5))
    multi = manifest("multi-label")
    assert multi.head.multi_label and multi.head.threshold == pytest.approx(0.4)
    assert crop.head.activation == "softmax"


def test_multi_label_answers_carry_labels_over_the_threshold(
    fastai_learners: dict[str, Trained], photos: list[Path], tmp_path: Path
) -> None:
    trained = fastai_learners["multi-label"]
    from tests.fixtures.fastai_models import _scene

    rng = np.random.default_rng(3)
    both = tmp_path / "red_blue.jpg"
    _scene(rng, ["red", "blue"]).save(both, quality=92)
    answer = serve_without_torch(trained.artifact, [both])[str(both)]
    assert answer["threshold"] == pytest.approx(0.4)
    decoded, _, _ = trained.source.predict(both)
    assert sorted(c["class"] for c in answer["labels"]) == sorted(str(c) for c in decoded)
    assert all(c["confidence"] > 0.4 for c in answer["labels"])
    assert len(answer["predictions"]) == 3  # topk is capped to the classes


def test_learn_export_pickle_through_the_cli(fastai_learners: dict[str, Trained], tmp_path: Path) -> None:
    learn = fastai_learners["resnet-squish"].source
    pkl = tmp_path / "export.pkl"
    learn.export(pkl)
    out = tmp_path / "model.tar.gz"
    result = CliRunner().invoke(cli, ["export", "--fastai", str(pkl), "-o", str(out), "--no-torchscript"])
    assert result.exit_code == 0, result.output
    assert "input 160x160" in result.output
    assert "checked on 6 photos against the source library: max |Δp|" in result.output
    assert read_artifact(out).preprocessing == read_artifact(fastai_learners["resnet-squish"].artifact).preprocessing


def test_cli_check_images_uses_the_users_photos(
    fastai_learners: dict[str, Trained], photos: list[Path], tmp_path: Path
) -> None:
    pkl = tmp_path / "export.pkl"
    fastai_learners["plain"].source.export(pkl)
    mine = tmp_path / "mine"
    mine.mkdir()
    for path in photos[-2:]:
        (mine / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "model.tar.gz"
    args = ["export", "--fastai", str(pkl), "-o", str(out), "--no-torchscript", "--check-images", str(mine)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "checked on 2 photos" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    other = ["export", "--fastai", str(pkl), "-o", str(tmp_path / "other.tar.gz"), "--check-images", str(empty)]
    refused = CliRunner().invoke(cli, other)
    assert refused.exit_code == 1
    assert "holds no JPEG, PNG, WebP, GIF or BMP images" in refused.stderr
    assert not (tmp_path / "other.tar.gz").exists()


def test_cli_help_says_the_pickle_must_be_trusted() -> None:
    result = CliRunner().invoke(cli, ["export", "--help"])
    assert "UNPICKLED" in result.output and "trusted files only" in result.output


def test_a_wrong_pipeline_is_refused_by_the_photo_check(
    fastai_learners: dict[str, Trained], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the reader recorded what the old exporter assumed (a centre crop and ImageNet statistics)
    for a Learner that squishes and does not normalise, the photo check catches it."""
    import dataclasses

    from lambdavision.core.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
    from lambdavision.export import fastai_reader

    real = fastai_reader.read_learner

    def wrong(learn: Any) -> Any:
        read = real(learn)
        prep = Preprocessing.pipeline((FastaiResize((160, 160), "crop"),), IMAGENET_MEAN, IMAGENET_STD)
        return dataclasses.replace(read, preprocessing=prep)

    monkeypatch.setattr(fastai_reader, "read_learner", wrong)
    out = tmp_path / "model.tar.gz"
    with pytest.raises(ExportError, match=r"serving path disagrees with learn\.predict on \d+ of 6 photos"):
        export(fastai_learners["resnet-squish"].source, out_path=out, torchscript=False)
    assert not out.exists()


def test_export_refuses_classic_arguments_with_a_learner(fastai_learners: dict[str, Trained], tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="a fastai Learner carries its own preprocessing: leave input_size out"):
        export(fastai_learners["plain"].source, out_path=tmp_path / "m.tar.gz", input_size=224)


def test_a_missing_pickle_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "export.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ExportError, match=r"export\.pkl: not a fastai Learner fastai can load"):
        export_fastai(bad, tmp_path / "m.tar.gz")
    result = CliRunner().invoke(cli, ["export", "--fastai", str(bad), "-o", str(tmp_path / "m.tar.gz")])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "not a fastai Learner" in result.stderr


def test_manifest_json_is_what_old_readers_refuse(fastai_learners: dict[str, Trained]) -> None:
    import tarfile

    with tarfile.open(fastai_learners["resnet-pad"].artifact) as tar:
        member = tar.extractfile("lambdavision.json")
        assert member is not None
        raw = json.loads(member.read())
    assert raw["format_version"] == 3  # lambdavision before this reads <= 2 and says "upgrade"
    assert raw["preprocessing"]["steps"][0] == {
        "op": "fastai_resize",
        "size": [96, 128],
        "method": "pad",
        "pad_mode": "zeros",
        "resample": "bilinear",
    }
    assert raw["head"] == {"activation": "softmax"}


# --- what cannot be recorded is refused, by name ------------------------------------------------------


def small_learner(fastai_all: Any, colour_folder: Path, **kwargs: Any) -> Any:
    from tests.fixtures.fastai_models import _small_module

    fv = fastai_all
    item_tfms = kwargs.pop("item_tfms", fv.Resize(64))
    batch_tfms = kwargs.pop("batch_tfms", None)
    dls = fv.ImageDataLoaders.from_folder(
        colour_folder, valid_pct=0.25, seed=0, item_tfms=item_tfms, batch_tfms=batch_tfms, bs=8, num_workers=0
    )
    return fv.Learner(dls, _small_module(3), **kwargs)


def test_a_custom_transform_is_refused_by_name(fastai_all: Any, colour_folder: Path, tmp_path: Path) -> None:
    fv = fastai_all

    class Sharpen(fv.Transform):  # type: ignore[misc]
        def encodes(self, x):  # type: ignore[no-untyped-def]  # untyped: fastai dispatches on real hints
            return x

    learn = small_learner(fastai_all, colour_folder, item_tfms=[fv.Resize(64), Sharpen()])
    out = tmp_path / "m.tar.gz"
    with pytest.raises(ExportError, match=r"after_item transform Sharpen runs at predict time .* split_idx=0"):
        export(learn, out_path=out)
    assert not out.exists()


def test_a_batch_resize_is_refused_with_what_to_do(fastai_all: Any, colour_folder: Path, tmp_path: Path) -> None:
    fv = fastai_all
    learn = small_learner(fastai_all, colour_folder, batch_tfms=fv.aug_transforms(size=48))
    with pytest.raises(ExportError, match=r"resizes the image on the batch .* item_tfms=Resize"):
        export(learn, out_path=tmp_path / "m.tar.gz")


def test_a_grey_scale_learner_is_refused(fastai_all: Any, colour_folder: Path, tmp_path: Path) -> None:
    from tests.fixtures.fastai_models import _small_module

    fv = fastai_all
    block = fv.DataBlock(
        blocks=(fv.ImageBlock(cls=fv.PILImageBW), fv.CategoryBlock),
        get_items=fv.get_image_files,
        get_y=fv.parent_label,
        item_tfms=fv.Resize(64),
    )
    dls = block.dataloaders(colour_folder, bs=8, num_workers=0)
    learn = fv.Learner(dls, _small_module(3))
    with pytest.raises(ExportError, match=r"opens images as PILImageBW \(mode 'L'\); lambdavision serves RGB"):
        export(learn, out_path=tmp_path / "m.tar.gz")


def test_a_loss_without_activation_is_refused(fastai_all: Any, colour_folder: Path, tmp_path: Path) -> None:
    import torch

    learn = small_learner(fastai_all, colour_folder, loss_func=torch.nn.CrossEntropyLoss())
    with pytest.raises(ExportError, match=r"loss function CrossEntropyLoss has no activation/decodes"):
        export(learn, out_path=tmp_path / "m.tar.gz")


def test_training_only_transforms_are_skipped_like_fastai_does(
    fastai_all: Any, colour_folder: Path, tmp_path: Path
) -> None:
    fv = fastai_all

    class Jitter(fv.RandTransform):  # type: ignore[misc]
        split_idx = 0  # training set only

        def encodes(self, x):  # type: ignore[no-untyped-def]
            return x

    learn = small_learner(
        fastai_all,
        colour_folder,
        batch_tfms=[Jitter(), *fv.aug_transforms(), fv.Normalize.from_stats(*fv.imagenet_stats)],
    )
    with learn.no_bar(), learn.no_logging():
        learn.fit(6, 1e-2)
    out = tmp_path / "m.tar.gz"
    manifest = export(learn, out_path=out, torchscript=False)
    assert manifest.preprocessing.steps == (FastaiResize((64, 64), "crop", "reflection", "bilinear"),)
    assert manifest.extra["photo_check"]["max_abs_dp"] <= 0.02
