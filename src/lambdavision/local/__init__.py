"""Run a function locally without Docker: AWS's own runtime client behind a local Runtime API.

`template` reads SAM / CloudFormation templates and env.json; `pool` runs a function's warm
execution environments (`environment`), each talking to its own `runtime_api` server.
"""

from __future__ import annotations
