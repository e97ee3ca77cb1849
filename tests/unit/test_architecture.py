"""The layout holds: the core stays pure, the serving path stays light, the public surface is small."""

from __future__ import annotations

import json
import subprocess
import sys

import lambdavision

HEAVY = ("boto3", "botocore", "click", "rich", "torch", "http.server", "socketserver", "onnxruntime")


def imported_after(statement: str) -> list[str]:
    listing = f"sorted(m for m in {HEAVY!r} if m in sys.modules)"
    script = f"import sys\n{statement}\nimport json\nprint(json.dumps({listing}))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    result: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_core_imports_no_adapter_library() -> None:
    modules = (
        *("artifact", "classify", "decode", "errors", "events", "fetch", "manifest", "page", "payload"),
        *("preprocess", "redact", "s3get", "seal", "steps", "tarstream", "telemetry", "urlpolicy"),
    )
    assert imported_after("\n".join(f"import lambdavision.core.{m}" for m in modules)) == []


def test_handler_import_outside_a_runtime_loads_nothing_heavy() -> None:
    # Outside a Lambda runtime the model (and onnxruntime) load on the first call, not at import.
    assert imported_after("import lambdavision.handler") == []


def test_public_surface() -> None:
    assert lambdavision.__all__ == ["LambdaVisionError", "__version__"]
    for name in lambdavision.__all__:
        assert hasattr(lambdavision, name)
