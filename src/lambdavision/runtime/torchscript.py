"""TorchScript on the CPU: the guide's classic artifacts (a .pth, no model.onnx), served outside Lambda.

torch is imported only here, and only when such an artifact loads: a Lambda package carries none,
and the message then says to convert the artifact (`lambdavision convert`).
"""

from __future__ import annotations

import io

import numpy as np

from lambdavision.core.errors import ArtifactError


class TorchScriptBackend:
    """torch.jit on the CPU, for artifacts that carry only the guide's TorchScript .pth."""

    name = "torchscript"

    def __init__(self, model: bytes, source: str, input_shape: tuple[int, int], in_lambda: bool = False) -> None:
        try:
            import torch
        except ImportError:
            raise ArtifactError(torch_missing_message(source, in_lambda)) from None
        self._torch = torch
        try:
            self.module = torch.jit.load(io.BytesIO(model), map_location="cpu").eval()  # type: ignore[no-untyped-call]
            with torch.inference_mode():
                probe = self.module(torch.zeros(1, 3, *input_shape))
        except Exception as exc:
            raise ArtifactError(f"{source}: the TorchScript model cannot be loaded or run: {exc}") from None
        self._width = int(probe.shape[-1]) if probe.ndim == 2 else None

    @property
    def output_width(self) -> int | None:
        return self._width

    def run(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            out = self.module(self._torch.from_numpy(batch))
        return np.asarray(out.numpy())


def torch_missing_message(source: str, in_lambda: bool) -> str:
    """Why a TorchScript-only artifact cannot load here, with the fix that is right where it runs.

    Inside a Lambda function (AWS's, or lambdavision's local runtime running the built package)
    torch cannot be installed: only converting the artifact helps.
    """
    convert = (
        "run `lambdavision convert model.tar.gz model-onnx.tar.gz` (it adds ONNX) and upload that, "
        "or upload with `lambdavision upload --convert`"
    )
    if in_lambda:
        return (
            f"{source} is a classic tarball (TorchScript .pth + classes.txt, no model.onnx), and a Lambda "
            f"package carries no torch to run it: {convert}"
        )
    return (
        f"{source} has no model.onnx, only TorchScript, which needs torch: {convert}; or, to serve it on this "
        "machine only, `pip install 'lambdavision[export]'`"
    )


__all__ = ["TorchScriptBackend", "torch_missing_message"]
