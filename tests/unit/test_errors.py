"""The one exception tree: every error class lives in core/errors.py, HTTP errors carry their status,
CLI-only errors carry none, and each kind becomes an answer or a message in exactly one place."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

import lambdavision
from lambdavision.aws.session import explain
from lambdavision.cli.common import known_error_message
from lambdavision.core import errors
from lambdavision.core.errors import (
    BadRequest,
    ConfigError,
    HttpError,
    LambdaVisionError,
    MethodNotAllowed,
    OptionsFileError,
    PackageError,
    TemplateError,
    http_answer,
)

PACKAGE = Path(lambdavision.__file__).parent
# Control flow inside one module, never shown to anyone: not part of the tree.
INTERNAL = {"Retry", "UnsafeFolder", "_Closed", "_Refused"}


def error_classes_defined_outside_core_errors() -> list[str]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "core" / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name not in INTERNAL:
                bases = {ast.unparse(base) for base in node.bases}
                if (
                    node.name.endswith("Error")
                    or bases & {"Exception", "LambdaVisionError"}
                    or any(base.endswith("Error") for base in bases)
                ):
                    found.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    return found


def test_every_error_class_is_in_core_errors() -> None:
    assert error_classes_defined_outside_core_errors() == []


def tree() -> list[type[LambdaVisionError]]:
    return [
        value
        for value in vars(errors).values()
        if inspect.isclass(value) and issubclass(value, LambdaVisionError) and value.__module__ == errors.__name__
    ]


def test_the_docstring_draws_every_class_of_the_tree() -> None:
    doc = errors.__doc__ or ""
    assert len(tree()) >= 27
    for cls in tree():
        assert f" {cls.__name__} " in doc or f"── {cls.__name__}" in doc, cls.__name__
    assert sorted(errors.__all__) == sorted([cls.__name__ for cls in tree()] + ["http_answer"])


def test_http_errors_carry_a_status_and_cli_errors_none() -> None:
    for cls in tree():
        if issubclass(cls, HttpError):
            assert isinstance(cls.status, int) and 400 <= cls.status <= 599, cls.__name__
        else:
            assert cls.status is None, cls.__name__
    assert not issubclass(OptionsFileError, ConfigError)  # aws.config's error no longer shares the name


def test_http_answer_is_the_one_mapping() -> None:
    assert http_answer(BadRequest("no url")) == (400, {"error": "no url"}, {})
    assert http_answer(MethodNotAllowed("PUT")) == (405, {"error": "PUT"}, {"Allow": "POST, GET, OPTIONS"})
    # A bug, or an error that is not the function's, says nothing of its cause.
    assert http_answer(KeyError("secret")) == (500, {"error": "internal error"}, {})
    assert http_answer(TemplateError("template.yaml: bad")) == (500, {"error": "internal error"}, {})


@pytest.mark.parametrize(
    "exc",
    [
        ClientError({"Error": {"Code": "AccessDenied", "Message": "nope"}}, "CreateStack"),
        ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "DescribeStacks"),
        NoCredentialsError(),
    ],
)
def test_botocore_errors_are_worded_once(exc: Exception) -> None:
    message = known_error_message(exc)
    assert message == explain(exc).message
    assert message and "\n" not in message


def test_cli_messages() -> None:
    assert known_error_message(PackageError("Fn: too big")) == "Fn: too big"
    assert known_error_message(FileNotFoundError(2, "No such file", "x.yaml")) == "no such file: x.yaml"
    assert known_error_message(KeyError("bug")) is None  # a traceback, not a message
