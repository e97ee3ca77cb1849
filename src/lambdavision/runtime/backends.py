"""Inference engines behind the Classifier: ONNX Runtime (serving) and TorchScript (classic artifacts).

Both are imported lazily: the Lambda function imports onnxruntime only, and torch only when an
artifact has no ONNX model (the guide's classic layout, served outside Lambda).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lambdavision.core.artifact import ONNX_DATA_NAME, Artifact
from lambdavision.core.errors import ArtifactError
from lambdavision.runtime.settings import Settings
from lambdavision.runtime.torchscript import TorchScriptBackend


class OnnxBackend:
    """ONNX Runtime on the CPU, from a file path (preferred: no copy in Python) or the model's bytes.

    From a path, ONNX Runtime memory-maps the weights file beside it; from bytes, `weights` is the
    content of the model.onnx.data it refers to (format-2 artifacts read into memory).
    """

    name = "onnxruntime"

    def __init__(
        self,
        model: bytes | Path,
        source: str,
        threads: int | None = None,
        input_shape: tuple[int, int] | None = None,
        weights: bytes | None = None,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        # No busy-waiting after each run: on Lambda's fractional vCPUs (and several environments
        # sharing cores locally) spinning threads steal the CPU the next request needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # No pre-planned block for all activations: a ResNet-50's peak memory fell 190 -> 177 MB,
        # warm latency unchanged (the arena still reuses buffers between requests).
        options.enable_mem_pattern = False
        if not isinstance(model, Path):
            # From bytes, ONNX Runtime would look for external data relative to the working
            # directory (and accept `../` inside it): give it the only file a graph may name, from
            # memory, so it never reads the disk; empty for a self-contained (format 1) graph.
            buffer = np.frombuffer(weights, dtype=np.uint8) if weights else np.zeros(1, dtype=np.uint8)
            options.add_external_initializers_from_files_in_memory([ONNX_DATA_NAME], [buffer], [len(weights or b"")])
        try:
            model_arg = str(model) if isinstance(model, Path) else model
            self.session = ort.InferenceSession(model_arg, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own non-exported exception types
            raise ArtifactError(f"{source}: model.onnx cannot be loaded by ONNX Runtime: {exc}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ArtifactError(f"{source}: model.onnx must have exactly one input, it has {len(inputs)}")
        self.input_name = inputs[0].name
        _check_input_shape(inputs[0].shape, source, input_shape)
        shape = self.session.get_outputs()[0].shape
        self._width = shape[-1] if shape and isinstance(shape[-1], int) else None

    @property
    def output_width(self) -> int | None:
        return self._width

    def run(self, batch: np.ndarray) -> np.ndarray:
        outputs: list[Any] = self.session.run(None, {self.input_name: batch})
        return np.asarray(outputs[0])


def _check_input_shape(shape: list[Any], source: str, input_shape: tuple[int, int] | None) -> None:
    """Refuse at load what would fail every request: wrong rank, fixed batch, other image size."""
    if len(shape) != 4:
        raise ArtifactError(f"{source}: model.onnx takes a rank-{len(shape)} input, not (batch, 3, H, W)")
    batch, channels, height, width = shape
    if isinstance(batch, int):
        raise ArtifactError(f"{source}: model.onnx has a fixed batch size {batch}; export it with a dynamic batch")
    if isinstance(channels, int) and channels != 3:
        raise ArtifactError(f"{source}: model.onnx takes {channels} channels, not 3 (RGB)")
    if input_shape is None:
        return
    for name, dim, expected in (("height", height, input_shape[0]), ("width", width, input_shape[1])):
        if isinstance(dim, int) and dim != expected:
            raise ArtifactError(
                f"{source}: model.onnx takes {name} {dim} but lambdavision.json's preprocessing makes {expected}"
            )


def backend_for(artifact: Artifact, settings: Settings) -> OnnxBackend | TorchScriptBackend:
    model = artifact.onnx_path if artifact.onnx_path is not None else artifact.onnx
    if model is not None:
        # onnx_data is set only for a model read into memory (streamed to disk, it is in the folder).
        return OnnxBackend(
            model, artifact.source, settings.threads, artifact.preprocessing.input_shape, artifact.onnx_data
        )
    if artifact.torchscript is not None:
        in_lambda = settings.function_name is not None  # AWS_LAMBDA_FUNCTION_NAME: inside a Lambda function
        return TorchScriptBackend(artifact.torchscript, artifact.source, artifact.preprocessing.input_shape, in_lambda)
    raise ArtifactError(f"{artifact.source}: holds neither model.onnx nor a TorchScript .pth")


__all__ = ["OnnxBackend", "TorchScriptBackend", "backend_for"]
