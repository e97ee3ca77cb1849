"""Train the bundled demo model: a small CNN that tells coloured shapes apart.

    python scripts/train_demo.py [--out demo]

Generates a synthetic data set (circle, square, triangle, star, cross on noisy backgrounds, random
position, size, rotation, colours and aspect ratio, some of it JPEG-compressed), trains
`lambdavision.zoo.small_cnn` on the CPU (about a minute on 2 threads), prints the held-out
accuracy (exits 1 below 95 %), exports `demo/model.tar.gz` with `lambdavision.export.export` and
writes sample images `demo/samples/<class>_<n>.<ext>`. Seeded: the same run gives the same model.
`--int8` also writes `demo/model-int8.tar.gz` (static int8, calibrated on generated images;
`--int8-only` quantises an existing demo model without retraining).

Training images go through the serving preprocessing (resize the shorter side, centre crop,
ImageNet normalisation), so the model sees what the Lambda function will feed it.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from lambdavision.core.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from lambdavision.export import export
from lambdavision.zoo import small_cnn

CLASSES = ["circle", "cross", "square", "star", "triangle"]
PREPROCESSING = Preprocessing(input_size=64, resize_size=73)
TRAIN_PER_CLASS = 1200
HELD_OUT_PER_CLASS = 200
EPOCHS = 10
BATCH = 64
MIN_ACCURACY = 0.95
SEED = 1234


# --- the synthetic images ---------------------------------------------------------------------------


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a shape of circumradius `r` centred at (cx, cy), rotated by `angle`."""
    if kind == "square":
        points = [(math.pi / 4 + k * math.pi / 2, r) for k in range(4)]
    elif kind == "triangle":
        points = [(-math.pi / 2 + k * 2 * math.pi / 3, r) for k in range(3)]
    elif kind == "star":
        points = [(-math.pi / 2 + k * math.pi / 5, r if k % 2 == 0 else r * 0.42) for k in range(10)]
    elif kind == "cross":
        a = r * 0.33  # half the arm's width; arms reach r
        corners = [
            (a, r),
            (-a, r),
            (-a, a),
            (-r, a),
            (-r, -a),
            (-a, -a),
            (-a, -r),
            (a, -r),
            (a, -a),
            (r, -a),
            (r, a),
            (a, a),
        ]
        points = [(math.atan2(y, x), math.hypot(x, y)) for x, y in corners]
    else:
        raise ValueError(kind)
    return [(cx + d * math.cos(t + angle), cy + d * math.sin(t + angle)) for t, d in points]


def _colours(rng: random.Random) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """A background and a foreground colour far enough apart to see the shape."""
    while True:
        bg = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        fg = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if sum(abs(a - b) for a, b in zip(bg, fg, strict=True)) > 220:
            return bg, fg


def render(kind: str, width: int, height: int, rng: random.Random) -> Image.Image:
    """One image: noisy background, one shape inside the central square (the part a crop keeps)."""
    bg, fg = _colours(rng)
    np_rng = np.random.default_rng(rng.randrange(2**32))
    # Noise on a grid of at most 96 px, scaled up: the same look at every image size.
    grid_w, grid_h = min(width, 96), min(height, 96)
    noise = np_rng.normal(0, rng.uniform(8, 30), (grid_h, grid_w, 3))
    background = np.clip(np.array(bg, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(background).resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randrange(3)):  # a few distracting lines
        colour = tuple(int(c) for c in np_rng.integers(0, 256, 3))
        points = [(rng.uniform(0, width), rng.uniform(0, height)) for _ in range(2)]
        draw.line(points, fill=colour, width=max(1, min(width, height) // 60))

    side = min(width, height)
    r = side * rng.uniform(0.18, 0.4)
    cx = width / 2 + rng.uniform(-1, 1) * (side / 2 - r) * 0.8
    cy = height / 2 + rng.uniform(-1, 1) * (side / 2 - r) * 0.8
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fg)
    else:
        draw.polygon(_polygon(kind, cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=fg)
    return image


def _random_image(kind: str, rng: random.Random) -> Image.Image:
    side = rng.randrange(72, 200)
    aspect = rng.uniform(0.75, 1.34)
    width, height = (round(side * aspect), side) if aspect > 1 else (side, round(side / aspect))
    image = render(kind, width, height, rng)
    if rng.random() < 0.5:  # most real inputs are JPEGs
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randrange(50, 96))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image


def to_input(image: Image.Image, prep: Preprocessing = PREPROCESSING) -> np.ndarray:
    """Resize the shorter side + centre crop, as uint8 HWC (normalised later, per batch)."""
    w, h = image.size
    scale = prep.resize_size / min(w, h)
    size = (max(prep.resize_size, round(w * scale)), max(prep.resize_size, round(h * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    left = (size[0] - prep.input_size) // 2
    top = (size[1] - prep.input_size) // 2
    crop = image.crop((left, top, left + prep.input_size, top + prep.input_size))
    return np.asarray(crop, dtype=np.uint8)


def make_dataset(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = random.Random(seed)
    images, labels = [], []
    for _ in range(per_class):
        for label, kind in enumerate(CLASSES):
            images.append(to_input(_random_image(kind, rng)))
            labels.append(label)
    return np.stack(images), np.array(labels, dtype=np.int64)


def normalise(batch: np.ndarray) -> torch.Tensor:
    mean = np.array(IMAGENET_MEAN, dtype=np.float32)
    std = np.array(IMAGENET_STD, dtype=np.float32)
    array = (batch.astype(np.float32) / 255.0 - mean) / std
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))


# --- training ---------------------------------------------------------------------------------------


def train(x: np.ndarray, y: np.ndarray) -> nn.Module:
    model = small_cnn(len(CLASSES))
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = EPOCHS * math.ceil(len(x) / BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps)
    order_rng = np.random.default_rng(SEED)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(EPOCHS):
        model.train()
        order = order_rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), BATCH):
            idx = order[start : start + BATCH]
            batch = x[idx]
            if order_rng.random() < 0.5:
                batch = batch[:, :, ::-1]  # horizontal flip: every class is symmetric enough
            loss = loss_fn(model(normalise(batch)), torch.from_numpy(y[idx]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{EPOCHS}: loss {total / len(x):.4f}", flush=True)
    return model.eval()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), 256):
            logits = model(normalise(x[start : start + 256]))
            correct += int((logits.argmax(1).numpy() == y[start : start + 256]).sum())
    return correct / len(x)


# --- samples ----------------------------------------------------------------------------------------


def write_samples(directory: Path) -> list[Path]:
    """Two per class (a JPEG and a PNG), plus one large JPEG that exercises draft mode."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*"):
        old.unlink()
    rng = random.Random(SEED + 7)
    written = []
    for kind in CLASSES:
        for n, (ext, size) in enumerate([("jpg", (320, 240)), ("png", (200, 200))], start=1):
            path = directory / f"{kind}_{n}.{ext}"
            image = render(kind, *size, rng)
            image.save(path, quality=90) if ext == "jpg" else image.save(path, optimize=True)
            written.append(path)
    large = directory / "star_3.jpg"
    render("star", 2000, 1500, rng).save(large, quality=85)
    written.append(large)
    return written


def write_int8(out_dir: Path) -> int:
    """demo/model-int8.tar.gz: the float demo model quantised, calibrated on generated images and
    judged on others (never the training set)."""
    from lambdavision.core.preprocess import preprocess
    from lambdavision.export import ExportError
    from lambdavision.quantize import quantize_int8

    def inputs(per_class: int, seed: int) -> list[np.ndarray]:
        rng = random.Random(seed)
        encoded = []
        for _ in range(per_class):
            for kind in CLASSES:
                buffer = io.BytesIO()
                _random_image(kind, rng).save(buffer, "PNG")
                encoded.append(preprocess(buffer.getvalue(), PREPROCESSING))
        return encoded

    out = out_dir / "model-int8.tar.gz"
    try:
        _, report = quantize_int8(out_dir / "model.tar.gz", out, inputs(40, SEED + 2), inputs(100, SEED + 3))
    except ExportError as exc:
        print(f"int8: {exc.message}", file=sys.stderr)
        return 1
    for line in report.lines():
        print(f"int8: {line}")
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "demo")
    parser.add_argument("--int8", action="store_true", help="Also write model-int8.tar.gz (static int8).")
    parser.add_argument(
        "--int8-only", action="store_true", help="Only quantise the existing model.tar.gz in --out (no training)."
    )
    args = parser.parse_args(argv)
    if args.int8_only:
        return write_int8(args.out)

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    started = time.monotonic()
    x_train, y_train = make_dataset(TRAIN_PER_CLASS, SEED)
    x_test, y_test = make_dataset(HELD_OUT_PER_CLASS, SEED + 1)
    print(f"data: {len(x_train)} training, {len(x_test)} held-out images ({time.monotonic() - started:.1f} s)")

    model = train(x_train, y_train)
    held_out = accuracy(model, x_test, y_test)
    print(f"held-out accuracy: {held_out:.2%} ({time.monotonic() - started:.1f} s)")
    if held_out < MIN_ACCURACY:
        print(f"accuracy below {MIN_ACCURACY:.0%}: not exporting", file=sys.stderr)
        return 1

    out = args.out / "model.tar.gz"
    export(
        model,
        CLASSES,
        out,
        input_size=PREPROCESSING.input_size,
        resize_size=PREPROCESSING.resize_size,
        torchscript=True,  # the committed demo artifact is the full layout (a test reads its .pth)
        extra={"demo": "synthetic shapes", "held_out_accuracy": round(held_out, 4)},
    )
    samples = write_samples(args.out / "samples")
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB) and {len(samples)} samples in {args.out / 'samples'}")
    return write_int8(args.out) if args.int8 else 0


if __name__ == "__main__":
    sys.exit(main())
