"""The layout holds: the core stays pure, the serving path stays light, the public surface is small."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lambdavision

HEAVY = ("boto3", "botocore", "click", "rich", "torch", "http.server", "socketserver", "onnxruntime")


def imported_after(statement: str) -> list[str]:
    listing = f"sorted(m for m in {HEAVY!r} if m in sys.modules)"
    script = f"import sys\n{statement}\nimport json\nprint(json.dumps({listing}))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    result: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def modules_of(package: str) -> list[str]:
    folder = Path(lambdavision.__file__).parent / package
    return sorted(f"lambdavision.{package}.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__")


def test_core_imports_no_adapter_library() -> None:
    modules = modules_of("core")
    assert {"lambdavision.core.artifact", "lambdavision.core.errors", "lambdavision.core.sigv4"} <= set(modules)
    assert imported_after("\n".join(f"import {m}" for m in modules)) == []


def test_runtime_imports_no_adapter_library() -> None:
    # ONNX Runtime is imported by the backend when a model loads, never by importing the runtime.
    assert imported_after("\n".join(f"import {m}" for m in modules_of("runtime"))) == []


def test_handler_import_outside_a_runtime_loads_nothing_heavy() -> None:
    # Outside a Lambda runtime the model (and onnxruntime) load on the first call, not at import.
    assert imported_after("import lambdavision.handler") == []


def test_public_surface() -> None:
    assert lambdavision.__all__ == ["LambdaVisionError", "__version__"]
    for name in lambdavision.__all__:
        assert hasattr(lambdavision, name)
