"""`lambdavision init [DIR]` as a subprocess: the folder it writes, and its refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lambdavision.aws.template import TemplateOptions, build_template
from lambdavision.cfn import load_app as load_local_template
from lambdavision.cfn import parse_template as load_template
from lambdavision.core.events import RestApiV1, infer_source

BIN = Path(sys.executable).parent
LAMBDAVISION = str(BIN / "lambdavision")
FILES = ["template.yaml", "event.json", "env.json", "README.md", "function/app.py"]


def init(*args: str, cwd: Path, bucket: str | None = "my-bucket") -> subprocess.CompletedProcess[str]:
    """`lambdavision init ARGS` (with `--bucket my-bucket` unless ARGS name one, or bucket=None)."""
    extra = ["--bucket", bucket] if bucket is not None and "--bucket" not in args else []
    return subprocess.run([LAMBDAVISION, "init", *args, *extra], cwd=cwd, capture_output=True, text=True, timeout=60)


def cfn_lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "cfn-lint"), *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_init_writes_the_app_folder_and_cfn_lint_passes(tmp_path: Path) -> None:
    result = init("app", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    app = tmp_path / "app"
    assert sorted(str(p.relative_to(app)) for p in app.rglob("*") if p.is_file()) == sorted(FILES)

    template = load_template((app / "template.yaml").read_text())
    assert template == build_template(TemplateOptions())
    lint = cfn_lint(app / "template.yaml")
    assert lint.returncode == 0, lint.stdout + lint.stderr

    event = json.loads((app / "event.json").read_text())
    assert infer_source(event) is RestApiV1
    assert (event["httpMethod"], event["path"], event["isBase64Encoded"]) == ("POST", "/invocations", False)
    assert event["requestContext"]["stage"] == "Prod"
    assert json.loads(event["body"]) == {"url": "https://example.com/images/dog.jpg"}

    assert json.loads((app / "env.json").read_text()) == {
        "PyTorchFunction": {"MODEL_BUCKET": "my-bucket", "MODEL_KEY": "fastai-models/lesson1/model.tar.gz"}
    }
    readme = (app / "README.md").read_text()
    for line in (
        "lambdavision local invoke PyTorchFunction -n env.json -e event.json",
        "lambdavision local start-api -n env.json",
        "lambdavision package --output-template-file packaged.yaml --s3-bucket my-bucket",
        "lambdavision deploy --template-file packaged.yaml --stack-name pytorch-sam-app --capabilities CAPABILITY_IAM",
        "--parameter-overrides BucketName=my-bucket ObjectKey=fastai-models/lesson1/model.tar.gz",
        "aws cloudformation describe-stacks --stack-name pytorch-sam-app --query "
        "'Stacks[].Outputs[?OutputKey==`PyTorchApi`]' --output table",
        "lambdavision logs -n PyTorchFunction --stack-name pytorch-sam-app --tail",
    ):
        assert line in readme


def test_function_code_resolves_to_lambdavisions_handler(tmp_path: Path) -> None:
    assert init(str(tmp_path), cwd=tmp_path).returncode == 0
    probe = subprocess.run(
        [sys.executable, "-c", "import app, lambdavision.handler as h; print(app.lambda_handler is h.lambda_handler)"],
        cwd=tmp_path / "function",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "True", probe.stderr


def test_options_shape_the_template_and_env(tmp_path: Path) -> None:
    result = init(
        "--bucket", "models-bucket", "--key", "m/model.tar.gz", "--arch", "arm64", "--memory", "4096",
        "--timeout", "20", "--runtime", "python3.13", "--snapstart", "--log-retention", "7",
        "--image-url", "https://images.example.org/cat.png",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    template = load_template((tmp_path / "template.yaml").read_text())
    assert template == build_template(
        TemplateOptions(
            runtime="python3.13", architecture="arm64", memory=4096, timeout=20, snapstart=True,
            log_retention_days=7, bucket_name="models-bucket", object_key="m/model.tar.gz",
        )
    )  # fmt: skip
    props = template["Resources"]["PyTorchFunction"]["Properties"]
    assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert props["Architectures"] == ["arm64"]
    lint = cfn_lint(tmp_path / "template.yaml")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert json.loads((tmp_path / "env.json").read_text()) == {
        "PyTorchFunction": {"MODEL_BUCKET": "models-bucket", "MODEL_KEY": "m/model.tar.gz"}
    }
    event = json.loads((tmp_path / "event.json").read_text())
    assert json.loads(event["body"]) == {"url": "https://images.example.org/cat.png"}


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    assert init(cwd=tmp_path).returncode == 0
    (tmp_path / "env.json").write_text("my edits\n")
    again = init(cwd=tmp_path)
    assert again.returncode == 1
    assert again.stdout == ""
    assert len(again.stderr.strip().splitlines()) == 1
    assert "--force" in again.stderr and "env.json" in again.stderr
    assert (tmp_path / "env.json").read_text() == "my edits\n"

    forced = init("--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert json.loads((tmp_path / "env.json").read_text())["PyTorchFunction"]["MODEL_BUCKET"] == "my-bucket"


def test_one_existing_file_blocks_all_writes(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("mine\n")
    result = init(cwd=tmp_path)
    assert result.returncode == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]


def test_python311_is_refused_with_the_reason(tmp_path: Path) -> None:
    result = init("app", "--runtime", "python3.11", cwd=tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "glibc" in result.stderr and "python3.12" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "app").exists()


def test_a_file_where_the_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "app").write_text("not a folder")
    result = init("app", cwd=tmp_path)
    assert result.returncode == 2  # click's usage error
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1] == "Error: Invalid value for '[DIRECTORY]': Directory 'app' is a file."
    )


def test_default_init_warns_that_the_api_is_public_and_serves_the_page(tmp_path: Path) -> None:
    result = init(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert "public" in warning and "--auth iam" in warning and "--auth key" in warning
    # The page and the API, as `local start-api` reads the template.
    app = load_local_template(tmp_path / "template.yaml")
    assert {(r.method, r.path) for r in app.routes} == {("POST", "/invocations"), ("GET", "/")}
    assert "`GET /`" in (tmp_path / "README.md").read_text()


def test_page_cors_and_auth_options_and_cfn_lint_on_every_variant(tmp_path: Path) -> None:
    variants = {
        "no-page": (["--no-page"], TemplateOptions(page=False)),
        "cors": (["--cors-origin", "https://example.org"], TemplateOptions(cors_origin="https://example.org")),
        "iam": (["--auth", "iam", "--cors-origin", "*"], TemplateOptions(auth="iam", cors_origin="*")),
        "key": (
            ["--auth", "key", "--rate-limit", "2.5", "--burst-limit", "5", "--daily-quota", "500", "--snapstart"],
            TemplateOptions(auth="key", rate_limit=2.5, burst_limit=5, daily_quota=500, snapstart=True),
        ),
    }
    outputs = {}
    for name, (args, expected) in variants.items():
        result = init(name, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        outputs[name] = result.stderr
        assert load_template((tmp_path / name / "template.yaml").read_text()) == build_template(expected)
    lint = cfn_lint(*(tmp_path / name / "template.yaml" for name in variants))
    assert lint.returncode == 0, lint.stdout + lint.stderr

    no_page = load_local_template(tmp_path / "no-page" / "template.yaml")
    assert [(r.method, r.path) for r in no_page.routes] == [("POST", "/invocations")]
    assert no_page.functions["PyTorchFunction"].environment["LAMBDAVISION_PAGE"] == "0"
    cors = load_local_template(tmp_path / "cors" / "template.yaml")
    assert {(r.method, r.path) for r in cors.routes} == {
        ("POST", "/invocations"), ("OPTIONS", "/invocations"), ("GET", "/"), ("OPTIONS", "/"),
    }  # fmt: skip
    assert cors.functions["PyTorchFunction"].environment["LAMBDAVISION_CORS_ORIGIN"] == "https://example.org"

    assert "Warning:" not in outputs["iam"] and "SigV4" in outputs["iam"]
    assert "x-api-key" in outputs["key"] and "--output-key PyTorchApiKeyId" in outputs["key"]
    assert "GET / (the page) needs the same authorisation" in outputs["key"]
    readme = (tmp_path / "key" / "README.md").read_text()
    assert "x-api-key" in readme and "500 a day" in readme


def test_usage_plan_flags_need_auth_key_and_a_bad_origin_is_one_line(tmp_path: Path) -> None:
    plan = init("app", "--daily-quota", "10", cwd=tmp_path)
    assert plan.returncode == 2
    assert "--daily-quota set the API key's usage plan: use with --auth key" in plan.stderr
    origin = init("app", "--cors-origin", "https://example.org/page", cwd=tmp_path)
    assert origin.returncode == 1
    (line,) = origin.stderr.strip().splitlines()
    assert "not an origin" in line and "Traceback" not in origin.stderr
    assert not (tmp_path / "app").exists()


def test_init_without_a_bucket_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """No placeholder bucket: a made-up `my-bucket` in env.json made the next command fail (NoSuchBucket)."""
    result = init("app", cwd=tmp_path, bucket=None)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: init needs --bucket BUCKET: the S3 bucket that holds (or will hold) the model; "
        "create it with `aws s3 mb s3://BUCKET` if it does not exist yet"
    )
    assert not (tmp_path / "app").exists()
