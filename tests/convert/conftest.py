"""Fixtures for the convert tests: slim identified models (the CLI fixture is the root conftest's).

Helpers that are not fixtures are in ``convert_support.py`` (test modules must not import a
``conftest``; every folder's conftest shares that module name).
"""

from __future__ import annotations

import pytest

from convert_support import slim_specs, with_spec


@pytest.fixture
def slim_model(sparse_model):
    """``slim_model(name, arch="SD1", dtype="F16", ema=False, extra=(), values=None, metadata=None)``.

    A real-key model of ``arch`` holding only its small tensors (see ``slim_specs``), written
    sparse: tensors without ``values`` read as zeros. ``extra`` specs are added or replace
    same-named ones.
    """

    def write(name="sd1.safetensors", arch="SD1", *, dtype="F16", ema=False, extra=(), values=None, metadata=None):
        specs = with_spec(slim_specs(arch, dtype=dtype, ema=ema), *extra)
        return sparse_model(name, specs, values, metadata=metadata)

    return write
