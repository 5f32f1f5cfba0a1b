"""Fixtures for the component tests: trimmed real tables, model factories (the CLI fixture is the root conftest's).

Helpers that are not fixtures are in ``components_support.py`` (test modules must not import a
``conftest``; every folder's conftest shares that module name).
"""

from __future__ import annotations

import importlib

import pytest

from components_support import trimmed_table, write_model
from lib_modeldoc.arch import tables as tables_module

identify_module = importlib.import_module("lib_modeldoc.arch.identify")  # the module, not the function


def _clear_identify_caches() -> None:
    # Tables mounted at a prefix (and EMA key indexes) are cached per table id: drop them so that
    # neither the trimmed nor the real tables leak into the other's tests.
    for obj in vars(identify_module).values():
        if callable(getattr(obj, "cache_clear", None)):
            obj.cache_clear()
    getattr(identify_module, "_EMA_CACHE", {}).clear()


@pytest.fixture
def trimmed_tables(monkeypatch):
    """Identification sees each real table trimmed to its small tensors (as ``make_model`` writes).

    See ``components_support`` for why; every name, prefix and shape stays real.
    """
    real = tables_module.table
    cache: dict[str, object] = {}

    def table(table_id: str):
        if table_id not in cache:
            cache[table_id] = trimmed_table(real(table_id))
        return cache[table_id]

    _clear_identify_caches()
    monkeypatch.setattr(identify_module, "table", table)
    yield table
    _clear_identify_caches()


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

