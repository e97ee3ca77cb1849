"""Every `lambdavision ...` command the READMEs show names a real command and only flags it has.

The commands are read from README.md, SECURITY.md and the README `lambdavision init` writes, and
parsed by the CLI's own click parser: placeholders such as `photo.jpg` need not exist, but an
unknown command, flag or choice, a missing required option or a word too many is an error. Running
them is tests/functional/test_readme.py's job; this also covers the commands it does not run.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from lambdavision.appdir import AppOptions, app_files
from lambdavision.aws.template import TemplateOptions
from lambdavision.cli import cli
from tests.fixtures.readme import MARKER, README, REPO, fenced_user_blocks, marked_snippets, shown_commands, words

# Fenced blocks of user commands that no test runs as written, and why (one line each).
NOT_RUN = {
    "lambdavision export --fastai export.pkl -o model.tar.gz": "needs a trained fastai Learner's export.pkl; "
    "test_fastai_export runs this command on the suite's session-trained Learners",
}


def problem(text: str, *, mention: bool = False) -> str | None:
    """Why `text` is not a command the CLI takes, or None (needs `placeholders_exist`).

    A `mention` (a code span in prose that names a command or a flag: "`lambdavision convert`",
    "`lambdavision export --fastai`") may leave out arguments and values; it may not name a command
    or a flag that does not exist."""
    args = words(text)[1:]
    command: click.Command = cli
    names = ["lambdavision"]
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        sub = command.get_command(click.Context(command), args[0])
        if sub is None:
            return f"{' '.join(names)} has no command {args[0]!r}"
        names.append(args.pop(0))
        command = sub
    try:
        command.make_context(" ".join(names), list(args))
    except click.exceptions.Exit:
        return None  # --help or --version
    except click.MissingParameter as exc:
        return None if mention else f"{' '.join(names)}: {exc.format_message()}"
    except click.BadOptionUsage as exc:
        return None if mention and "requires an argument" in exc.message else f"{' '.join(names)}: {exc.message}"
    except click.ClickException as exc:
        return f"{' '.join(names)}: {exc.format_message()}"
    return None


@pytest.fixture(autouse=True)
def placeholders_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    """A path the README names (photo.jpg, env.json, GUIDE_DIR) is the reader's: it need not exist here.
    Everything else (commands, flags, choices, ranges, required options, extra words) is checked."""

    def convert(self: click.Path, value: str, param: click.Parameter | None, ctx: click.Context | None) -> object:
        return self.coerce_path_result(value)

    monkeypatch.setattr(click.Path, "convert", convert)


def init_readme(folder: Path) -> Path:
    options = AppOptions(template=TemplateOptions(bucket_name="my-models"))
    path = folder / "README.md"
    path.write_text(app_files(options)["README.md"])
    return path


@pytest.mark.parametrize("source", ["README.md", "SECURITY.md", "init's README.md"])
def test_every_lambdavision_command_shown_is_one_the_cli_takes(source: str, tmp_path: Path) -> None:
    path = init_readme(tmp_path) if source == "init's README.md" else REPO / source
    shown = shown_commands(path)
    assert len(shown) >= 3  # the files do show commands: the parser found them
    run = {line for snippet in marked_snippets(path) for line in snippet.lines}
    problems = [
        f"{source}:{item.line}: `{item.text}`: {why}"
        for item in shown
        if (why := problem(item.text, mention=not item.fenced and item.text not in run))
    ]
    assert problems == []


def test_the_check_catches_what_a_drifted_readme_would_say() -> None:
    assert problem("lambdavision predict photo.jpg --model model.tar.gz") is None
    assert problem("lambdavision local start-api -n env.json") is None  # env.json need not exist here
    assert "No such option '--modle'" in (problem("lambdavision predict photo.jpg --modle model.tar.gz") or "")
    assert "has no command 'serve'" in (problem("lambdavision local serve") or "")
    assert "unexpected extra argument (b.jpg)" in (problem("lambdavision predict a.jpg b.jpg -m m.tar.gz") or "")
    assert problem("lambdavision convert", mention=True) is None
    assert "Missing argument 'OLD'" in (problem("lambdavision convert") or "")
    assert "No such option '--fastia'" in (problem("lambdavision export --fastia", mention=True) or "")
    assert "Invalid value for '--arch'" in (problem("lambdavision bench --model m --image p --arch sparc") or "")
    assert "Missing option '--model'" in (problem("lambdavision bench --image p") or "")


def test_every_block_of_user_commands_is_run_or_says_why_not() -> None:
    marked = {snippet.line for snippet in marked_snippets() if snippet.fenced}
    unmarked = [(line, lines) for line, lines in fenced_user_blocks() if line not in marked]
    unexplained = [
        f"README.md:{line}: {text}"
        for line, lines in unmarked
        for text in lines
        if text.startswith(("lambdavision ", "aws ", "curl ")) and text.split("#")[0].strip() not in NOT_RUN
    ]
    assert unexplained == []
    assert marked, f"no block of {README} is marked <!-- readme-test -->"


def test_every_marker_marks_a_command() -> None:
    """A span's marker that starts a line opens an HTML block (GitHub then prints the span as raw text),
    and a marker not right before a block or span marks nothing: either would drop a command silently."""
    markers = MARKER.findall(README.read_text(encoding="utf-8"))
    assert len(markers) == len(marked_snippets()) >= 4
