"""Importing torchvision and fastai beside the CPU build of torch (export side only).

The torchvision 0.28.0 wheel that fits torch 2.13.0 may be a CUDA build whose C library does not
load beside a CPU torch; `import torchvision` then fails in its `_meta_registrations`, because
`torch.library.register_fake` raises for its C ops ("operator torchvision::nms does not exist").
Its models and transforms (all fastai needs) are plain Python and work: for the length of the
import, fake-kernel registrations that fail are skipped, then the real `register_fake` is put
back. Never imported by the Lambda function (no torch there).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from lambdavision.core.errors import ExportError
from lambdavision.export.torch_onnx import import_torch

FASTAI_INSTALL_HINT = "pip install 'lambdavision[fastai]'"


@contextlib.contextmanager
def tolerant_fake_registrations(torch: Any) -> Iterator[None]:
    """While inside, a `torch.library.register_fake` (or its decorator) that raises is a no-op."""
    original: Callable[..., Any] = torch.library.register_fake

    @functools.wraps(original)
    def register_fake(op: Any, func: Any = None, /, *args: Any, **kwargs: Any) -> Any:
        try:
            registered = original(op, func, *args, **kwargs)
        except Exception:  # the op's C library did not load: nothing to register against
            registered = None
        if func is not None:
            return registered

        def decorator(fn: Any) -> Any:
            if registered is None:
                return fn
            try:
                return registered(fn)
            except Exception:
                return fn

        return decorator

    torch.library.register_fake = register_fake
    try:
        yield
    finally:
        torch.library.register_fake = original


def import_torchvision() -> ModuleType:
    torch = import_torch()
    try:
        with tolerant_fake_registrations(torch):
            import torchvision
            import torchvision.transforms
    except ImportError as exc:
        raise ExportError(f"reading torchvision transforms needs torchvision: {FASTAI_INSTALL_HINT}") from exc
    module: ModuleType = torchvision
    return module


def import_fastai_learner() -> ModuleType:
    """`fastai.learner` (and torchvision before it), or an ExportError saying what to install."""
    import_torchvision()
    try:
        import fastai.learner
        import fastai.vision.all
    except ImportError as exc:
        raise ExportError(f"reading a fastai Learner needs fastai: {FASTAI_INSTALL_HINT}") from exc
    learner: ModuleType = fastai.learner
    return learner
