"""Measure a function as Lambda would see it, on this machine: `lambdavision bench` and benchmarks/*.py.

- `measure`: `bench_model`, one model at several memory sizes (what `lambdavision bench` runs);
- `runner`: one function's cold starts and warm requests in real `awslambdaric` environments;
- `floor`: the parts of a request no serving code can remove (ONNX Runtime's run, the decode);
- `emulation`, `s3`, `conditions`: Lambda's CPU share and S3 over a shaped network, and the
  conditions compare.py measures under;
- `stats`, `timing`, `machine`, `images`, `report`, `pricing`: the pieces those share.
"""
