"""`init`: the application folder, the guide's SAM app rebuilt for lambdavision.

`app_files` is pure (options -> {relative path: text}); `write_app_dir` writes them, refusing to
overwrite anything unless forced, and checks every path before writing the first one so a
refusal leaves the folder as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lambdavision.aws.template import TemplateOptions, build_template
from lambdavision.aws.template_names import FUNCTION_ID
from lambdavision.cfn import dump_template
from lambdavision.core.errors import BadRequest
from lambdavision.core.event_builders import dumps_event, invocation_event

DEFAULT_IMAGE_URL = "https://example.com/images/dog.jpg"
DEFAULT_STACK_NAME = "pytorch-sam-app"

FUNCTION_APP = '''\
"""The function's entry point: `Handler: app.lambda_handler` in template.yaml.

lambdavision's handler loads the model named by MODEL_BUCKET / MODEL_KEY once per execution
environment, then answers each API Gateway request `{"url": ...}` (or a raw image body) with
`{"class": ..., "confidence": ...}`. `lambdavision package` ships it with this folder.
"""

from lambdavision.handler import lambda_handler

__all__ = ["lambda_handler"]
'''


@dataclass(frozen=True)
class AppOptions:
    template: TemplateOptions = field(default_factory=TemplateOptions)
    image_url: str = DEFAULT_IMAGE_URL
    stack_name: str = DEFAULT_STACK_NAME


def app_files(options: AppOptions) -> dict[str, str]:
    """Every file of the folder, by relative path."""
    template = options.template
    code_dir = template.code_uri.rstrip("/")
    module = template.handler.rsplit(".", 1)[0]
    return {
        "template.yaml": dump_template(build_template(template)),
        "event.json": _event_json(options.image_url),
        "env.json": json.dumps(
            {FUNCTION_ID: {"MODEL_BUCKET": template.bucket_name, "MODEL_KEY": template.object_key}}, indent=2
        )
        + "\n",
        "README.md": _readme(options),
        f"{code_dir}/{module}.py": FUNCTION_APP,
    }


def write_app_dir(dest: Path, files: dict[str, str], *, force: bool) -> list[Path]:
    """Write `files` under `dest`; BadRequest naming the existing files unless `force`."""
    if dest.exists() and not dest.is_dir():
        raise BadRequest(f"{dest} exists and is not a folder")
    targets = [dest / name for name in files]
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise BadRequest(f"{names} already exist{'s' if len(existing) == 1 else ''}: pass --force to overwrite")
    for target, text in zip(targets, files.values(), strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return targets


def _event_json(image_url: str) -> str:
    # A fixed request id and time keep the file the same from one init to the next.
    event = invocation_event(
        {"url": image_url},
        headers=[("Accept", "application/json"), ("Host", "localhost:3000"), ("User-Agent", "curl/8.5.0")],
        request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        now=1_700_000_000.0,
    )
    return dumps_event(event) + "\n"


def _api_summary(t: TemplateOptions) -> str:
    page = "the upload page at `GET /`" if t.page else "no page (`LAMBDAVISION_PAGE=0`)"
    cors = f"CORS for `{t.cors_origin}`" if t.cors_origin else "no CORS"
    auth = {
        "none": "**public** (no authorisation: `lambdavision init --auth iam|key` to require it)",
        "iam": "IAM authorisation (SigV4-signed callers with `execute-api:Invoke`)",
        "key": (
            f"an API key in the `x-api-key` header, usage plan {t.rate_limit:g} requests/s "
            f"(burst {t.burst_limit}), {t.daily_quota:,} a day; the key's id is the stack output `PyTorchApiKeyId`"
            + ("; the page is open and asks for the key" if t.open_page else "")
        ),
    }[t.auth]
    return f"{page}; {cors}; {auth}."


def _readme(options: AppOptions) -> str:
    t = options.template
    bucket, key, stack = t.bucket_name, t.object_key, options.stack_name
    snapstart = "on (published version + alias `live`)" if t.snapstart else "off"
    routes = ", ".join(f"`{r.method.upper()} {r.path}`" for r in t.api_routes())
    return f"""# An image classifier on AWS Lambda, made by `lambdavision init`

| file | what it is |
|---|---|
| `template.yaml` | CloudFormation: function `{FUNCTION_ID}`, its IAM role (reads only `s3://{bucket}/{key}`), log group, REST API {routes} on stage `Prod` |
| `{t.code_uri}` | the function's code (`{t.handler}`) |
| `event.json` | an API Gateway REST proxy event whose body is `{{"url": "..."}}`: edit the URL |
| `env.json` | the function's environment for local runs: where the model is in S3 |

Function: {t.runtime}, {t.architecture}, {t.memory} MB, {t.timeout} s timeout, SnapStart {snapstart}.
API: {_api_summary(t)}

## The guide's steps, with `lambdavision` in place of `sam`

```sh
# 1. the model artifact (from `lambdavision export`) into S3
aws s3 mb s3://{bucket}
lambdavision upload model.tar.gz s3://{bucket}/{key}

# 2. run it locally (no Docker): the built package (`lambdavision build`, redone when the code changes)
#    on CPython {t.runtime.removeprefix("python")}, as Lambda runs it; --use-venv for the fast loop in this venv
lambdavision local invoke {FUNCTION_ID} -n env.json -e event.json
lambdavision local start-api -n env.json
curl -d '{{"url":"{options.image_url}"}}' -H "Content-Type: application/json" -X POST http://localhost:3000/invocations

# 3. package and deploy
lambdavision package --output-template-file packaged.yaml --s3-bucket {bucket}
lambdavision deploy --template-file packaged.yaml --stack-name {stack} --capabilities CAPABILITY_IAM \\
    --parameter-overrides BucketName={bucket} ObjectKey={key}
#    deploy also takes --memory MB, --snapstart/--no-snapstart, --cors-origin ORIGIN for that deploy,
#    and --arch, which must be the architecture `package` built for (`init --arch`, then package again)

# 4. the endpoint
aws cloudformation describe-stacks --stack-name {stack} --query 'Stacks[].Outputs[?OutputKey==`PyTorchApi`]' --output table
lambdavision endpoint --stack-name {stack}

# 5. logs: one line per request (--filter PATTERN, --start-time '10m ago', --tail, --raw),
#    or latency percentiles, error and cold-start counts over the window
lambdavision logs -n {FUNCTION_ID} --stack-name {stack} --tail
lambdavision logs -n {FUNCTION_ID} --stack-name {stack} --metrics --start-time '1h ago'

# 6. clean up
lambdavision delete --stack-name {stack}     # or: aws cloudformation delete-stack --stack-name {stack}
```

Every AWS command takes `--region`, `--profile` and `--endpoint-url`. Flags you always pass can
live in a `lambdavision.toml` beside this README, one table per command:

```toml
[deploy]
stack-name = "{stack}"
capabilities = ["CAPABILITY_IAM"]
parameter-overrides = {{ BucketName = "{bucket}", ObjectKey = "{key}" }}
```
"""  # noqa: E501 - commands stay on one line to be copied


__all__ = ["DEFAULT_IMAGE_URL", "FUNCTION_APP", "AppOptions", "app_files", "write_app_dir"]
