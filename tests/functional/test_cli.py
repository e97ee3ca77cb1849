"""The CLI as a user runs it: predict, flag defaults from lambdavision.toml, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fixtures.colour import colour_image
from tests.fixtures.image_server import ImageServer

LAMBDAVISION = str(Path(sys.executable).with_name("lambdavision"))


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LAMBDAVISION, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_predict_file_and_url(colour_artifact: Path, tmp_path: Path, image_server: ImageServer) -> None:
    image = tmp_path / "x.jpg"
    image.write_bytes(colour_image("green"))
    done = run(["predict", str(image), "--model", str(colour_artifact), "--topk", "2"], tmp_path)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["class"] == "green" and len(answer["predictions"]) == 2
    url = image_server.add("/b.jpg", colour_image("blue"))
    done = run(["predict", url, "--model", str(colour_artifact)], tmp_path)
    assert json.loads(done.stdout)["class"] == "blue"


def test_config_file_defaults_and_flags_win(colour_artifact: Path, tmp_path: Path) -> None:
    image = tmp_path / "x.jpg"
    image.write_bytes(colour_image("red"))
    (tmp_path / "lambdavision.toml").write_text(f'[predict]\nmodel = "{colour_artifact}"\ntopk = 1\n')
    done = run(["predict", str(image)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["predictions"]) == 1
    done = run(["predict", str(image), "--topk", "3"], tmp_path)
    assert len(json.loads(done.stdout)["predictions"]) == 3


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "lambdavision.toml").write_text("[nosuchcommand]\nx = 1\n")
    done = run(["--help"], tmp_path)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "nosuchcommand" in done.stderr


def test_known_errors_are_one_line_without_traceback(tmp_path: Path, colour_artifact: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    cases = [
        ["predict", str(text), "--model", str(colour_artifact)],
        ["predict", str(tmp_path / "missing.jpg"), "--model", str(colour_artifact)],
        ["predict", str(text), "--model", str(tmp_path / "missing.tar.gz")],
        ["predict", str(text), "--model", str(text)],
    ]
    for args in cases:
        done = run(args, tmp_path)
        assert done.returncode != 0, args
        assert "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith("Error: ") and done.stderr.count("\n") == 1, done.stderr
