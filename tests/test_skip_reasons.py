"""Skip reasons are read by whoever runs the tests: they never show a path of the machine the tests were
written on (issue 9.20: "…/shared/reference/… not found")."""

from __future__ import annotations

import ast
import pathlib
import re

TESTS = pathlib.Path(__file__).resolve().parent
# names that hold a folder or file of this checkout (or one beside it)
PATH_NAME = re.compile(r"ROOT|REFERENCE|CONTRACT|TABLES|STUB|HERE|_DIR$|_PATH$|^path$|folder", re.I)


def _reasons(tree: ast.AST):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in ("skip", "skipif", "importorskip", "xfail"):
            yield from (k.value for k in node.keywords if k.arg in ("reason", "msg"))
            if name == "skip" and node.args:
                yield node.args[0]


def test_no_skip_reason_interpolates_a_path_of_this_checkout():
    offenders = []
    for file in sorted(TESTS.rglob("*.py")):
        for reason in _reasons(ast.parse(file.read_text(encoding="utf-8"))):
            names = {n.id for n in ast.walk(reason) if isinstance(n, ast.Name)}
            if any(PATH_NAME.search(n) for n in names):
                offenders.append(f"{file.relative_to(TESTS)}:{reason.lineno}: {sorted(names)}")
    assert not offenders, offenders
