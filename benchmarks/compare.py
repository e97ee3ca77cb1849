"""lambdavision against the guide's PyTorch app: one run, same machine, same model, same images.

    .venv/bin/python benchmarks/compare.py            # ResNet-50, >= 5 cold starts, >= 50 warm requests
    .venv/bin/python benchmarks/compare.py --quick    # a small CNN, few repeats (the test suite runs this)

Under several conditions (benchmarks/conditions.py): on loopback (whole cores, S3 at memory speed)
and as on Lambda at 1,024, 2,048 and 3,008 MB (each environment held to MemorySize/1769 vCPUs by a
cgroup quota, S3 with a first-byte latency and a bandwidth per connection: moto behind the shaped
stand-in). The full table and the targets are the primary condition's (Lambda-shaped, 2,048 MB).

Variants, each run as a real `awslambdaric` environment process in lambdavision's local runtime,
the model on a moto S3 server on 127.0.0.1 (through the stand-in), the images fetched by URL from a
loopback server:

- baseline: benchmarks/baseline/app.py, the guide's function (torch + TorchScript from its tarball);
- lambdavision, model on S3, the artifact with its .pth (`lambdavision export --keep-torchscript`);
- lambdavision, model on S3, the serving artifact without the .pth (`lambdavision export`'s default);
- lambdavision, model bundled in the package (`lambdavision package --bundle-model`);
- lambdavision int8, when `lambdavision export --quantize int8` exists.

Cold starts and warm requests of the variants are interleaved (the order rotates each round), so
load from elsewhere on the machine touches them alike; the conditions run one after the other.
Writes to the output folder: results.json
(every sample summary), results.md (the table with ratios to the baseline), compare.png (the
chart) and README-section.md (the table and what it means, for the README). Models and images are
built once into the cache folder (benchmarks/.cache/, not committed).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lambdavision.aws.package import installed_closure

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks.*` when run as a script
from benchmarks.conditions import CORE_VARIANTS, Condition, conditions, conditions_table

from lambdavision.bench import (
    DEFAULT_TIMEOUT_S,
    HANDLER,
    BenchError,
    BenchFunction,
    ColdRun,
    Floor,
    ImageServer,
    Runner,
    Stats,
    WarmRun,
    describe_machine,
    local_caveat,
    threads_for_memory,
    url_event,
)
from lambdavision.bench_emulation import DecodeFloor, WorkerGroup, preload
from lambdavision.bench_emulation import cpu_limiter as emulated_cpu
from lambdavision.cfn import FunctionSpec
from lambdavision.core.artifact import FORMAT_VERSION, unpack_for_serving
from lambdavision.local import simulated_aws
from lambdavision.local.cpu_quota import CpuLimiter
from lambdavision.local.shaped_s3 import DEFAULT_BANDWIDTH, DEFAULT_LATENCY_S, MB, ShapedS3, Shaping
from lambdavision.model_source import BUNDLED_DIR
from lambdavision.pricing import Prices, cost_per_million, load_prices

REPO = Path(__file__).resolve().parents[1]
BASELINE_DIR = REPO / "benchmarks" / "baseline"
DEFAULT_CACHE = REPO / "benchmarks" / ".cache"
DEFAULT_OUT = REPO / "benchmarks" / "results"
BUCKET = "lambdavision-bench"
GUIDE_KEY = "fastai-models/lesson1/model.tar.gz"
MEMORY_MB = 2048  # the primary condition: Lambda-shaped at 2,048 MB (the targets)
MEMORY_SIZES = (1024, 2048, 3008)
LOOPBACK_MB = 3008  # the guide's template
COLD_FRACTION = 0.05
NUM_CLASSES = 1000
LARGE, SMALL = "large", "small"
IMAGE_SIZES = {LARGE: (4032, 3024), SMALL: (640, 480)}
TORCH_WHEEL_DIR = Path("/opt/wheels")
BASELINE_DISTRIBUTIONS = ("torch", "numpy", "pillow", "requests")  # boto3 comes with Lambda's runtime

Log = Callable[[str], None]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- inputs: models and images ------------------------------------------------------------------


@dataclass(frozen=True)
class Models:
    name: str
    guide: Path  # the guide's tarball: resnet50_jit.pth + classes.txt
    full: Path  # lambdavision export: manifest, classes, model.onnx, then the .pth
    serving: Path  # the same without the .pth (export --no-torchscript)
    int8: Path | None  # static int8 of `serving` (export --quantize int8), when lambdavision has it
    int8_note: str  # why there is no int8 model, or how it was made


def build_models(cache: Path, quick: bool) -> Models:
    """The model exported the guide's way and lambdavision's way, once; reused from the cache after."""
    name = "small_cnn" if quick else "resnet50"
    folder = cache / "models" / name
    guide, full, serving = folder / "guide-model.tar.gz", folder / "lambdavision-full.tar.gz", folder / "model.tar.gz"
    # Exported by this artifact format: models cached by an older lambdavision are exported again.
    stamp = folder / f"exported-format-{FORMAT_VERSION}"
    if not all(p.is_file() for p in (guide, full, serving, stamp)):
        _export_models(folder, quick, guide, full, serving)
        (folder / "model-int8.tar.gz").unlink(missing_ok=True)  # made from the old serving model
        stamp.touch()
    else:
        log(f"models: reusing {folder}")
    int8, note = build_int8(serving, folder / "model-int8.tar.gz", cache)
    return Models(name, guide, full, serving, int8, note)


def _export_models(folder: Path, quick: bool, guide: Path, full: Path, serving: Path) -> None:
    name = folder.name
    import torch

    from lambdavision.core.artifact import read_artifact, write_artifact
    from lambdavision.export import export
    from lambdavision.zoo import resnet50, small_cnn

    folder.mkdir(parents=True, exist_ok=True)
    classes = [f"class_{i:04d}" for i in range(NUM_CLASSES)]
    torch.manual_seed(0)
    model = (small_cnn(NUM_CLASSES) if quick else resnet50(NUM_CLASSES)).eval()
    log(f"models: exporting {name} the guide's way (trace on 1x3x299x299, jit.save, tar.gz)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with torch.no_grad():
            traced = torch.jit.trace(model, torch.ones(1, 3, 299, 299))  # type: ignore[no-untyped-call]
        torch.jit.save(traced, str(work / "resnet50_jit.pth"))
        (work / "classes.txt").write_text("\n".join(classes))
        with tarfile.open(work / "model.tar.gz", "w:gz") as tar:
            tar.add(work / "resnet50_jit.pth", arcname="resnet50_jit.pth")
            tar.add(work / "classes.txt", arcname="classes.txt")
        shutil.move(work / "model.tar.gz", guide)
    log(f"models: exporting {name} with lambdavision.export (ONNX + TorchScript)")
    export(model, classes, full, input_size=224, torchscript=True)
    artifact = read_artifact(full)
    assert artifact.onnx is not None
    write_artifact(
        serving,
        classes=classes,
        preprocessing=artifact.preprocessing,
        onnx=artifact.onnx,
        onnx_data=artifact.onnx_data,
        torchscript=None,
    )


INT8_NOTE = (
    "static int8 (QDQ, u8/s8 per-channel) of the same model, calibrated on 16 generated photos; its weights "
    "are random, so its agreement with the float model says nothing here and was not required"
)


def build_int8(serving: Path, out: Path, cache: Path) -> tuple[Path | None, str]:
    """`lambdavision export --quantize int8`'s quantisation of the serving artifact, when it exists."""
    try:
        from lambdavision.quantize import quantize_int8
    except ImportError:
        return None, "not available: `lambdavision export --quantize int8` is not implemented yet"
    if out.is_file():
        return out, INT8_NOTE
    from lambdavision.core.artifact import read_artifact
    from lambdavision.core.preprocess import preprocess

    log("models: quantising to int8 (static, calibrated on generated photos)")
    prep = read_artifact(serving).preprocessing
    inputs = [preprocess(photo_like_jpeg(640, 480, seed=100 + i), prep) for i in range(20)]
    try:
        # min_agreement 0: random weights make agreement meaningless (FACTS: ~10 %); speed and size are measured.
        quantize_int8(serving, out, inputs[:16], inputs[16:], min_agreement=0.0, torchscript=False)
    except Exception as exc:
        return None, f"not available: int8 quantisation failed ({exc})"
    return out, INT8_NOTE


def photo_like_jpeg(width: int, height: int, seed: int) -> bytes:
    """Smooth colour fields, shapes with soft edges and sensor noise: compresses like a photo
    (about 2.8 MB at 4032x3024), unlike flat colour (tiny) or pure noise (huge)."""
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    draw = ImageDraw.Draw(base)
    for _ in range(40):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(width // 40, width // 6))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
    base = base.filter(ImageFilter.GaussianBlur(radius=max(1, width // 800)))
    noisy = np.asarray(base, dtype=np.int16) + rng.normal(0, 7, (height, width, 3)).astype(np.int16)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def build_images(cache: Path) -> dict[str, bytes]:
    folder = cache / "images"
    folder.mkdir(parents=True, exist_ok=True)
    images = {}
    for seed, (key, (width, height)) in enumerate(IMAGE_SIZES.items()):
        path = folder / f"photo-{width}x{height}.jpg"
        if not path.is_file():
            path.write_bytes(photo_like_jpeg(width, height, seed))
        images[key] = path.read_bytes()
    return images


# --- S3 on loopback ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto_server(log_dir: Path) -> Iterator[str]:
    log_dir.mkdir(parents=True, exist_ok=True)
    with simulated_aws.moto_server(log_dir / "moto.log") as url:
        yield url


def aws_env(endpoint: str, cache: Path) -> dict[str, str]:
    """What the functions (and this process's boto3) see: fake credentials, moto's endpoint."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": str(cache / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(cache / "no-aws-credentials"),
    }


def upload(env: dict[str, str], files: dict[str, Path]) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=BUCKET)
    for key, path in files.items():
        client.upload_file(str(path), BUCKET, key)


# --- variants -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    function: BenchFunction | None  # None: not available (reason says why)
    artifact: Path | None = None  # the lambdavision artifact it serves (for the floor and sizes)
    bundled: bool = False
    reason: str = ""


def _spec(logical_id: str, handler: str, code_dir: Path, environment: dict[str, str], memory_mb: int) -> FunctionSpec:
    return FunctionSpec(
        logical_id=logical_id,
        handler=handler,
        code_dir=code_dir,
        runtime="python3.12",
        memory_mb=memory_mb,
        timeout_s=DEFAULT_TIMEOUT_S,
        environment=environment,
    )


def fresh_serving_folder(artifact: Path, folder: Path) -> None:
    """Unpacked anew each run: a folder left by an older model or artifact format is never measured."""
    shutil.rmtree(folder, ignore_errors=True)
    unpack_for_serving(artifact, folder)


def make_variants(models: Models, cache: Path, memory_mb: int, only: Sequence[str] | None = None) -> list[Variant]:
    """The variants at this memory size (`only` these keys, when given)."""
    functions = cache / "functions"
    s3_dir = functions / "s3"
    bundled_dir = functions / "bundled"
    s3_dir.mkdir(parents=True, exist_ok=True)
    bundled_dir.mkdir(parents=True, exist_ok=True)
    # As `package --bundle-model` ships it: unpacked for serving, loaded by path.
    bundled_model = bundled_dir / BUNDLED_DIR
    fresh_serving_folder(models.serving, bundled_model)
    lv_env = {"LAMBDAVISION_ALLOW_PRIVATE_URLS": "1"}

    def s3_function(logical_id: str, key: str) -> BenchFunction:
        env = {"MODEL_BUCKET": BUCKET, "MODEL_KEY": key}
        return BenchFunction(logical_id, _spec(logical_id, HANDLER, s3_dir, env, memory_mb), lv_env, fresh_cache=True)

    baseline_env = {"MODEL_BUCKET": BUCKET, "MODEL_KEY": GUIDE_KEY}
    variants = [
        Variant(
            "baseline",
            "guide app (torch, S3)",
            BenchFunction("baseline", _spec("Baseline", "app.lambda_handler", BASELINE_DIR, baseline_env, memory_mb)),
        ),
        Variant(
            "lv_s3_full",
            "lambdavision, S3, with the .pth",
            s3_function("LambdaVisionS3Full", "lambdavision/full/model.tar.gz"),
            models.full,
        ),
        Variant(
            "lv_s3",
            "lambdavision, S3",
            s3_function("LambdaVisionS3", "lambdavision/serving/model.tar.gz"),
            models.serving,
        ),
        Variant(
            "lv_bundled",
            "lambdavision, bundled",
            BenchFunction(
                "LambdaVisionBundled", _spec("LambdaVisionBundled", HANDLER, bundled_dir, {}, memory_mb), lv_env
            ),
            models.serving,
            bundled=True,
        ),
    ]
    if only is not None:
        return [v for v in variants if v.key in only]
    if models.int8 is None:
        variants.append(Variant("lv_int8", "lambdavision int8", None, reason=models.int8_note))
    else:
        int8_dir = functions / "bundled-int8"
        int8_dir.mkdir(parents=True, exist_ok=True)
        fresh_serving_folder(models.int8, int8_dir / BUNDLED_DIR)
        spec = _spec("LambdaVisionInt8", HANDLER, int8_dir, {}, memory_mb)
        variants.append(
            Variant(
                "lv_int8",
                "lambdavision int8, bundled",
                BenchFunction("LambdaVisionInt8", spec, lv_env),
                models.int8,
                bundled=True,
                reason=models.int8_note,
            )
        )
    return variants


def s3_uploads(models: Models) -> dict[str, Path]:
    return {
        GUIDE_KEY: models.guide,
        "lambdavision/full/model.tar.gz": models.full,
        "lambdavision/serving/model.tar.gz": models.serving,
    }


# --- measuring ----------------------------------------------------------------------------------


SETTLE_S = 0.05


def settle() -> None:
    """A pause after each measurement: ONNX Runtime's and OpenMP's worker threads spin-wait for a
    while after a run, and a torch forward pass that starts while they spin slows several-fold."""
    time.sleep(SETTLE_S)


def rotated(items: Sequence[Variant], by: int) -> list[Variant]:
    k = by % len(items) if items else 0
    return [*items[k:], *items[:k]]


def measure(
    variants: Sequence[Variant],
    runner: Runner,
    events: dict[str, dict[str, Any]],
    cold_runs: int,
    warm_requests: int,
    floors: Sequence[Floor | DecodeFloor],
) -> tuple[dict[str, list[ColdRun]], dict[str, dict[str, list[WarmRun]]], dict[str, int]]:
    live = [v for v in variants if v.function is not None]
    colds: dict[str, list[ColdRun]] = {v.key: [] for v in live}
    for run in range(cold_runs):
        for variant in rotated(live, run):
            assert variant.function is not None
            cold = runner.cold_start(variant.function, events[LARGE])
            settle()
            colds[variant.key].append(cold)
            log(f"cold {run + 1}/{cold_runs} {variant.key}: {cold.total_ms:,.0f} ms, {cold.max_memory_mb} MB")
    warms: dict[str, dict[str, list[WarmRun]]] = {v.key: {LARGE: [], SMALL: []} for v in live}
    peaks: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        pools = {}
        for variant in live:
            assert variant.function is not None
            pools[variant.key] = stack.enter_context(runner.warm(variant.function, events[LARGE], warmups=3))
        for number in range(warm_requests):
            for variant in rotated(live, number):
                for size in (LARGE, SMALL):
                    warms[variant.key][size].append(pools[variant.key].request(events[size]))
                    settle()
            for floor in floors:  # between the rounds: the floor sees the same machine load
                floor.sample()
                settle()
            if (number + 1) % 10 == 0 or number + 1 == warm_requests:
                log(f"warm {number + 1}/{warm_requests} done")
        for key, pool in pools.items():
            peaks[key] = pool.peak_memory_mb
    return colds, warms, peaks


def _stats(values: Sequence[float]) -> dict[str, Any] | None:
    return Stats.of(values).to_dict() if values else None


def summarise_cold(runs: Sequence[ColdRun]) -> dict[str, Any]:
    loads = [r.load_ms for r in runs if r.load_ms is not None]
    imports = [r.runtime_and_imports_ms for r in runs if r.runtime_and_imports_ms is not None]
    part_names = sorted({name for r in runs for name in r.load_parts})
    return {
        "total": _stats([r.total_ms for r in runs]),
        "init": _stats([r.init_ms for r in runs]),
        "runtime_imports": _stats(imports),
        "model_load": _stats(loads),
        "load_parts": {name: _stats([r.load_parts[name] for r in runs if name in r.load_parts]) for name in part_names},
        "first_request": _stats([r.first_request_ms for r in runs]),
        "peak_memory_mb": _stats([float(r.max_memory_mb) for r in runs]),
    }


def summarise_warm(runs: Sequence[WarmRun]) -> dict[str, Any]:
    return {
        "total": _stats([r.duration_ms for r in runs]),
        "fetch": _stats([r.timing.get("fetch", 0.0) for r in runs]),
        "decode": _stats([r.timing.get("decode", 0.0) for r in runs]),
        "inference": _stats([r.timing.get("inference", 0.0) for r in runs]),
    }


# --- deployment sizes ---------------------------------------------------------------------------


def _deflated_size(data: bytes, name: str) -> int:
    # zip's deflate at zlib's default level, plus local header and central directory entry.
    return len(zlib.compress(data, 6)) + 30 + 46 + 2 * len(name.encode())


def baseline_stack_sizes(cache: Path) -> dict[str, Any]:
    """The guide's dependencies as a Lambda package would hold them: torch (CPU) + numpy + Pillow +
    requests and what they require. Unzipped: the installed files; zipped: torch's own wheel (a
    zip of those files) and the rest deflated file by file."""
    dists = installed_closure(BASELINE_DISTRIBUTIONS)
    versions = {d.metadata["Name"]: d.version for d in dists}
    cached = cache / "sizes-baseline.json"
    if cached.is_file():
        document = json.loads(cached.read_text())
        if document.get("versions") == versions:
            return dict(document)
    unzipped = zipped = 0
    parts: dict[str, int] = {}
    for dist in dists:
        name = dist.metadata["Name"]
        files = [f for f in dist.files or [] if not str(f).startswith("..")]
        wheel = next(iter(sorted(TORCH_WHEEL_DIR.glob(f"{name}-{dist.version}-*.whl"))), None)
        dist_unzipped = dist_zipped = 0
        for file in files:
            path = Path(str(dist.locate_file(file)))
            if not path.is_file():
                continue
            size = path.stat().st_size
            dist_unzipped += size
            if wheel is None:
                dist_zipped += _deflated_size(path.read_bytes(), str(file))
        if wheel is not None:
            dist_zipped = wheel.stat().st_size
        unzipped += dist_unzipped
        zipped += dist_zipped
        parts[name] = dist_unzipped
    document = {
        "versions": versions,
        "unzipped": unzipped,
        "zipped": zipped,
        "parts": dict(sorted(parts.items(), key=lambda kv: -kv[1])),
        "what": "torch (CPU) + numpy + Pillow + requests and their requirements, python3.11 x86_64",
    }
    cached.write_text(json.dumps(document, indent=2))
    return document


def lambdavision_package_sizes(cache: Path, bundle_model: Path | None) -> dict[str, Any]:
    """`lambdavision package` of a python3.12 x86_64 function (the zip it deploys)."""
    from lambdavision.aws import wheels
    from lambdavision.aws.package import BuildOptions, build

    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "fn",
                    "Handler": HANDLER,
                    "Runtime": "python3.12",
                    "Architectures": ["x86_64"],
                },
            }
        }
    }
    with tempfile.TemporaryDirectory(prefix="compare-package-") as tmp:
        (Path(tmp) / "fn").mkdir()
        options = BuildOptions(
            cache_dir=wheels.default_cache_dir(os.environ),
            output_dir=Path(tmp) / "out",
            environ=os.environ,
            bundle_model=bundle_model,
        )
        result = build(template, Path(tmp), options, lambda message: None)
        sizes = result.functions[0].zip.sizes
    return {
        "unzipped": sizes.unzipped,
        "zipped": sizes.zipped,
        "parts": dict(list(sizes.parts)[:8]),
        "what": "lambdavision package (python3.12 x86_64)" + (" --bundle-model" if bundle_model else ""),
    }


def package_sizes(variants: Sequence[Variant], cache: Path) -> dict[str, Any]:
    sizes: dict[str, Any] = {}
    log("sizes: the guide's dependency stack")
    sizes["baseline"] = baseline_stack_sizes(cache)
    log("sizes: lambdavision package")
    try:
        plain = lambdavision_package_sizes(cache, None)
        for variant in variants:
            if variant.key == "baseline" or variant.function is None:
                continue
            sizes[variant.key] = plain
            if variant.bundled and variant.artifact is not None:
                sizes[f"{variant.key}+model"] = lambdavision_package_sizes(cache, variant.artifact)
    except Exception as exc:  # packaging needs wheels from the registry: say so, keep the rest
        log(f"sizes: lambdavision package failed: {exc}")
        sizes["error"] = f"lambdavision package failed: {exc}"
    return sizes


# --- costs --------------------------------------------------------------------------------------


def costs(cold: dict[str, Any], warm_large: dict[str, Any], prices: Prices, memory_mb: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arch in ("x86_64", "arm64"):
        warm_ms = warm_large["total"]["median"]
        out[arch] = {
            "warm": cost_per_million(prices, memory_mb=memory_mb, architecture=arch, warm_ms=warm_ms).to_dict(),
            "cold": cost_per_million(
                prices,
                memory_mb=memory_mb,
                architecture=arch,
                warm_ms=warm_ms,
                cold_init_ms=cold["init"]["median"],
                cold_request_ms=cold["first_request"]["median"],
                cold_fraction=COLD_FRACTION,
            ).to_dict(),
        }
    return out


# --- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    label: str
    unit: str
    get: Callable[[dict[str, Any]], float | None]


def _get(*path: str) -> Callable[[dict[str, Any]], float | None]:
    def getter(variant: dict[str, Any]) -> float | None:
        value: Any = variant
        for key in path:
            if not isinstance(value, dict) or value.get(key) is None:
                return None
            value = value[key]
        return float(value) if isinstance(value, int | float) else None

    return getter


def rows() -> list[Row]:
    large, small = "×".join(map(str, IMAGE_SIZES[LARGE])), "×".join(map(str, IMAGE_SIZES[SMALL]))
    table = [
        Row("Cold start (process start → first answer)", "ms", _get("cold", "total", "median")),
        Row("· runtime start + imports", "ms", _get("cold", "runtime_imports", "median")),
        Row("· model load (fetch + read + session)", "ms", _get("cold", "model_load", "median")),
        Row("· first request", "ms", _get("cold", "first_request", "median")),
    ]
    for key, name in ((LARGE, large), (SMALL, small)):
        table += [
            Row(f"Warm p50, {name}", "ms", _get("warm", key, "total", "median")),
            Row("· fetch", "ms", _get("warm", key, "fetch", "median")),
            Row("· decode + preprocess", "ms", _get("warm", key, "decode", "median")),
            Row("· forward", "ms", _get("warm", key, "inference", "median")),
            Row(f"Warm p95, {name}", "ms", _get("warm", key, "total", "p95")),
        ]
    table += [
        Row("Forward floor (ONNX Runtime `run` alone)", "ms", _get("floor", "median")),
        Row(f"Decode floor ({large} JPEG at the model's scale, alone)", "ms", _get("decode_floor", "median")),
        Row(f"Warm p50 above decode + forward floors, {large}", "%", _get("floors_overhead_pct")),
        Row(f"Warm overhead above the floor, {small}", "%", _get("overhead_pct")),
        Row("Peak memory (Max Memory Used)", "MB", _get("peak_memory_mb")),
        Row("Package unzipped (code + dependencies)", "MB", _get("package", "unzipped_mb")),
        Row("Package zipped (code + dependencies)", "MB", _get("package", "zipped_mb")),
        Row("· with the model bundled, unzipped", "MB", _get("package_bundled", "unzipped_mb")),
        Row("· with the model bundled, zipped", "MB", _get("package_bundled", "zipped_mb")),
        Row("$ per 1M, x86_64, all warm", "$", _get("cost", "x86_64", "warm", "total")),
        Row(f"$ per 1M, x86_64, {COLD_FRACTION:.0%} cold", "$", _get("cost", "x86_64", "cold", "total")),
        Row("$ per 1M, arm64, all warm", "$", _get("cost", "arm64", "warm", "total")),
        Row(f"$ per 1M, arm64, {COLD_FRACTION:.0%} cold", "$", _get("cost", "arm64", "cold", "total")),
    ]
    return table


def shown(value: float, unit: str) -> float:
    """The value as the table prints it (ratios are computed from these)."""
    if unit == "$":
        return round(value, 2) if value >= 1 else round(value, 3)
    if unit in ("ms", "%"):
        return round(value) if abs(value) >= 100 else round(value, 1)
    return round(value, 1)


def fmt(value: float, unit: str) -> str:
    if unit == "$":
        return f"${value:,.2f}" if value >= 1 else f"${value:.3f}"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"
    return f"{text} {unit}" if unit != "%" else f"{text} %"


def fmt_ratio(ratio: float) -> str:
    if ratio <= 0:
        return "–"
    return f"1/{1 / ratio:.1f}" if ratio < 1 else f"×{ratio:.2f}"


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each figure per variant: the raw value, as shown, and its ratio to the baseline's shown value."""
    out = []
    variants = results["variants"]
    baseline = next(v for v in variants if v["key"] == "baseline")
    for row in rows():
        base_value = row.get(baseline)
        base_shown = None if base_value is None else shown(base_value, row.unit)
        cells: dict[str, dict[str, Any] | None] = {}
        for variant in variants:
            if not variant["available"]:
                continue
            value = row.get(variant)
            if value is None:
                cells[variant["key"]] = None
                continue
            value_shown = shown(value, row.unit)
            ratio = None
            if variant["key"] != "baseline" and base_shown and row.unit != "%":
                ratio = value_shown / base_shown
            cells[variant["key"]] = {
                "value": value,
                "shown": value_shown,
                "text": fmt(value_shown, row.unit),
                "ratio": ratio,
            }
        out.append({"label": row.label, "unit": row.unit, "cells": cells})
    return out


def markdown_table(results: dict[str, Any]) -> str:
    variants = [v for v in results["variants"] if v["available"]]
    header = "| Figure | " + " | ".join(v["label"] for v in variants) + " |"
    lines = [header, "|" + "---|" * (len(variants) + 1)]
    for row in results["table"]:
        cells = []
        for variant in variants:
            cell = row["cells"].get(variant["key"])
            if cell is None:
                cells.append("–")
            elif cell["ratio"] is None:
                cells.append(cell["text"])
            else:
                cells.append(f"{cell['text']} ({fmt_ratio(cell['ratio'])})")
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    for variant in results["variants"]:
        if variant.get("reason"):
            text += f"\n\n*{variant['label']}: {variant['reason']}.*"
    return text


# --- targets ------------------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    by_key = {row["label"]: row for row in results["table"]}
    rows_ = rows()
    label = {r.label: r for r in rows_}
    large, small = (f"{IMAGE_SIZES[k][0]}×{IMAGE_SIZES[k][1]}" for k in (LARGE, SMALL))
    s3_keys, bundled_keys = {"lv_s3_full", "lv_s3"}, {"lv_bundled", "lv_int8"}
    cold = "Cold start (process start → first answer)"
    checks: list[tuple[str, str, str, float, set[str] | None]] = [
        ("cold start from S3 ≤ 1/6 of the guide app's", cold, "ratio", 1 / 6, s3_keys),
        ("cold start bundled ≤ 1/10 of the guide app's", cold, "ratio", 1 / 10, bundled_keys),
        ("peak memory ≤ 1/4", "Peak memory (Max Memory Used)", "ratio", 1 / 4, None),
        (
            f"warm p50 within 15 % of decode + forward floors ({large})",
            f"Warm p50 above decode + forward floors, {large}",
            "value",
            15.0,
            None,
        ),
        (
            f"warm p50 within 15 % of the forward floor ({small})",
            f"Warm overhead above the floor, {small}",
            "value",
            15.0,
            None,
        ),
        ("package unzipped ≤ 1/8", "Package unzipped (code + dependencies)", "ratio", 1 / 8, None),
        ("package zipped ≤ 40 MB", "Package zipped (code + dependencies)", "value", 40.0, None),
    ]
    out = []
    for name, row_label, kind, limit, keys in checks:
        assert row_label in label, row_label
        row = by_key[row_label]
        verdicts = {}
        for key, cell in row["cells"].items():
            if key == "baseline" or cell is None or (keys is not None and key not in keys):
                continue
            figure = cell["ratio"] if kind == "ratio" else cell["shown"]
            if figure is None:
                continue
            verdicts[key] = {"figure": figure, "met": figure <= limit + 1e-9}
        out.append({"target": name, "row": row_label, "kind": kind, "limit": limit, "variants": verdicts})
    return out


def markdown_targets(results: dict[str, Any]) -> str:
    variants = [v for v in results["variants"] if v["available"] and v["key"] != "baseline"]
    lines = ["| Target | " + " | ".join(v["label"] for v in variants) + " |", "|" + "---|" * (len(variants) + 1)]
    for target in results["targets"]:
        cells = []
        for variant in variants:
            verdict = target["variants"].get(variant["key"])
            if verdict is None:
                cells.append("–")
                continue
            figure = fmt_ratio(verdict["figure"]) if target["kind"] == "ratio" else f"{verdict['figure']:g}"
            cells.append(f"{'met' if verdict['met'] else '**missed**'} ({figure})")
        lines.append(f"| {target['target']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- chart --------------------------------------------------------------------------------------


def chart(results: dict[str, Any], out: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart (pip install matplotlib)"
    variants = [v for v in results["variants"] if v["available"]]
    labels = [v["label"].replace(", ", "\n") for v in variants]
    colours = ["#b05050" if v["key"] == "baseline" else "#4878a8" for v in variants]
    figure, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    x = np.arange(len(variants))

    def stacked(axis: Any, title: str, parts: list[tuple[str, list[float]]]) -> None:
        bottom = np.zeros(len(variants))
        for name, values in parts:
            axis.bar(x, values, bottom=bottom, label=name)
            bottom += np.asarray(values)
        axis.set_title(title, fontsize=10)
        axis.set_xticks(x, labels, fontsize=7)
        axis.legend(fontsize=7)

    def value(v: dict[str, Any], *path: str) -> float:
        return _get(*path)(v) or 0.0

    stacked(
        axes[0][0],
        "cold start, ms (median)",
        [
            ("runtime + imports", [value(v, "cold", "runtime_imports", "median") for v in variants]),
            ("model load", [value(v, "cold", "model_load", "median") for v in variants]),
            ("first request", [value(v, "cold", "first_request", "median") for v in variants]),
        ],
    )
    for axis, key in ((axes[0][1], LARGE), (axes[0][2], SMALL)):
        size = "×".join(map(str, IMAGE_SIZES[key]))
        stacked(
            axis,
            f"warm p50 split, ms, {size}",
            [
                ("fetch", [value(v, "warm", key, "fetch", "median") for v in variants]),
                ("decode + preprocess", [value(v, "warm", key, "decode", "median") for v in variants]),
                ("forward", [value(v, "warm", key, "inference", "median") for v in variants]),
            ],
        )
    simple = [
        (axes[1][0], "peak memory, MB", [value(v, "peak_memory_mb") for v in variants]),
        (axes[1][1], "package unzipped (code + deps), MB", [value(v, "package", "unzipped_mb") for v in variants]),
        (
            axes[1][2],
            f"$ per 1M requests, x86_64, {COLD_FRACTION:.0%} cold",
            [value(v, "cost", "x86_64", "cold", "total") for v in variants],
        ),
    ]
    for axis, title, values in simple:
        axis.bar(x, values, color=colours)
        axis.set_title(title, fontsize=10)
        axis.set_xticks(x, labels, fontsize=7)
    meta = results["meta"]
    figure.suptitle(
        f"lambdavision vs the guide's PyTorch app — {meta['model']}, {meta['memory_mb']} MB, "
        f"{meta['cold_runs']} cold / {meta['warm_requests']} warm, local runtime on {meta['machine']['cpu']}",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return None


# --- the README section -------------------------------------------------------------------------


def _median(variant: dict[str, Any], *path: str) -> float | None:
    return _get(*path)(variant)


def findings(results: dict[str, Any]) -> list[str]:
    """What each difference between variants bought, in numbers from this run."""
    v = {x["key"]: x for x in results["variants"] if x["available"]}
    notes = []
    base, full, s3, bundled = (v.get(k) for k in ("baseline", "lv_s3_full", "lv_s3", "lv_bundled"))
    for variant in (base, s3, bundled):
        parts = (variant or {}).get("cold", {}).get("load_parts") or {}
        if variant and parts:
            listed = ", ".join(f"{name} {stats['median']:,.0f} ms" for name, stats in parts.items() if stats)
            notes.append(f"{variant['label']}: its model load splits into {listed}.")
    if base and s3:
        a, b = _median(base, "cold", "runtime_imports", "median"), _median(s3, "cold", "runtime_imports", "median")
        if a and b:
            notes.append(
                f"ONNX Runtime + numpy + Pillow instead of torch: runtime start + imports {a:,.0f} → {b:,.0f} ms."
            )
    if full and s3:
        a, b = _median(full, "cold", "model_load", "median"), _median(s3, "cold", "model_load", "median")
        if a and b:
            notes.append(
                f"Leaving the .pth out of the serving artifact (now `export`'s default): model load from S3 "
                f"{a:,.0f} → {b:,.0f} ms (the reader stops before a .pth, but the ranges it fetched ahead are paid)."
            )
    if s3 and bundled:
        a, b = _median(s3, "cold", "model_load", "median"), _median(bundled, "cold", "model_load", "median")
        if a and b:
            notes.append(f"Bundling the model in the package instead of S3: model load {a:,.0f} → {b:,.0f} ms.")
    int8 = v.get("lv_int8")
    if bundled and int8:
        a, b = _median(bundled, "cold", "total", "median"), _median(int8, "cold", "total", "median")
        c, d = _median(bundled, "peak_memory_mb"), _median(int8, "peak_memory_mb")
        if a and b and c and d:
            notes.append(
                f"int8 instead of float32 (bundled): cold start {a:,.0f} → {b:,.0f} ms, peak memory {c:,.0f} → "
                f"{d:,.0f} MB (a quarter of the weights to read); judge its accuracy on a trained model."
            )
    if base and s3:
        a, b = _median(base, "warm", LARGE, "decode", "median"), _median(s3, "warm", LARGE, "decode", "median")
        if a and b:
            notes.append(
                f"Decoding the 4032×3024 JPEG in draft mode and preprocessing only the crop: {a:,.0f} → {b:,.0f} ms."
            )
        a, b = _median(base, "warm", LARGE, "inference", "median"), _median(s3, "warm", LARGE, "inference", "median")
        if a and b:
            notes.append(f"Forward pass, TorchScript (torch) → ONNX Runtime: {a:,.0f} → {b:,.0f} ms.")
    by_condition = {c["key"]: {x["key"]: x for x in c["variants"] if x["available"]} for c in results["conditions"]}
    loopback, primary = (
        by_condition.get("loopback"),
        next(
            ({x["key"]: x for x in c["variants"] if x["available"]} for c in results["conditions"] if c["primary"]),
            None,
        ),
    )
    if loopback and primary:
        for key in ("baseline", "lv_s3"):
            a, b = (
                _median(loopback.get(key, {}), "cold", "model_load", "median"),
                _median(primary.get(key, {}), "cold", "model_load", "median"),
            )
            if a and b:
                name = primary[key]["label"]
                notes.append(
                    f"{name}: model load on loopback (S3 at memory speed, whole cores) {a:,.0f} ms → "
                    f"{b:,.0f} ms as on Lambda at {results['meta']['memory_mb']:,} MB."
                )
    return notes


def conditions_markdown(results: dict[str, Any]) -> str:
    large, small = (f"{IMAGE_SIZES[k][0]}×{IMAGE_SIZES[k][1]}" for k in (LARGE, SMALL))
    return conditions_table(results, large, small, shown, fmt, fmt_ratio)


def readme_section(results: dict[str, Any], chart_note: str | None) -> str:
    meta = results["meta"]
    command = meta["command"]
    s3 = meta["s3"]
    others = [c for c in results["conditions"] if not c["primary"]]
    parts = [
        "## Benchmark: lambdavision vs the guide's PyTorch app",
        "",
        f"Made by `{command}` on {meta['date']}: {meta['model']} with random weights. Each variant ran as a real "
        "`awslambdaric` process in lambdavision's local runtime, its model on a moto S3 server behind a loopback "
        "stand-in and its images fetched by URL from a loopback server, under the conditions below. Figures are "
        "medians; each ratio is to the guide's app in the same condition of the same run (1/6.0 = six times less).",
        "",
        "**As on Lambda** (`lambdavision.bench_emulation`): every function environment runs in a cgroup CPU quota of "
        "MemorySize/1769 vCPUs (Lambda's CPU share by memory size; 2,048 MB = 1.16 vCPU), and S3 answers each "
        f"request after a first-byte latency of {s3['latency_ms']:g} ms and sends at most "
        f"{s3['bandwidth_mb_s']:g} MB/s per connection"
        + (f", {s3['aggregate_mb_s']:g} MB/s in all" if s3["aggregate_mb_s"] else "")
        + " (`lambdavision.local.shaped_s3`; the defaults are AWS's published figures, see below). "
        "**On loopback**: whole cores, S3 at memory speed, as these figures were taken before.",
        "",
        f"### {meta['condition']}",
        "",
        f"{meta['cold_runs']} cold starts and {meta['warm_requests']} warm requests per image size and variant, "
        "variants interleaved.",
        "",
        markdown_table(results),
        "",
    ]
    if chart_note is None:
        parts += ["![benchmark chart](benchmarks/results/compare.png)", ""]
    parts += ["### Targets", "", markdown_targets(results), ""]
    parts += [
        "### Every condition: loopback and as on Lambda at 1,024, 2,048 and 3,008 MB",
        "",
        f"{meta['other_cold_runs']} cold starts and {meta['other_warm_requests']} warm requests per image size in "
        f"{'each of the other conditions' if others else 'the condition'}; the same code and models.",
        "",
        conditions_markdown(results),
        "",
    ]
    parts += [
        "ONNX Runtime's intra-op threads follow the vCPUs the memory size buys (ceil(MemorySize/1769), at most the "
        "cores): checked against the quota, the forward floor with them and with the other choice, each worker held "
        "to the same share:",
        "",
        threads_markdown(results),
        "",
    ]
    notes = findings(results)
    if notes:
        parts += ["### What each difference bought", "", *[f"- {n}" for n in notes], ""]
    parts += [
        "### How to read it",
        "",
        f"- {meta['caveat']}",
        "- The machine may be shared with other work: repeat the command for your own figures. Between runs here "
        "the ratios moved by up to 2×, the guide's torch forward pass being the most sensitive to CPU contention.",
        "- Cold start = Init Duration + the first request's Duration: process start to the first answer. The model "
        'load is the function\'s own log line; "runtime start + imports" is the rest of Init.',
        "- Warm figures are the function's Duration (what Lambda bills), split by its `Server-Timing` header. The "
        "floors are what no serving code can remove, each measured alone in a worker process held to the same CPU "
        "share, between the warm rounds: ONNX Runtime's `run` on an already preprocessed input, with the function's "
        "threads, and the 4032×3024 JPEG decoded at the scale the model needs (draft mode), as the function decodes "
        "it.",
        f"- Cost: {meta['prices']}. Warm = every request warm at the 4032×3024 image's p50; "
        f"{COLD_FRACTION:.0%} cold adds Init (billed since 2025-08-01) and the first request's duration. API Gateway "
        "adds $3.50 (REST) or $1.00 (HTTP API) per 1M requests to every variant alike.",
        "- Package sizes: the guide's torch stack is the installed size of torch (CPU) and its requirements with "
        "numpy, Pillow and requests (zipped: torch's own wheel, the rest deflated); lambdavision's is the zip "
        "`lambdavision package` builds for python3.12. A bundled model adds its own size, and a zip over 50 MB "
        "must be deployed from S3 (as `lambdavision package` does), not uploaded directly.",
        "- S3's figures: AWS's *Performance design patterns for Amazon S3* suggests one concurrent request per "
        "85–90 MB/s of throughput and byte-range GETs of 8–16 MB; its *Timeouts and retries for latency-sensitive "
        "applications* puts small requests' median latency in the tens of milliseconds. Lambda's own network "
        "bandwidth is not published; `--s3-aggregate` caps all connections together when you want to assume one. "
        "The guide's app reads its model with one boto3 GET (one connection); lambdavision reads a model over 8 MiB "
        "with parallel ranged GETs.",
    ]
    return "\n".join(parts) + "\n"


# --- main ---------------------------------------------------------------------------------------


@dataclass
class Measured:
    """One condition's samples, before they are summarised."""

    condition: Condition
    variants: list[Variant]
    colds: dict[str, list[ColdRun]]
    warms: dict[str, dict[str, list[WarmRun]]]
    peaks: dict[str, int]
    floors: dict[str, Floor]  # variant key -> its forward floor
    decode: DecodeFloor
    threads: int
    other_threads: Floor  # the serving model's floor with the other thread count (1 or 2): the threads check


def measure_condition(
    condition: Condition,
    models: Models,
    cache: Path,
    moto: str,
    events: dict[str, dict[str, Any]],
    images: dict[str, bytes],
    limiter: CpuLimiter | None,
    cold_runs: int,
    warm_requests: int,
) -> Measured:
    """Every variant of one condition, interleaved; the floors in the same CPU share as the functions."""
    variants = make_variants(models, cache, condition.memory_mb, None if condition.primary else CORE_VARIANTS)
    held = limiter if condition.emulation.cpu_share else None
    threads = threads_for_memory(condition.memory_mb)
    groups: list[WorkerGroup] = []

    def worker_group() -> Callable[[], None] | None:
        groups.append(WorkerGroup(held, condition.memory_mb))
        return groups[-1].preexec()

    try:
        with ShapedS3(moto, condition.emulation.shaping) as stand_in:
            preload(stand_in, s3_uploads(models), cache)
            runner = Runner(shell_env=aws_env(stand_in.url, cache), cpu_limiter=held)
            log(
                f"{condition.key}: floors (ONNX Runtime run alone, {threads} threads; JPEG decode), between warm rounds"
            )
            by_model: dict[Path, Floor] = {}
            floors: dict[str, Floor] = {}
            for variant in variants:
                if variant.function is None or variant.key == "baseline":
                    continue
                model = models.int8 if variant.key == "lv_int8" and models.int8 else models.serving
                if model not in by_model:  # the same ONNX graph has one floor
                    by_model[model] = Floor(model, images[SMALL], threads, preexec=worker_group())
                floors[variant.key] = by_model[model]
            decode = DecodeFloor(models.serving, images[LARGE], preexec=worker_group())
            # ONNX Runtime's threads follow the vCPUs (ceil(MemorySize/1769)): check that against the quota.
            other = Floor(models.serving, images[SMALL], 1 if threads > 1 else 2, preexec=worker_group())
            samplers: list[Floor | DecodeFloor] = [*by_model.values(), decode, other]
            colds, warms, peaks = measure(variants, runner, events, cold_runs, warm_requests, samplers)
        for sampler in samplers:
            sampler.close()  # before their groups go
    finally:
        for group in groups:
            group.close()
    return Measured(condition, variants, colds, warms, peaks, floors, decode, threads, other)


def variant_entries(measured: Measured, sizes: dict[str, Any], prices: Prices) -> list[dict[str, Any]]:
    """Each variant's summary: cold start, warm requests, floors and overheads, sizes, cost."""
    out_variants = []
    memory = measured.condition.memory_mb
    decode_floor = Stats.of(measured.decode.samples) if measured.decode.samples else None
    for variant in measured.variants:
        entry: dict[str, Any] = {"key": variant.key, "label": variant.label, "available": variant.function is not None}
        if variant.reason:
            entry["reason"] = variant.reason
        if variant.function is None:
            out_variants.append(entry)
            continue
        cold = summarise_cold(measured.colds[variant.key])
        warm = {size: summarise_warm(measured.warms[variant.key][size]) for size in (LARGE, SMALL)}
        entry.update({"cold": cold, "warm": warm, "peak_memory_mb": measured.peaks[variant.key]})
        if variant.key in measured.floors:
            floor = measured.floors[variant.key].stats()
            entry["floor"] = floor.to_dict()
            overhead = warm[SMALL]["total"]["median"] - floor.median
            entry["overhead_ms"] = overhead
            entry["overhead_pct"] = max(overhead, 0.0) / floor.median * 100 if floor.median > 0 else None
            if decode_floor is not None:
                entry["decode_floor"] = decode_floor.to_dict()
                both = decode_floor.median + floor.median
                entry["floors_overhead_pct"] = max(warm[LARGE]["total"]["median"] - both, 0.0) / both * 100
        for name, size in (("package", sizes.get(variant.key)), ("package_bundled", sizes.get(f"{variant.key}+model"))):
            if size:
                entry[name] = {
                    "unzipped_mb": size["unzipped"] / 2**20,
                    "zipped_mb": size["zipped"] / 2**20,
                    "what": size["what"],
                    "parts_mb": {k: v / 2**20 for k, v in size["parts"].items()},
                }
        entry["cost"] = costs(cold, warm[LARGE], prices, memory)
        out_variants.append(entry)
    return out_variants


def threads_check(measured: Measured, serving: Path) -> dict[str, Any]:
    """The forward floor with the threads the function uses and with the other choice, same share."""
    own = next((f for key, f in measured.floors.items() if key in ("lv_s3", "lv_bundled")), None)
    return {
        "threads": measured.threads,
        "floor_ms": None if own is None or not own.samples else own.stats().median,
        "other_threads": 1 if measured.threads > 1 else 2,
        "other_floor_ms": measured.other_threads.stats().median if measured.other_threads.samples else None,
    }


def threads_markdown(results: dict[str, Any]) -> str:
    lines = [
        "| Conditions | ONNX Runtime threads (the function's) | forward floor | other choice | its forward floor |",
        "|---|---|---|---|---|",
    ]
    for condition in results["conditions"]:
        check = condition.get("threads_check") or {}
        if check.get("floor_ms") is None or check.get("other_floor_ms") is None:
            continue
        lines.append(
            f"| {condition['label']} | {check['threads']} | {fmt(shown(check['floor_ms'], 'ms'), 'ms')} | "
            f"{check['other_threads']} | {fmt(shown(check['other_floor_ms'], 'ms'), 'ms')} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    cache: Path = args.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    models = build_models(cache, args.quick)
    images = build_images(cache)
    prices = load_prices()
    machine = describe_machine()
    aggregate = None if args.s3_aggregate is None else args.s3_aggregate * MB
    shaping = Shaping(args.s3_latency / 1000, args.s3_bandwidth * MB, aggregate)
    conds = conditions(args.memory_sizes, args.memory, args.loopback_memory or None, shaping)
    measured: list[Measured] = []
    with (
        emulated_cpu(True, warn=log) as limiter,
        moto_server(cache / "logs") as moto,
        ImageServer({k: v for k, v in images.items()}) as web,
    ):
        upload(aws_env(moto, cache), s3_uploads(models))
        events = {key: url_event(web.url_for(key)) for key in images}
        for condition in conds:
            cold_runs, warm = (
                (args.cold_runs, args.warm) if condition.primary else (args.other_cold_runs, args.other_warm)
            )
            log(f"{condition.key}: {condition.label(limiter)}")
            measured.append(measure_condition(condition, models, cache, moto, events, images, limiter, cold_runs, warm))
        primary = next(m for m in measured if m.condition.primary)
        sizes = package_sizes(primary.variants, cache)
        condition_results = [
            {
                **m.condition.to_dict(limiter),
                "threads": m.threads,
                "threads_check": threads_check(m, models.serving),
                "variants": variant_entries(m, sizes, prices),
            }
            for m in measured
        ]
        held = limiter is not None and limiter.share(args.memory).vcpus is not None
    primary_result = next(c for c in condition_results if c["primary"])
    results: dict[str, Any] = {
        "meta": {
            "command": "python benchmarks/compare.py" + (" --quick" if args.quick else ""),
            "date": dt.date.today().isoformat(),
            "quick": args.quick,
            "model": models.name,
            "memory_mb": args.memory,
            "condition": primary_result["label"],
            "threads": primary.threads,
            "cold_runs": args.cold_runs,
            "warm_requests": args.warm,
            "other_cold_runs": args.other_cold_runs,
            "other_warm_requests": args.other_warm,
            "images": {k: {"size": list(IMAGE_SIZES[k]), "bytes": len(v)} for k, v in images.items()},
            "machine": machine.to_dict(),
            "cpu_share_held": held,
            "s3": shaping.to_dict(),
            "caveat": local_caveat(machine, [c.memory_mb for c in conds if c.emulation.cpu_share], cpu_share=held),
            "prices": (
                f"{prices.region}, x86_64 ${prices.gb_second['x86_64']:.10f}".rstrip("0")
                + f" and arm64 ${prices.gb_second['arm64']:.10f}".rstrip("0")
                + f" per GB-second, ${prices.per_request * 1e6:.2f} per 1M requests, read on {prices.lambda_read_on}"
            ),
            "seconds": None,
        },
        "variants": primary_result["variants"],
        "conditions": condition_results,
        "sizes_error": sizes.get("error"),
    }
    results["table"] = table_rows(results)
    results["targets"] = targets(results)
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    return results


def write_outputs(results: dict[str, Any], out: Path) -> None:
    chart_note = chart(results, out / "compare.png")
    if chart_note:
        log(chart_note)
    results["chart"] = None if chart_note else "compare.png"
    results["chart_note"] = chart_note
    (out / "results.json").write_text(json.dumps(results, indent=2))
    table = markdown_table(results) + "\n\n" + markdown_targets(results) + "\n\n" + conditions_markdown(results) + "\n"
    (out / "results.md").write_text(table)
    (out / "README-section.md").write_text(readme_section(results, chart_note))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a small CNN and few repeats (for tests)")
    parser.add_argument("--cold-runs", type=int, help="cold starts per variant (default 5; 2 with --quick)")
    parser.add_argument(
        "--warm", type=int, help="warm requests per image size and variant (default 50; 4 with --quick)"
    )
    parser.add_argument("--floor-runs", type=int, help="ONNX Runtime runs for the floor (default 50; 10 with --quick)")
    parser.add_argument(
        "--memory", type=int, default=MEMORY_MB, help=f"the primary condition's memory, MB (default {MEMORY_MB})"
    )
    parser.add_argument(
        "--memory-sizes",
        type=int,
        nargs="+",
        default=list(MEMORY_SIZES),
        help=f"Lambda-shaped conditions, MB (default {' '.join(map(str, MEMORY_SIZES))})",
    )
    parser.add_argument(
        "--loopback-memory",
        type=int,
        default=LOOPBACK_MB,
        help=f"the loopback condition's memory, MB; 0 leaves it out (default {LOOPBACK_MB})",
    )
    parser.add_argument(
        "--other-cold-runs", type=int, help="cold starts in the other conditions (default: --cold-runs; 1 with --quick)"
    )
    parser.add_argument(
        "--other-warm", type=int, help="warm requests in the other conditions (default: --warm; 2 with --quick)"
    )
    parser.add_argument(
        "--s3-latency", type=float, default=DEFAULT_LATENCY_S * 1000, help="S3 first-byte latency, ms (default 30)"
    )
    parser.add_argument(
        "--s3-bandwidth", type=float, default=DEFAULT_BANDWIDTH / MB, help="S3 MB/s per connection (default 85)"
    )
    parser.add_argument("--s3-aggregate", type=float, help="S3 MB/s for all connections together (default: no cap)")
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE, help="models and images (default benchmarks/.cache)"
    )
    parser.add_argument(
        "--out", type=Path, help="output folder (default benchmarks/results, or benchmarks/results/quick)"
    )
    args = parser.parse_args(argv)
    args.cold_runs = args.cold_runs or (2 if args.quick else 5)
    args.warm = args.warm or (4 if args.quick else 50)
    args.out = args.out or (DEFAULT_OUT / "quick" if args.quick else DEFAULT_OUT)
    args.other_cold_runs = args.other_cold_runs or (1 if args.quick else args.cold_runs)
    args.other_warm = args.other_warm or (2 if args.quick else args.warm)
    if min(args.cold_runs, args.warm, args.other_cold_runs, args.other_warm) < 1:
        parser.error("--cold-runs, --warm, --other-cold-runs and --other-warm must be at least 1")
    for size in (args.memory, *args.memory_sizes, *([args.loopback_memory] if args.loopback_memory else [])):
        if not 128 <= size <= 10_240:
            parser.error(f"memory sizes must be 128..10240 MB, got {size}")
    if args.s3_latency < 0 or args.s3_bandwidth <= 0 or (args.s3_aggregate is not None and args.s3_aggregate <= 0):
        parser.error("--s3-latency must be >= 0, --s3-bandwidth and --s3-aggregate > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = run(args)
    except BenchError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    write_outputs(results, args.out)
    print(markdown_table(results))
    print()
    print(markdown_targets(results))
    print()
    print(conditions_markdown(results))
    log(f"done in {results['meta']['seconds']:.0f} s; outputs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
