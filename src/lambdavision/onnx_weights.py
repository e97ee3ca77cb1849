"""Move an ONNX model's weights out of the graph into `model.onnx.data`, and back.

The serving artifact (format 2) keeps the weights in ONNX's standard external-data file so that
ONNX Runtime memory-maps them at load instead of parsing a 100 MB protobuf and copying every
tensor. Exporting and quantising work on self-contained bytes; these two functions convert
between the forms with the `onnx` library (an export-side dependency, never in the Lambda zip).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from lambdavision.core.artifact import ONNX_DATA_NAME, ONNX_NAME

# Tensors smaller than this stay in the graph (shapes, small constants): not worth a mapping.
MIN_EXTERNAL_BYTES = 1024


def split_weights(model: bytes) -> tuple[bytes, bytes | None]:
    """(graph, weights): the graph refers to its tensors in `model.onnx.data` by that name.

    weights is None when no tensor is large enough to move (the graph is then `model` unchanged).
    """
    import onnx

    proto = onnx.load_from_string(model)
    with tempfile.TemporaryDirectory(prefix="lambdavision-weights-") as tmp:
        path = Path(tmp) / ONNX_NAME
        onnx.save_model(
            proto,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=ONNX_DATA_NAME,
            size_threshold=MIN_EXTERNAL_BYTES,
        )
        data = path.with_name(ONNX_DATA_NAME)
        if not data.is_file() or data.stat().st_size == 0:
            return model, None
        return path.read_bytes(), data.read_bytes()


def join_weights(graph: bytes, weights: bytes | None) -> bytes:
    """One self-contained model from a graph and the `model.onnx.data` it refers to."""
    if weights is None:
        return graph
    import onnx

    with tempfile.TemporaryDirectory(prefix="lambdavision-weights-") as tmp:
        folder = Path(tmp)
        (folder / ONNX_NAME).write_bytes(graph)
        (folder / ONNX_DATA_NAME).write_bytes(weights)
        joined: bytes = onnx.load(str(folder / ONNX_NAME)).SerializeToString()
        return joined
