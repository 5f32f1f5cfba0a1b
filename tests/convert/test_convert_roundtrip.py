"""Round trips: safetensors, zip .ckpt and legacy .ckpt in; safetensors and .ckpt out.

Inputs are written by safetensors and torch themselves; outputs are read back with
``safetensors.safe_open`` and ``torch.load(weights_only=True)``, never with our own reader.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from convert_support import read_any, read_ckpt, read_safetensors
from lib_modeldoc.operations.convert import ConvertOptions, plan_convert
from lib_modeldoc.io.model import open_model
from lib_modeldoc.operations.writer import write_plan


def source_tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return {
        "net.weight": torch.randn(4, 3, generator=g),
        "net.bias": torch.tensor([-2.5, 0.0, 1e-3, 300.0]),
        "half.weight": torch.randn(2, 5, generator=g).half(),
        "brain.weight": torch.randn(3, generator=g).bfloat16(),
        "scalar": torch.tensor(0.25),
        "steps": torch.arange(9, dtype=torch.int64).reshape(3, 3),
        "small_ints": torch.tensor([-3, 7], dtype=torch.int32),
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 4),
    }


def write_source(tmp_path, kind: str, tensors: dict[str, torch.Tensor]) -> str:
    if kind == "safetensors":
        path = tmp_path / "src.safetensors"
        save_file(tensors, str(path))
    else:
        path = tmp_path / "src.ckpt"
        torch.save({"state_dict": tensors}, str(path), _use_new_zipfile_serialization=(kind == "zip"))
    return str(path)


@pytest.mark.parametrize("out_format", ["safetensors", "ckpt"])
@pytest.mark.parametrize("kind", ["safetensors", "zip", "legacy"])
def test_keep_round_trip_is_exact(tmp_path, cli, kind, out_format):
    tensors = source_tensors()
    src = write_source(tmp_path, kind, tensors)
    out = tmp_path / f"out.{out_format}"
    rc, stdout, err = cli("convert", src, "-o", out, "--precision", "keep", "--keep-junk")
    assert (rc, err) == (0, "")
    assert stdout.startswith(f"Wrote {out}: ")
    back = read_any(out)
    assert sorted(back) == sorted(tensors)
    for key, value in tensors.items():
        assert back[key].dtype == value.dtype, key
        assert back[key].shape == value.shape, key
        assert torch.equal(back[key], value), key


@pytest.mark.parametrize("out_format", ["safetensors", "ckpt"])
@pytest.mark.parametrize("kind", ["safetensors", "zip", "legacy"])
def test_fp16_round_trip_casts_floats_only(tmp_path, cli, kind, out_format):
    tensors = source_tensors()
    src = write_source(tmp_path, kind, tensors)
    out = tmp_path / f"out.{out_format}"
    rc, _, err = cli("convert", src, "-o", out, "--keep-junk")  # fp16 is the default
    assert (rc, err) == (0, "")
    back = read_any(out)
    for key, value in tensors.items():
        want = value.half() if value.is_floating_point() else value
        assert back[key].dtype == want.dtype, key
        assert torch.equal(back[key], want), key


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_ckpt_views_and_shared_storages_come_out_contiguous(tmp_path, cli, kind):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tensors = {"base": base, "transposed": base.t(), "row": base[2], "cols": base[:, 1:4], "tail": base.view(-1)[20:]}
    path = str(tmp_path / "src.ckpt")
    torch.save({"state_dict": tensors}, path, _use_new_zipfile_serialization=(kind == "zip"))
    out = tmp_path / "out.safetensors"
    assert cli("convert", path, "-o", out, "--precision", "keep", "--keep-junk")[0] == 0
    back, _ = read_safetensors(out)
    for key, value in tensors.items():
        assert torch.equal(back[key], value.contiguous()), key


def test_ckpt_training_state_is_left_out(tmp_path, cli):
    weights = {"net.weight": torch.ones(2, 2), "net.bias": torch.zeros(2)}
    path = str(tmp_path / "trained.ckpt")
    torch.save({
        "state_dict": weights, "global_step": 1234, "epoch": 3,
        "optimizer_states": [{"state": {0: {"exp_avg": torch.ones(2, 2), "exp_avg_sq": torch.ones(2, 2)}}}],
    }, path)
    out = tmp_path / "out.safetensors"
    rc, stdout, _ = cli("convert", path, "-o", out, "--keep-junk", "--json")
    assert rc == 0
    back, _ = read_safetensors(out)
    assert sorted(back) == ["net.bias", "net.weight"]
    result = json.loads(stdout)
    assert result["dropped"]["training state"]["keys"] == 2


def test_safetensors_output_matches_the_reference_writer_byte_for_byte(tmp_path, cli):
    """Golden bytes: one fp32 tensor cast to fp16 and stored with format=pt only."""
    src = str(tmp_path / "one.safetensors")
    save_file({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, src)
    out = tmp_path / "out.safetensors"
    assert cli("convert", src, "-o", out, "--keep-junk", "--strip-metadata")[0] == 0
    reference = tmp_path / "reference.safetensors"
    save_file({"w": torch.arange(6, dtype=torch.float16).reshape(2, 3)}, str(reference), metadata={"format": "pt"})
    golden = (
        b'X\x00\x00\x00\x00\x00\x00\x00{"__metadata__":{"format":"pt"},"w":{"dtype":"F16","shape":[2,3],'
        b'"data_offsets":[0,12]}}\x00\x00\x00<\x00@\x00B\x00D\x00E'
    )
    assert out.read_bytes() == reference.read_bytes() == golden


def test_api_round_trip_from_legacy_ckpt_to_ckpt(tmp_path):
    tensors = source_tensors()
    src = write_source(tmp_path, "legacy", tensors)
    out = tmp_path / "api.ckpt"
    with open_model(src) as model:
        plan = plan_convert(model, ConvertOptions(precision="bf16", keep_junk=True, format="ckpt"))
        result = write_plan(plan, out)
    assert (result.output, result.format, result.keys) == (str(out), "ckpt", len(tensors))
    assert result.size_bytes == os.path.getsize(out)
    back = read_ckpt(out)
    for key, value in tensors.items():
        want = value.bfloat16() if value.is_floating_point() else value
        assert torch.equal(back[key], want), key
