"""The DType table's columns agree with what numpy and torch say about each element type."""

from __future__ import annotations

import numpy as np
import pytest

from lib_modeldoc.dtypes import DTYPES, LEGACY_STORAGES, TORCH_NAMES, to_float32

FLOATS = [d for d in DTYPES.values() if d.is_float]


@pytest.mark.parametrize("d", FLOATS, ids=lambda d: d.code)
def test_nonfinite_bits_is_the_first_nan_or_inf_magnitude(d):
    raw = np.array([d.nonfinite_bits - 1, d.nonfinite_bits], dtype=np.dtype(d.raw))
    values = to_float32(raw, d.code) if d.numpy is None else raw.view(np.dtype(d.numpy))
    assert np.isfinite(values[0]) and not np.isfinite(values[1])
    assert np.isinf(values[1]) == d.has_inf


@pytest.mark.parametrize("d", FLOATS, ids=lambda d: d.code)
def test_finite_max_is_the_largest_finite_value(d):
    if d.code == "F64":  # wider than anything a cast reads from, so never a saturation limit
        assert d.finite_max == float("inf")
        return
    raw = np.array([d.nonfinite_bits - 1], dtype=np.dtype(d.raw))
    values = to_float32(raw, d.code) if d.numpy is None else raw.view(np.dtype(d.numpy)).astype(np.float64)
    assert float(values[0]) == d.finite_max


def test_integer_types_have_no_float_columns():
    for d in DTYPES.values():
        if not d.is_float:
            assert d.finite_max is None and d.nonfinite_bits is None and not d.has_inf


def test_torch_names_and_storages_name_the_same_dtype_in_torch():
    torch = pytest.importorskip("torch")
    for name, d in TORCH_NAMES.items():
        assert getattr(torch, name) == getattr(torch, d.torch), name
    for name, d in LEGACY_STORAGES.items():
        assert getattr(torch, name)().dtype == getattr(torch, d.torch), name
    for d in FLOATS:
        if d.code != "F64":
            assert torch.finfo(getattr(torch, d.torch)).max == d.finite_max, d.code
