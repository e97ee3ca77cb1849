"""Reports the interpreter and what it can import: how a local run proves it runs as Lambda does."""

import importlib.util
import sys

print(f"PROBE init on Python {sys.version.split()[0]}", flush=True)

NAMES = ("numpy", "onnxruntime", "lambdavision", "boto3", "awslambdaric", "click", "torch", "yaml", "pytest")


def lambda_handler(event, context):
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "isolated": sys.flags.isolated,
        "no_site": sys.flags.no_site,
        "path": sys.path,
        "importable": {name: importlib.util.find_spec(name) is not None for name in NAMES},
    }
