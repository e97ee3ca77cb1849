"""Can a function's package import what its handler module imports at the top level?

Read from the zip itself (the bytes Lambda gets): the handler module's source, parsed with `ast`,
gives its module-level imports; the zip's members and its layers' members give what it can import;
the runtime's standard library and the SDK Lambda's Python runtimes carry (boto3 and its
requirements) complete the picture. An import guarded by `try: ... except ImportError` (or any
`except` that would catch it) is optional and not counted; neither is one under `if TYPE_CHECKING:`
(`builder.handler_source` reads the source).
"""

from __future__ import annotations

import re
import sys
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lambdavision.builder.handler_source import Import, defines, top_level_imports

if TYPE_CHECKING:
    from lambdavision.builder.zips import BuildResult

# What Lambda's Python runtimes have on sys.path besides the function: the AWS SDK (boto3) and its
# requirements. The local runtime folder installs the same (builder/runtime_client.py).
RUNTIME_PROVIDED: frozenset[str] = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}
)
# Standard-library modules a newer CPython no longer has (this interpreter's list is the base).
REMOVED_FROM_STDLIB: dict[str, frozenset[str]] = {
    "3.12": frozenset({"asynchat", "asyncore", "distutils", "imp", "smtpd"}),
    "3.13": frozenset(
        {"aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "lib2to3", "mailcap", "msilib", "nis"}
        | {"nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib"}
    ),
}
# Too big for any Lambda zip (250 MB unzipped with layers): naming them changes the advice.
TOO_BIG_FOR_LAMBDA: frozenset[str] = frozenset({"torch", "torchvision", "torchaudio", "fastai", "tensorflow"})
_MODULE_FILE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\.[^/]*)?\.(py|pyc|so|pyd)$")
_LAYER_ROOTS = ("python/", "python/lib/python{version}/site-packages/")


@dataclass
class ImportReport:
    """What the handler module imports that the package cannot provide."""

    module_file: str | None  # the handler module's zip member, None when the zip lacks it
    missing: list[Import] = field(default_factory=list)
    handler_defined: bool = True  # False: the module defines no such function
    imports: list[Import] = field(default_factory=list)  # all it imports at the top level

    @property
    def ok(self) -> bool:
        return self.module_file is not None and not self.missing and self.handler_defined


def importable_names(members: Iterable[str], roots: Sequence[str] = ("",)) -> set[str]:
    """Top-level module and package names a zip's members provide, under each of `roots`."""
    names: set[str] = set()
    for member in members:
        for root in roots:
            if not member.startswith(root):
                continue
            rest = member[len(root) :]
            head, sep, _ = rest.partition("/")
            if sep and head.isidentifier():
                names.add(head)  # a package, or a namespace package (PEP 420)
            elif not sep and (match := _MODULE_FILE.match(head)):
                names.add(match.group(1))
    return names


def stdlib_names(python_version: str) -> set[str]:
    """The runtime's standard library, from this interpreter's list minus what `python_version` dropped."""
    removed: set[str] = set()
    for version, names in REMOVED_FROM_STDLIB.items():
        if _version_tuple(python_version) >= _version_tuple(version):
            removed |= names
    return set(sys.stdlib_module_names) - removed


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def handler_module_file(handler: str, members: Iterable[str]) -> str | None:
    """The zip member awslambdaric imports for `handler` ("app.lambda_handler" -> "app.py")."""
    module = handler.rsplit(".", 1)[0]
    base = module.replace(".", "/")
    present = set(members)
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        if candidate in present:
            return candidate
    return None


def check_zip(function_zip: Path, handler: str, python_version: str, layer_zips: Sequence[Path] = ()) -> ImportReport:
    """The ImportReport of `handler` in `function_zip` with its layers, for CPython `python_version`."""
    with zipfile.ZipFile(function_zip) as zf:
        members = zf.namelist()
        module_file = handler_module_file(handler, members)
        if module_file is None:
            return ImportReport(None)
        source = zf.read(module_file).decode("utf-8", errors="replace")
    available = importable_names(members) | stdlib_names(python_version) | RUNTIME_PROVIDED
    layer_roots = [root.format(version=python_version) for root in _LAYER_ROOTS]
    for layer in layer_zips:
        with zipfile.ZipFile(layer) as zf:
            available |= importable_names(zf.namelist(), layer_roots)
    imports = top_level_imports(source, module_file)
    missing = [imp for imp in imports if imp.name not in available]
    return ImportReport(module_file, missing, defines(source, handler.rsplit(".", 1)[1]), imports)


def describe(function_id: str, handler: str, report: ImportReport, runtime: str) -> str | None:
    """The one-line problem (with the fix), or None when the package can import its handler."""
    if report.module_file is None:
        module = handler.rsplit(".", 1)[0].replace(".", "/")
        return (
            f"{function_id}'s Handler {handler} needs {module}.py, which is not in its package: "
            "fix Handler or put the module in the code folder"
        )
    if report.missing:
        listed = ", ".join(f"{imp.name} (line {imp.line})" for imp in sorted(report.missing, key=lambda i: i.name))
        too_big = sorted({imp.name for imp in report.missing} & TOO_BIG_FOR_LAMBDA)
        fix = (
            f"{' and '.join(too_big)} cannot ship in a Lambda zip (250 MB limit): serve the model with "
            "lambdavision's handler instead (`lambdavision init --from-sam` rewrites the guide's app)"
            if too_big
            else "put them in the code folder (pip install --target), or drop the imports"
        )
        are = "is" if len(report.missing) == 1 else "are"
        return (
            f"{function_id}: {report.module_file} imports {listed}, which {are} not in its package nor in "
            f"Lambda's {runtime} runtime, so it would fail with Runtime.ImportModuleError; {fix}"
        )
    if not report.handler_defined:
        name = handler.rsplit(".", 1)[1]
        return f"{function_id}: {report.module_file} defines no {name} (Handler {handler}): fix Handler or the module"
    return None


def built_problems(result: BuildResult) -> list[str]:
    """`describe` for every zip of a build (what `build` and `package` warn about)."""
    problems = []
    for package in result.functions:
        spec = package.spec
        if not spec.handler or "." not in spec.handler:
            continue
        layers = [package.layer.path] if package.layer else []
        report = check_zip(package.zip.path, spec.handler, spec.target.python_version, layers)
        problem = describe(spec.logical_id, spec.handler, report, spec.target.runtime)
        if problem and report.missing and spec.existing_layers:
            problem += " (unless the layers it already names provide them)"
        if problem:
            problems.append(problem)
    return problems


__all__ = [
    "RUNTIME_PROVIDED",
    "ImportReport",
    "built_problems",
    "check_zip",
    "describe",
    "handler_module_file",
    "importable_names",
    "stdlib_names",
]
