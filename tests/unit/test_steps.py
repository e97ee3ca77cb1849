"""The recorded steps against fastai's and torchvision's own code on PIL images: the same pixels.

fastai's `Resize` / `RandomResizedCrop` / `CropPad` at predict time (split_idx=1) and torchvision's
`Resize` + `CenterCrop` and presets, called for real, on images of many shapes: the uint8 results
must be identical, and the float input within float32 rounding.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from PIL import Image

from lambdavision.core.errors import ArtifactError
from lambdavision.core.head import Head
from lambdavision.core.manifest import Manifest
from lambdavision.core.preprocess import Preprocessing, run_pipeline
from lambdavision.core.steps import CenterCrop, FastaiCropPad, FastaiResize, Resize
from tests.unit.test_preprocess import photo_like

SHAPES = [(640, 480), (480, 640), (300, 180), (1000, 400), (223, 225), (97, 301), (224, 224), (50, 40)]


def image(width: int, height: int) -> Image.Image:
    return Image.fromarray(photo_like(width, height, seed=width * 7 + height))


@pytest.mark.parametrize(
    ("size", "method", "pad_mode", "resample"),
    [
        (224, "crop", "reflection", "bilinear"),
        (160, "squish", "reflection", "bilinear"),
        ((96, 128), "pad", "zeros", "bilinear"),
        ((128, 96), "pad", "reflection", "bilinear"),
        (100, "pad", "border", "bilinear"),
        ((200, 150), "crop", "zeros", "bicubic"),
        (64, "crop", "reflection", "nearest"),
    ],
)
def test_fastai_resize_gives_fastais_pixels(
    fastai_all: Any, size: Any, method: str, pad_mode: str, resample: str
) -> None:
    fv = fastai_all
    modes = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC, "nearest": 0}
    theirs_tfm = fv.Resize(size, method=method, pad_mode=pad_mode, resamples=(modes[resample], 0))
    hw = (size, size) if isinstance(size, int) else size
    ours = FastaiResize(hw, method, pad_mode, resample)
    for width, height in SHAPES:
        source = fv.PILImage(image(width, height))
        theirs = np.asarray(theirs_tfm(source, split_idx=1))
        mine = np.asarray(ours.apply(image(width, height), (width, height)))
        assert mine.shape == theirs.shape == (hw[0], hw[1], 3), (width, height)
        assert np.array_equal(mine, theirs), (width, height, method, pad_mode)


def test_fastai_random_resized_crop_and_crop_pad_at_predict_time(fastai_all: Any) -> None:
    from lambdavision.export.fastai_reader import _random_resized_crop

    fv = fastai_all
    rrc = fv.RandomResizedCrop((96, 64), min_scale=0.5)
    croppad = fv.CropPad((120, 90), pad_mode="reflection")
    for width, height in SHAPES:
        img = image(width, height)
        steps = _random_resized_crop(rrc)
        mine = img
        for step in steps:
            mine = step.apply(mine, mine.size)
        assert np.array_equal(np.asarray(mine), np.asarray(rrc(fv.PILImage(img), split_idx=1)))
        theirs = np.asarray(croppad(fv.PILImage(img), split_idx=1))
        assert np.array_equal(np.asarray(FastaiCropPad((120, 90), "reflection").apply(img, img.size)), theirs)


@pytest.mark.parametrize("resize", [232, 256, (180, 200)])
def test_torchvision_resize_and_center_crop_give_torchvisions_input(fastai_all: Any, resize: Any) -> None:
    import torchvision.transforms as T  # imported for real by the fixture, beside the CPU torch

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    theirs_tfm = T.Compose([T.Resize(resize), T.CenterCrop(224), T.ToTensor(), T.Normalize(mean, std)])
    prep = Preprocessing.pipeline((Resize(resize), CenterCrop((224, 224))), mean, std)
    for width, height in SHAPES:
        img = image(width, height)
        theirs = theirs_tfm(img).numpy()
        mine = run_pipeline(img, prep)
        assert mine.shape == theirs.shape == (3, 224, 224)
        assert np.abs(mine - theirs).max() < 1e-5, (width, height)


def test_torchvision_preset_is_read_and_matches(fastai_all: Any) -> None:
    import torchvision

    from lambdavision.export.torchvision_reader import read_transforms

    preset = torchvision.models.ResNet50_Weights.IMAGENET1K_V2.transforms()  # resize 232, crop 224
    read = read_transforms(None, preset)
    assert read.preprocessing.steps == (Resize(232, None, "bilinear"), CenterCrop((224, 224)))
    for width, height in SHAPES:
        img = image(width, height)
        assert np.abs(run_pipeline(img, read.preprocessing) - preset(img).numpy()).max() < 1e-5


def test_min_decode_size_keeps_one_source_pixel_per_output_pixel() -> None:
    crop = Preprocessing.pipeline((FastaiResize((224, 224), "crop"),), None, None)
    assert crop.min_decode_size(4032, 3024) == (299, 224)
    assert crop.min_decode_size(200, 100) == (200, 100)  # never more than the source
    squish = Preprocessing.pipeline((FastaiResize((160, 160), "squish"),), None, None)
    assert squish.min_decode_size(4000, 1000) == (640, 160)
    tv = Preprocessing.pipeline((Resize(256), CenterCrop((224, 224))), None, None)
    assert tv.min_decode_size(4032, 3024) == (342, 256)
    assert Preprocessing.pipeline((FastaiCropPad((64, 64)),), None, None).min_decode_size(999, 777) == (999, 777)
    assert Preprocessing().min_decode_size(4032, 3024) == (342, 256)  # classic: resize_size on the shorter side


def test_pipeline_round_trips_through_the_manifest() -> None:
    prep = Preprocessing.pipeline(
        (Resize(256, 400, "bicubic"), CenterCrop((224, 200)), FastaiCropPad((100, 90), "border")),
        (0.5, 0.4, 0.3),
        (0.2, 0.2, 0.2),
        divisor=100.0,
    )
    manifest = Manifest(3, prep, 2, {"classes.txt": "0" * 64}, head=Head("sigmoid", 0.3))
    again = Manifest.from_json(manifest.to_json(), where="m")
    assert again == manifest
    assert again.preprocessing.input_shape == (100, 90)


@pytest.mark.parametrize(
    ("preprocessing", "message"),
    [
        ({"steps": []}, "'steps' must be a non-empty list"),
        ({"steps": [{"op": "blur"}]}, r"unknown step 'blur'"),
        ({"steps": [{"op": "fastai_resize", "size": [0, 5]}]}, "height must be a whole number of pixels"),
        ({"steps": [{"op": "fastai_resize", "size": [5, 5], "method": "zoom"}]}, "method must be one of"),
        ({"steps": [{"op": "center_crop", "size": [5, 5], "extra": 1}]}, r"unknown field\(s\) extra"),
        ({"steps": [{"op": "resize", "size": 256}]}, "do not end in one fixed size"),
        ({"steps": [{"op": "center_crop", "size": [5, 5]}], "divisor": 0}, "divisor must be a positive number"),
        ({"steps": [{"op": "center_crop", "size": [5, 5]}], "mean": [0.1, 0.2, 0.3]}, "mean and std go together"),
        ({"steps": [{"op": "center_crop", "size": [5, 5]}], "mean": [0, 0, 0], "std": [1, 0, 1]}, "std values"),
    ],
)
def test_bad_pipelines_are_refused(preprocessing: dict[str, Any], message: str) -> None:
    raw = {"format_version": 3, "num_classes": 1, "sha256": {"classes.txt": "0" * 64}, "preprocessing": preprocessing}
    with pytest.raises(ArtifactError, match=message):
        Manifest.from_json(json.dumps(raw).encode(), where="m")


def test_pipeline_or_sigmoid_in_an_older_format_is_refused() -> None:
    base = {"num_classes": 1, "sha256": {"classes.txt": "0" * 64}}
    steps = {"steps": [{"op": "center_crop", "size": [5, 5]}], "mean": None, "std": None}
    with pytest.raises(ArtifactError, match="needs format_version 3, the manifest says 2"):
        Manifest.from_json(json.dumps({**base, "format_version": 2, "preprocessing": steps}).encode(), where="m")
    classic = Preprocessing().to_dict()
    sigmoid = {"activation": "sigmoid", "threshold": 0.5}
    with pytest.raises(ArtifactError, match="needs format_version 3"):
        Manifest.from_json(
            json.dumps({**base, "format_version": 2, "preprocessing": classic, "head": sigmoid}).encode(), where="m"
        )
    with pytest.raises(ArtifactError, match="a sigmoid head needs a threshold between 0 and 1"):
        Manifest.from_json(
            json.dumps(
                {**base, "format_version": 3, "preprocessing": classic, "head": {"activation": "sigmoid"}}
            ).encode(),
            where="m",
        )


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_draft_decoded_phone_photo_keeps_the_geometry_of_the_full_one(orientation: int) -> None:
    """A 4032x3024 JPEG is decoded at a reduced scale; the crop box is still fastai's on the full
    size (and, for a photo stored sideways, on its upright size), so the input stays close to the
    one from a full decode. A box computed on the reduced size instead shifts the picture."""
    import io

    from PIL import ImageOps

    from lambdavision.core.preprocess import decode_image, preprocess

    arr = photo_like(4032, 3024, seed=9)
    arr[:, 1500:1520] = 255  # a sharp vertical line: any shift of the crop shows
    source = Image.fromarray(arr)
    exif = source.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    source.save(buffer, "JPEG", quality=92, exif=exif)
    data = buffer.getvalue()
    prep = Preprocessing.pipeline((FastaiResize((224, 160), "crop"),), None, None)
    assert max(decode_image(data, prep).size) < 4032  # draft mode did reduce it
    full = ImageOps.exif_transpose(Image.open(io.BytesIO(data)).convert("RGB"))
    expected = run_pipeline(full, prep)
    served = preprocess(data, prep)
    assert served.shape == expected.shape == (3, 224, 160)
    assert np.abs(served - expected).mean() < 0.01
