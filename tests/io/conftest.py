"""Fixtures for the reading tests: the one-line error contract, checked through the API and the CLI.

Helpers are fixtures, not importable functions: every ``conftest.py`` here is imported under the
same module name, so test modules must not ``import conftest``.
"""

from __future__ import annotations

import hashlib
import os
import re

import pytest

from lib_modeldoc.cli import main
from lib_modeldoc.io.model import open_model


def _digest(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def expect_read_error(capsys):
    """``expect_read_error(path, exc_type, message)``: the whole contract for a refused file.

    ``open_model`` raises exactly ``exc_type`` with exactly ``message`` (one line); the CLI
    ``inspect`` exits 2 printing exactly ``modeldoc: error: <message>`` on stderr and nothing on
    stdout; the file is byte-identical afterwards.
    """

    def check(path, exc_type, message):
        path = os.fspath(path)
        assert "\n" not in message
        before = _digest(path)
        with pytest.raises(exc_type, match=f"^{re.escape(message)}\\Z") as caught:
            open_model(path)
        assert type(caught.value) is exc_type
        capsys.readouterr()
        assert main(["inspect", path]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err == f"modeldoc: error: {message}\n"
        assert "Traceback" not in err
        assert _digest(path) == before
        return caught.value

    return check
