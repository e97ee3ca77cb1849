"""What a handler module's source imports at the top level, and whether it defines a name; read with
`ast`, never run. An import guarded by `try: ... except ImportError` (or any `except` that would catch
it) is optional and not counted; neither is one under `if TYPE_CHECKING:`."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


@dataclass(frozen=True)
class Import:
    name: str  # the top-level module: "torch" for `import torch.nn.functional as F`
    line: int


def top_level_imports(source: str, filename: str = "<handler>") -> list[Import]:
    """The modules `source` imports when it is imported (module level, not optional), in order."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError:
        return []  # the runtime reports a syntax error itself, better than we could
    found: dict[str, Import] = {}
    for node in _module_level(tree.body):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            found.setdefault(top, Import(top, node.lineno))
    return list(found.values())


def _module_level(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at import: into if/with/try blocks, not into functions or classes."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.With):
            yield from _module_level(node.body)
        elif isinstance(node, ast.Try):
            if not any(_catches_import_error(h) for h in node.handlers):
                yield from _module_level(node.body)
            for handler in node.handlers:
                yield from _module_level(handler.body)
            yield from _module_level(node.orelse)
            yield from _module_level(node.finalbody)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(t, ast.Name) and t.id in _IMPORT_ERRORS for t in types)


def defines(source: str, name: str) -> bool:
    """Whether `source` binds `name` at module level (def, assignment, import), or might (`*`, __getattr__)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return True
    for node in _module_level(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in (
            name,
            "__getattr__",
        ):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*" or (alias.asname or alias.name.split(".")[0]) == name:
                    return True
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
    return False


__all__ = ["Import", "defines", "top_level_imports"]
