"""Value round-trips: every dtype, in every container, reads back exactly what torch wrote.

One file per container (safetensors, torch zip, torch legacy) holds, for each dtype, a 2-D tensor
with edge values, a 0-dim tensor and an empty tensor. ``read`` must equal torch's own values
(float32 for BF16/FP8, which numpy lacks) and ``read_bytes`` the contiguous raw bytes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lib_modeldoc.io.model import open_model

DTYPES = {
    "F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}
CONTAINERS = ("safetensors", "torch_zip", "torch_legacy")
WIDENED = (torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2)  # numpy has no such type
SPECIALS = [0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan"), 1e-40, 65504.0, -1e300, 3.0e38]


def _sample(dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(len(str(dtype)))
    if dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        return torch.arange(256, dtype=torch.uint8).view(dtype).reshape(16, 16)  # every bit pattern
    if dtype.is_floating_point:
        specials = torch.tensor(SPECIALS, dtype=torch.float64)
        values = torch.cat([specials, torch.randn(13, generator=g, dtype=torch.float64)])
        return values.to(dtype).reshape(4, 6)
    if dtype == torch.bool:
        return torch.rand(4, 6, generator=g) > 0.5
    info = torch.iinfo(dtype)
    edges = torch.tensor([info.min, info.max, 0, info.max - 1], dtype=dtype)
    rand = torch.randint(max(info.min, -(2**31)), min(info.max, 2**31 - 1), (20,), generator=g).to(dtype)
    return torch.cat([edges, rand]).reshape(4, 6)


def _tensors() -> dict[str, torch.Tensor]:
    out = {}
    for code, dtype in DTYPES.items():
        full = _sample(dtype)
        out[code] = full
        out[f"{code}.scalar"] = full.reshape(-1)[5].clone()
        out[f"{code}.empty"] = full[:0].clone()
    return out


TENSORS = _tensors()
METADATA = {"format": "pt", "modelspec.title": "tiny", "note": "ünïcode ✓"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("values")
    paths = {
        "safetensors": folder / "all.safetensors",
        "torch_zip": folder / "all_zip.ckpt",
        "torch_legacy": folder / "all_legacy.ckpt",
    }
    save_file(TENSORS, str(paths["safetensors"]), metadata=METADATA)
    torch.save(TENSORS, str(paths["torch_zip"]))
    torch.save(TENSORS, str(paths["torch_legacy"]), _use_new_zipfile_serialization=False)
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture(scope="module")
def models(files):
    opened = {name: open_model(path) for name, path in files.items()}
    yield opened
    for model in opened.values():
        model.close()


def _raw(t: torch.Tensor) -> torch.Tensor:
    if t.dtype == torch.bfloat16:
        return t.view(torch.uint16)
    if t.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        return t.view(torch.uint8)
    return t


@pytest.mark.parametrize("code", DTYPES)
@pytest.mark.parametrize("container", CONTAINERS)
def test_read_equals_torch_values(models, container, code):
    model = models[container]
    assert model.container == container
    for key in (code, f"{code}.scalar", f"{code}.empty"):
        t = TENSORS[key]
        info = model[key]
        assert (info.dtype, info.shape) == (code, tuple(t.shape))
        expected = t.float().numpy() if t.dtype in WIDENED else t.numpy()
        got = model.read(key)
        assert isinstance(got, np.ndarray)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)  # NaN == NaN here; signed zeros by bits below


@pytest.mark.parametrize("code", DTYPES)
@pytest.mark.parametrize("container", CONTAINERS)
def test_read_bytes_equal_torch_bytes(models, container, code):
    model = models[container]
    for key in (code, f"{code}.scalar", f"{code}.empty"):
        raw = _raw(TENSORS[key]).contiguous().numpy()
        assert model.read_bytes(key) == raw.tobytes()
        np.testing.assert_array_equal(model.read_raw(key), raw)


def test_safetensors_metadata_is_returned(models):
    assert models["safetensors"].metadata == METADATA


@pytest.mark.parametrize("container", ["torch_zip", "torch_legacy"])
def test_pickles_have_no_metadata(models, container):
    assert models[container].metadata == {}


@pytest.mark.parametrize("container", CONTAINERS)
def test_keys_and_order_are_complete(models, container):
    assert sorted(models[container]) == sorted(TENSORS)
