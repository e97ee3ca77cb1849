"""lambdavision: serve a PyTorch / fastai image classifier on AWS Lambda with ONNX Runtime."""

from lambdavision.core.errors import LambdaVisionError

__version__ = "0.1.0"
__all__ = ["LambdaVisionError", "__version__"]
