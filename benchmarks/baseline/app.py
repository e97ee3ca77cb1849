# ruff: noqa: SIM105, SIM108, SIM115, RUF046  (the guide's code, kept as it was written)
"""The guide's PyTorch function, as its example app does it: the benchmark's baseline.

Kept faithful on purpose, inefficiencies and flaws included (see /work/shared/reference/guide.md):
boto3 client and `get_object` of the whole tarball into memory at import, `tarfile` "r:gz",
`torch.jit.load` of the `.pth` on the CPU, class names left as bytes; per request `requests.get`
with no timeout or limits, the whole image decoded by PIL, Resize(256) + CenterCrop(224) +
ToTensor + Normalize, forward, softmax, max, `{"class", "confidence"}`; any error is unhandled.

Two differences, neither changing what it does:
- torchvision cannot be installed beside torch 2.13 here, so its four transforms are written out.
  On a PIL image torchvision's Resize and CenterCrop call PIL's `resize` (bilinear) and `crop`,
  so these do the same; ToTensor and Normalize are the same torch ops torchvision runs.
- timing instrumentation for the benchmark: one log line at load ("model loaded from ... in N ms
  (fetch A ms, load B ms)", the shape lambdavision's handler logs) and a `Server-Timing` header
  on each answer, measured with `time.perf_counter` around the existing steps.
"""

try:
    import unzip_requirements  # noqa: F401  (the guide ships its dependencies zipped in the zip)
except ImportError:
    pass

import io
import json
import os
import tarfile
import time

import boto3
import numpy as np
import requests
import torch
import torch.nn.functional as F
from PIL import Image

s3 = boto3.client("s3")

MODEL_BUCKET = os.environ.get("MODEL_BUCKET")
MODEL_KEY = os.environ.get("MODEL_KEY")

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def load_model():
    """Download the tarball into memory, load the TorchScript model and the class names."""
    started = time.perf_counter()
    obj = s3.get_object(Bucket=MODEL_BUCKET, Key=MODEL_KEY)
    bytestream = io.BytesIO(obj["Body"].read())
    fetched = time.perf_counter()
    tar = tarfile.open(fileobj=bytestream, mode="r:gz")
    model, classes = None, None
    for member in tar.getmembers():
        if member.name.endswith(".txt"):
            f = tar.extractfile(member)
            classes = f.read().splitlines()  # bytes, never decoded: the guide's "b'name'" answers
        if member.name.endswith(".pth"):
            f = tar.extractfile(member)
            model = torch.jit.load(io.BytesIO(f.read()), map_location=torch.device("cpu"))
    model.eval()
    done = time.perf_counter()
    print(
        f"model loaded from s3://{MODEL_BUCKET}/{MODEL_KEY} in {(done - started) * 1000:.0f} ms "
        f"(fetch {(fetched - started) * 1000:.0f} ms, load {(done - fetched) * 1000:.0f} ms)",
        flush=True,
    )
    return model, classes


model, classes = load_model()


def resize(img, size):
    """torchvision Resize(int) on a PIL image: the shorter side becomes `size` (bilinear)."""
    w, h = img.size
    if w <= h:
        ow, oh = size, int(size * h / w)
    else:
        ow, oh = int(size * w / h), size
    return img.resize((ow, oh), Image.Resampling.BILINEAR)


def center_crop(img, size):
    """torchvision CenterCrop on a PIL image."""
    w, h = img.size
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def to_tensor(img):
    """torchvision ToTensor: HWC uint8 -> CHW float in [0, 1]."""
    tensor = torch.from_numpy(np.array(img, np.uint8, copy=True))
    tensor = tensor.view(img.size[1], img.size[0], len(img.getbands()))
    return tensor.permute((2, 0, 1)).contiguous().float().div(255)


def normalize(tensor):
    """torchvision Normalize(mean, std)."""
    return tensor.sub(MEAN).div(STD)


def preprocess(img):
    return normalize(to_tensor(center_crop(resize(img, 256), 224)))


def lambda_handler(event, context):
    started = time.perf_counter()
    if isinstance(event["body"], str):
        data = json.loads(event["body"])
    else:
        data = event["body"]
    response = requests.get(data["url"])
    fetched = time.perf_counter()
    img = Image.open(io.BytesIO(response.content))
    img_tensor = preprocess(img).unsqueeze(0)
    decoded = time.perf_counter()
    with torch.no_grad():
        output = F.softmax(model(img_tensor), dim=1)
    confidence, index = output.max(1)
    predicted_class = classes[index.item()]
    done = time.perf_counter()
    timing = (
        f"fetch;dur={(fetched - started) * 1000:.1f}, decode;dur={(decoded - fetched) * 1000:.1f}, "
        f"inference;dur={(done - decoded) * 1000:.1f}"
    )
    return {
        "statusCode": 200,
        "headers": {"Server-Timing": timing},
        "body": json.dumps({"class": str(predicted_class), "confidence": confidence.item()}),
    }
