"""What the Lambda function does with the world: settings, model source and cache, S3 reads, fetch.

One floor above the pure `core`: sockets, TLS, threads, files and the environment live here (and
only here, in the function's package). Imports `core` and the standard library; numpy and ONNX
Runtime only where a model is loaded (`loader`, `backends`), lazily.
"""
