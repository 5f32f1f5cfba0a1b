"""Fixtures for the component tests: trimmed real tables, model factories (the CLI fixture is the root conftest's).

Helpers that are not fixtures are in ``components_support.py`` (test modules must not import a
``conftest``; every folder's conftest shares that module name).
"""

from __future__ import annotations

import pytest

from components_support import trimmed_table, write_model
from lib_modeldoc.arch.families import FAMILIES
from lib_modeldoc.arch.identify import known_architectures
from lib_modeldoc.arch.tables import Table
from lib_modeldoc.arch.tables import table as real_table


@pytest.fixture
def trimmed_tables():
    """Identification sees each real table trimmed to its small tensors (as ``make_model`` writes).

    See ``components_support`` for why; every name, prefix and shape stays real.
    """
    cache: dict[str, Table] = {}

    def table(table_id: str) -> Table:
        if table_id not in cache:
            cache[table_id] = trimmed_table(real_table(table_id))
        return cache[table_id]

    with known_architectures(FAMILIES, table):
        yield table


@pytest.fixture
def make_model(tmp_path):
    """``make_model(name, arch, *, dtype="F16", seed=name, ema=False, components=None, full=(),
    extra=(), values=None, metadata=None, limit=None) -> path``.

    A safetensors model of ``arch`` at its real checkpoint keys: the trimmed tables' tensors, and
    every tensor of the ``full`` components (real size). Tensors are filled with values distinct
    per (seed, key), except that with ``limit`` those above that many bytes stay sparse zeros.
    ``extra`` specs are appended (or replace same-named ones); ``values`` gives exact arrays.
    """

    def write(name, arch, **options):
        return write_model(tmp_path / name, arch, **options)

    return write

