"""The pure core: errors, artifact and manifest, tar safety, preprocessing, classification, events,
the URL policy and SigV4 signing.

Imports only the standard library, numpy and Pillow, and does no I/O of its own: no sockets, TLS,
threads, files or environment (that is `runtime`), never boto3, click or torch. `make test` holds
it to that (import-linter's contracts in pyproject.toml).
"""
