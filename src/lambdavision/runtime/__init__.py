"""The Lambda function itself, one floor above the pure `core`: its App, its settings, and what it
does with the world (model source and cache, S3 reads, image fetch, the inference backend).

Sockets, TLS, threads, files and the environment live here (and only here, in the function's
package); it imports nothing of lambdavision but `core` (import-linter's contract). ONNX Runtime
and torch are imported only when a model loads; boto3 only when the lean S3 GET cannot serve.
"""
