"""No full load: a real-size SDXL checkpoint (a sparse ~7 GB file) opens and inspects from its
header, with Python allocations far below the size of its largest tensor.
"""

from __future__ import annotations

import json
import os
import tracemalloc

import numpy as np
import pytest

from lib_modeldoc.cli import main
from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.io.model import open_model
from lib_modeldoc.samples import family_specs

BUDGET = 64 * 2**20  # bytes of Python allocations allowed while opening and inspecting


@pytest.fixture
def sdxl(sparse_model):
    specs = family_specs("SDXL")
    path = sparse_model("sdxl.safetensors", specs)
    return path, specs


def test_sparse_sdxl_opens_from_its_header(sdxl):
    path, specs = sdxl
    largest = max(specs, key=lambda s: int(np.prod(s.shape)))
    assert os.path.getsize(path) > 6_000_000_000
    assert int(np.prod(largest.shape)) * 2 > BUDGET  # reading it alone would break the budget
    tracemalloc.start()
    try:
        with open_model(path) as model:
            assert {k: (i.dtype, i.shape) for k, i in model.items()} == {s.key: (s.dtype, s.shape) for s in specs}
            report = inspect_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.architecture == "SDXL"
    assert peak < BUDGET


def test_sparse_sdxl_reads_one_tensor_lazily(sdxl):
    path, specs = sdxl
    small = min((s for s in specs if s.dtype == "F16"), key=lambda s: int(np.prod(s.shape)))
    with open_model(path) as model:
        values = model.read(small.key)
    assert values.shape == small.shape and not values.any()


def test_sparse_sdxl_through_the_cli(sdxl, capsys):
    path, _ = sdxl
    assert main(["inspect", path, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["architecture"] == "SDXL"
    assert "Traceback" not in err
