"""`deploy --guided` as a subprocess on moto, its answers fed on stdin as a person would type them."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import boto3

from tests.functional.test_deploy import BUCKET, KEY, LAMBDAVISION, STACK, function_config, make_packaged_app

NEW_KEY = "fastai-models/lesson2/model.tar.gz"


def guided(app: Path, env: dict[str, str], answers: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LAMBDAVISION, "deploy", "--guided"], cwd=app, env=env, input="\n".join(answers) + "\n",
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_guided_deploy_asks_confirms_saves_and_deploys(tmp_path: Path, aws_env: dict[str, str]) -> None:
    make_packaged_app(tmp_path)
    answers = [
        "",  # stack name: the default, pytorch-sam-app
        "",  # region: the default, us-east-1 (from AWS_REGION)
        BUCKET,  # the bucket for code packages
        "",  # BucketName: defaults to that bucket
        NEW_KEY,  # ObjectKey
        "y",  # deploy?
        "y",  # save?
    ]
    result = guided(tmp_path, aws_env, answers)
    assert result.returncode == 0, result.stdout + result.stderr
    for prompt in (f"Stack name [{STACK}]", "AWS region [us-east-1]", f"Parameter BucketName [{BUCKET}]"):
        assert prompt in result.stdout
    assert "Capabilities: CAPABILITY_IAM (the template creates IAM resources)" in result.stdout
    assert f"Stack {STACK}: CREATE_COMPLETE" in result.stderr
    assert function_config()["Environment"]["Variables"] == {"MODEL_BUCKET": BUCKET, "MODEL_KEY": NEW_KEY}

    saved = tomllib.loads((tmp_path / "lambdavision.toml").read_text())
    assert saved == {
        "deploy": {
            "template-file": "packaged.yaml",
            "stack-name": STACK,
            "region": "us-east-1",
            "capabilities": ["CAPABILITY_IAM"],
            "parameter-overrides": {"BucketName": BUCKET, "ObjectKey": NEW_KEY},
        },
        "package": {"s3-bucket": BUCKET, "region": "us-east-1"},
    }
    # Next time no flag is needed: the saved settings are deploy's defaults (nothing changed).
    again = subprocess.run(
        [LAMBDAVISION, "deploy"], cwd=tmp_path, env=aws_env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert f"No changes to deploy: stack {STACK} is up to date" in again.stderr

    # Guided again: the saved answers are the defaults now; a changed key updates the stack.
    update = guided(tmp_path, aws_env, ["", "", "", "", KEY, "y", "y"])
    assert update.returncode == 0, update.stderr
    assert f"Parameter ObjectKey [{NEW_KEY}]" in update.stdout and f"Stack {STACK}: UPDATE_COMPLETE" in update.stderr
    assert (
        tomllib.loads((tmp_path / "lambdavision.toml").read_text())["deploy"]["parameter-overrides"]["ObjectKey"] == KEY
    )


def test_declining_deploys_and_saves_nothing(tmp_path: Path, aws_env: dict[str, str]) -> None:
    make_packaged_app(tmp_path)
    result = guided(tmp_path, aws_env, ["", "", BUCKET, "", "", "n"])
    assert result.returncode == 0, result.stderr
    assert "Not deployed." in result.stdout
    assert boto3.client("cloudformation").describe_stacks()["Stacks"] == []
    assert not (tmp_path / "lambdavision.toml").exists()
