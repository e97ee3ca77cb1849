"""Models -> `model.tar.gz` (the `[export]` extra; fastai and torchvision readers need `[fastai]`).

- `export(learn)` / `export_fastai("export.pkl")`: a fastai Learner with its own predict-time
  pipeline and head (`fastai_reader`);
- `export(model, classes, transforms=weights.transforms())`: torchvision's pipeline
  (`torchvision_reader`);
- `export(model, classes)`, `export_torchscript`, `convert`: the classic preprocessing;
- `check`: the photo check against the library's own answers; `torch_onnx`: the ONNX and
  TorchScript copies and their logit checks.

torch, fastai and torchvision are imported inside the functions, so importing this package costs
nothing and a missing library becomes one clear error. int8 quantisation is in
`lambdavision.export.quantize`.
"""

from lambdavision.export.check import CHECK_TOLERANCE
from lambdavision.export.torch_onnx import (
    INSTALL_HINT,
    Agreement,
    ExportError,
    first_line,
    measure_agreement,
    quiet_torch,
)
from lambdavision.export.writer import convert, export, export_fastai, export_torchscript

__all__ = [
    "CHECK_TOLERANCE",
    "INSTALL_HINT",
    "Agreement",
    "ExportError",
    "convert",
    "export",
    "export_fastai",
    "export_torchscript",
    "first_line",
    "measure_agreement",
    "quiet_torch",
]
