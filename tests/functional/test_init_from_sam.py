"""`init --from-sam`: what it refuses, and a SAM app unlike the guide's (Globals runtime, another handler name)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from click.testing import CliRunner

from lambdavision.cfn import load_app, parse_template
from lambdavision.cli import cli
from tests.fixtures.guide_app import copy_guide_app


def init(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["init", *args])
    return result.exit_code, result.output


def copy_guide(folder: Path) -> Path:
    return copy_guide_app(folder)


def test_converting_in_place_needs_force_and_refuses_without_touching_anything(tmp_path: Path) -> None:
    guide = copy_guide(tmp_path / "guide")
    before = {p: p.read_bytes() for p in guide.rglob("*") if p.is_file()}
    code, output = init("--from-sam", str(guide), str(guide), "--bucket", "models")
    assert code == 1 and "pass --force to overwrite" in output
    assert "pytorch/app.py" in output and "template.yaml" in output and "event.json" not in output
    assert {p: p.read_bytes() for p in guide.rglob("*") if p.is_file()} == before

    code, output = init("--from-sam", str(guide), str(guide), "--bucket", "models", "--force")
    assert code == 0, output
    assert (guide / "pytorch" / "app_original.py").read_bytes() == before[guide / "pytorch" / "app.py"]
    app = load_app(guide / "template.yaml")  # the converted template, read as `local` reads it
    assert app.functions["PyTorchFunction"].runtime == "python3.12"
    assert app.functions["PyTorchFunction"].layers == ()


def test_what_cannot_be_converted_is_one_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        init("--from-sam", str(empty), str(tmp_path / "out"), "--bucket", "b")[1]
        .strip()
        .endswith("(or run `lambdavision init`)")
    )
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "template.yaml").write_text("Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n")
    code, output = init("--from-sam", str(plain), str(tmp_path / "out"), "--bucket", "b")
    assert code == 1 and "is not a SAM template" in output
    guide = copy_guide(tmp_path / "g")
    code, output = init("--from-sam", str(guide), str(tmp_path / "out"), "--bucket", "b", "--memory", "1024")
    assert code == 2 and "--memory cannot be combined with --from-sam" in output
    assert not (tmp_path / "out").exists()


def test_a_sam_app_with_a_globals_runtime_and_another_handler_name(tmp_path: Path) -> None:
    source = tmp_path / "sam"
    (source / "src").mkdir(parents=True)
    (source / "src" / "main.py").write_text("import torch\n\ndef handler(event, context):\n    return 1\n")
    (source / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Globals:\n  Function:\n    Runtime: python3.9\n"
        "Resources:\n"
        "  Classify:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: src/, Handler: main.handler}\n"
    )
    code, output = init(
        "--from-sam", str(source), str(tmp_path / "app"), "--bucket", "models", "--runtime", "python3.13"
    )
    assert code == 0, output
    for change in (
        "Classify Runtime python3.9 -> python3.13",
        "parameter BucketName added (Default models)",
        "parameter ObjectKey added",
        "Classify environment MODEL_BUCKET = !Ref BucketName",
        "src/main.py -> src/main_original.py",
    ):
        assert change in output
    template = parse_template((tmp_path / "app" / "template.yaml").read_text())
    assert template["Globals"]["Function"]["Runtime"] == "python3.13"  # changed where it was written
    handler = (tmp_path / "app" / "src" / "main.py").read_text()
    imported = [n for n in ast.walk(ast.parse(handler)) if isinstance(n, ast.ImportFrom)]
    assert [(i.module, [(a.name, a.asname) for a in i.names]) for i in imported] == [
        ("lambdavision.handler", [("lambda_handler", "handler")])
    ]
    spec = load_app(tmp_path / "app" / "template.yaml").functions["Classify"]
    assert spec.environment == {"MODEL_BUCKET": "models", "MODEL_KEY": "fastai-models/lesson1/model.tar.gz"}


def test_the_guides_placeholders_never_reach_env_json(tmp_path: Path) -> None:
    """The guide's `somebucket` / `somekey` would fail the first `local invoke`: --bucket is required, as
    for `init`, and --key's default is where the README's `upload` puts the model."""
    guide = copy_guide(tmp_path / "guide")
    code, output = init("--from-sam", str(guide), str(tmp_path / "app"))
    assert code == 2 and "init needs --bucket BUCKET" in output
    assert not (tmp_path / "app").exists()

    code, output = init("--from-sam", str(guide), str(tmp_path / "app"), "--bucket", "models")
    assert code == 0, output
    assert "parameter ObjectKey Default 'somekey' -> 'fastai-models/lesson1/model.tar.gz'" in output
    env = json.loads((tmp_path / "app" / "env.json").read_text())
    assert env == {"PyTorchFunction": {"MODEL_BUCKET": "models", "MODEL_KEY": "fastai-models/lesson1/model.tar.gz"}}
