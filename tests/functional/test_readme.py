"""README.md's command lines, run in order as written, as a new user runs them: the README cannot drift
from the product (issue 18.5, issue 16.7).

The commands are read from README.md itself (tests/fixtures/readme.py): each fenced block and code
span marked `<!-- readme-test -->`, in the README's order. Today: the guide's block (`aws s3 mb`,
`export --torchscript`, `upload`, `init`, `build`, `local invoke`, `local start-api` + `curl`,
`package`, `deploy`, `aws cloudformation describe-stacks`, `endpoint`, `logs --tail`, `delete`), then
`predict` and `bench`. Each block starts in the working folder, as a new terminal would; a `cd`
carries over within it. The second path, from the guide's own folder, is the README's paragraph
under the block: the block's lines up to `init`, the `init --from-sam` span marked
`<!-- readme-test: from-sam -->` instead, then the block's lines from `local invoke` on.

Every line runs in bash as a subprocess — the installed `lambdavision`, the aws CLI, curl — against
moto on 127.0.0.1 (AWS_ENDPOINT_URL) and a loopback image server. What each line must have done is
in readme_steps.py; what the README leaves to its reader is below, one line each. The set-up block
(`make demo`, `make test`) is not run: it is what runs this suite.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.guide_app import copy_guide_app
from tests.fixtures.image_server import ImageServer
from tests.fixtures.models import DEMO_DIR
from tests.fixtures.readme import marked_snippets, words
from tests.fixtures.terminal import Terminal
from tests.functional.readme_steps import BIN, STEPS, Reader, step_name

BUCKET = "readme-models"
SAMPLES = DEMO_DIR / "samples"
# The photo behind IMAGE_URL on each path, and photo.jpg: three classes, so no constant answer passes.
IMAGE_URL_PHOTO = {"init": (SAMPLES / "circle_1.jpg", "circle"), "from-sam": (SAMPLES / "cross_1.jpg", "cross")}
PHOTO_JPG = (SAMPLES / "star_1.jpg", "star")

# The README's placeholders, and what this test puts in their place.
PLACEHOLDERS = {
    "BUCKET": f"{BUCKET}, a bucket on moto (the block's first line makes it)",
    "IMAGE_URL": "demo/samples/circle_1.jpg (cross_1.jpg from the guide's folder) on a loopback image server; "
    "LAMBDAVISION_ALLOW_PRIVATE_URLS=1 lets the function fetch from loopback",
    "localhost:3000": "localhost:PORT, PORT read from start-api's `Running on` line: the suite binds no fixed port, "
    "so a lambdavision.toml (LAMBDAVISION_CONFIG) says [local.start-api] port = 0",
}
# The files the README's lines expect its reader to have, in the working folder before the first line.
USER_FILES = {
    "resnet50_jit.pth": "the guide's TorchScript, traced at 224 px: the demo's trained 5-shape CNN behind a "
    "224 -> 64 px resize (a ResNet-50 would add a minute, and its random answers could not be checked)",
    "classes.txt": "the demo model's 5 class names",
    "photo.jpg": "demo/samples/star_1.jpg",
    "guide-app": "the guide's own folder, copied from /work/shared/reference/guide-app",
}
# What the reader does that is no command line, and what cannot run here as it would on AWS.
BY_HAND = {
    "start-api": "a server: started as in a second terminal; Ctrl-C once the lines that call it (curl) ran",
    "logs --tail": "follows the logs until Ctrl-C: interrupted once it printed the request's lines",
    "event.json": "from the guide's folder: its URL pointed at IMAGE_URL before `local invoke`, as the guide says",
    "logs": "moto runs no function: the lines start-api printed for the curl request go into the deployed "
    "function's log group, as Lambda would write them",
}


@pytest.fixture(scope="module")
def guide_torchscript(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """USER_FILES["resnet50_jit.pth"]: the demo CNN (trained at 64 px) as a 224-px TorchScript model."""
    import torch
    import torch.nn.functional as F

    with tarfile.open(DEMO_DIR / "model.tar.gz") as tar:
        member = tar.extractfile("model.pth")
        assert member is not None
        demo = torch.jit.load(io.BytesIO(member.read()))  # type: ignore[no-untyped-call]

    class At224(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            return self.inner(F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False))

    out = tmp_path_factory.mktemp("guide-torchscript") / "resnet50_jit.pth"
    traced = torch.jit.trace(At224(demo).eval(), torch.zeros(1, 3, 224, 224))  # type: ignore[no-untyped-call]
    torch.jit.save(traced, str(out))
    return out


@pytest.fixture
def terminal(
    tmp_path: Path, aws_env: dict[str, str], package_cache: Path, guide_torchscript: Path
) -> Iterator[Terminal]:
    """A terminal in the reader's working folder, holding USER_FILES, with moto as AWS."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copyfile(guide_torchscript, work / "resnet50_jit.pth")
    with tarfile.open(DEMO_DIR / "model.tar.gz") as tar:
        classes = tar.extractfile("classes.txt")
        assert classes is not None
        (work / "classes.txt").write_bytes(classes.read())
    shutil.copyfile(PHOTO_JPG[0], work / "photo.jpg")
    copy_guide_app(work / "guide-app")
    config = tmp_path / "lambdavision.toml"
    config.write_text("[local.start-api]\nport = 0\n")  # PLACEHOLDERS["localhost:3000"]
    env = {
        **aws_env,  # AWS_ENDPOINT_URL (moto), fake credentials, no config files of this machine
        "PATH": f"{BIN}{os.pathsep}{aws_env['PATH']}",  # `lambdavision` and `aws` as installed
        "LAMBDAVISION_CACHE_DIR": str(package_cache),  # the session's one wheel cache
        "LAMBDAVISION_ALLOW_PRIVATE_URLS": "1",  # PLACEHOLDERS["IMAGE_URL"]
        "LAMBDAVISION_CONFIG": str(config),
    }
    shell = Terminal(work, env, tmp_path)
    try:
        yield shell
    finally:
        shell.close()


def new_reader(terminal: Terminal, image_server: ImageServer, path: str) -> Reader:
    photo, expected = IMAGE_URL_PHOTO[path]
    url = image_server.add(f"/photos/{photo.name}", photo.read_bytes())
    return Reader(terminal, terminal.cwd, path, BUCKET, url, expected, PHOTO_JPG[1])


def test_the_readmes_commands_in_order_as_written(terminal: Terminal, image_server: ImageServer) -> None:
    blocks = [snippet.lines for snippet in marked_snippets() if snippet.label == ""]
    reader = new_reader(terminal, image_server, "init")
    reader.run(blocks)
    shown = [step_name(words(line)) for block in blocks for line in block]
    assert reader.ran == shown
    assert set(shown) == set(STEPS) - {"init --from-sam"}  # no check is left over from an older README
    text = "\n".join(line for block in blocks for line in block)
    assert [name for name in [*PLACEHOLDERS, *USER_FILES] if name not in text] == ["guide-app"]  # none stale


def test_from_the_guides_own_folder(terminal: Terminal, image_server: ImageServer) -> None:
    """The guide's folder copied, `init --from-sam` (the SAM template kept, through AWS's transform), then
    the steps from `local invoke` on: no `build` (`local invoke` builds what is stale)."""
    (block,) = [snippet.lines for snippet in marked_snippets() if snippet.label == "" and snippet.fenced]
    (from_sam,) = [snippet.lines for snippet in marked_snippets() if snippet.label == "from-sam"]
    assert "guide-app" in from_sam[0]
    names = [step_name(words(line)) for line in block]
    lines = (*block[: names.index("init")], *from_sam, *block[names.index("invoke") :])
    reader = new_reader(terminal, image_server, "from-sam")
    reader.run([lines])
    assert reader.ran == [step_name(words(line)) for line in lines]
    assert reader.ran[-1] == "delete" and "build" not in reader.ran
