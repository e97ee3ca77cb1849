"""AWS adapters: the template (pure), the boto3 session and error mapping, and the modules that
upload, deploy and read logs. The only place lambdavision writes to AWS."""

from __future__ import annotations
