"""Benign pickles from the wild open fine: Lightning checkpoints, nested state dicts, textual
inversion embeddings, numpy scalars, parameters, strided views, legacy and bare-pickle files.

Classes the reader must not import (Lightning's ``ModelCheckpoint``) are defined in a fake module
that exists only while the file is written.
"""

from __future__ import annotations

import argparse
import contextlib
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from lib_modeldoc.io.model import open_model

LIGHTNING_MODULES = ("pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint")
CALLBACK_KEY = "callbacks.<class pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint>"
FORMATS = pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])


def _expected(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    return t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()


def _raw_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().contiguous()
    return (t.view(torch.uint16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()


def _assert_reads_back(model, key: str, t: torch.Tensor) -> None:
    got = model.read(key)
    assert got.shape == tuple(t.shape)
    np.testing.assert_array_equal(got, _expected(t))
    assert model.read_bytes(key) == _raw_bytes(t)


@contextlib.contextmanager
def _fake_lightning(monkeypatch):
    """Register ``pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint`` for the save only."""
    with monkeypatch.context() as patch:
        for name in LIGHTNING_MODULES:
            patch.setitem(sys.modules, name, types.ModuleType(name))
        cls = type("ModelCheckpoint", (), {"__module__": LIGHTNING_MODULES[-1]})
        sys.modules[LIGHTNING_MODULES[-1]].ModelCheckpoint = cls
        yield cls
    for name in LIGHTNING_MODULES:  # gone again: the reader cannot import it
        assert name not in sys.modules


@FORMATS
def test_lightning_checkpoint(legacy, write_ckpt, monkeypatch):
    weights = {
        "model.diffusion_model.out.2.weight": torch.randn(4, 8),
        "model.diffusion_model.out.2.bias": torch.randn(4),
    }
    exp_avg = torch.randn(4, 8)
    with _fake_lightning(monkeypatch) as ModelCheckpoint:
        path = write_ckpt("lightning.ckpt", {
            "state_dict": weights,
            "epoch": 3,
            "global_step": 1000,
            "pytorch-lightning_version": "1.4.2",
            "callbacks": {ModelCheckpoint: {"monitor": "val/loss", "best_model_score": torch.tensor(0.25)}},
            "optimizer_states": [{"state": {0: {"exp_avg": exp_avg, "step": 10}},
                                  "param_groups": [{"lr": 1e-4, "params": [0]}]}],
            "hparams": argparse.Namespace(lr=1e-4, name="sd"),
        }, legacy=legacy)
    with open_model(path) as model:
        assert model.format == "ckpt"
        assert model.container == ("torch_legacy" if legacy else "torch_zip")
        assert sorted(model) == sorted(weights)
        for key, t in weights.items():
            _assert_reads_back(model, key, t)
        assert model.extras["epoch"] == 3
        assert model.extras["global_step"] == 1000
        assert model.extras["pytorch-lightning_version"] == "1.4.2"
        assert model.extras[f"{CALLBACK_KEY}.monitor"] == "val/loss"
        assert model.extras["optimizer_states.0.param_groups.0.lr"] == 1e-4
        assert model.extras["hparams"] == "<argparse.Namespace>"
        assert sorted(model.stray_tensors) == sorted(
            [f"{CALLBACK_KEY}.best_model_score", "optimizer_states.0.state.0.exp_avg"]
        )
        _assert_reads_back(model, "optimizer_states.0.state.0.exp_avg", exp_avg)
        _assert_reads_back(model, f"{CALLBACK_KEY}.best_model_score", torch.tensor(0.25))


@FORMATS
def test_nested_state_dict_is_unwrapped_twice(legacy, write_ckpt):
    key = "first_stage_model.decoder.conv_in.weight"
    weights = {key: torch.randn(8, 4, 3, 3)}
    state = {"state_dict": {"state_dict": weights, "global_step": 7}, "epoch": 1}
    path = write_ckpt("nested.ckpt", state, legacy=legacy)
    with open_model(path) as model:
        assert list(model) == list(weights)
        _assert_reads_back(model, key, weights[key])
        assert model.extras == {"epoch": 1, "global_step": 7}
        assert model.stray_tensors == {}


@FORMATS
def test_plain_dict_of_tensors(legacy, write_ckpt):
    weights = {"a": torch.randn(3, 5), "b": torch.arange(7), "c": torch.randn(2).half()}
    path = write_ckpt("plain.pt", weights, legacy=legacy)
    with open_model(path) as model:
        assert list(model) == list(weights)
        assert [model[k].dtype for k in model] == ["F32", "I64", "F16"]
        for key, t in weights.items():
            _assert_reads_back(model, key, t)
        assert model.extras == {} and model.stray_tensors == {}


@pytest.mark.parametrize("container", ["dict", "ParameterDict"])
@FORMATS
def test_textual_inversion_embedding(container, legacy, write_ckpt):
    vector = torch.randn(2, 768)
    params = {"*": vector} if container == "dict" else torch.nn.ParameterDict({"*": torch.nn.Parameter(vector.clone())})
    path = write_ckpt("embedding.pt", {
        "string_to_token": {"*": 265}, "string_to_param": params, "name": "x", "step": 5,
    }, legacy=legacy)
    with open_model(path) as model:
        assert list(model) == ["string_to_param.*"]
        _assert_reads_back(model, "string_to_param.*", vector)
        assert model.extras["name"] == "x"
        assert model.extras["step"] == 5
        assert model.extras["string_to_token.*"] == 265


@FORMATS
def test_numpy_values_are_reported_as_plain_data(legacy, write_ckpt):
    path = write_ckpt("numpy.ckpt", {
        "state_dict": {"w": torch.ones(2)},
        "global_step": np.int64(5), "loss": np.float32(0.25), "lr": np.float64(1e-4),
        "flag": np.bool_(True), "history": np.arange(3),
    }, legacy=legacy)
    with open_model(path) as model:
        assert list(model) == ["w"]
        assert model.extras["global_step"] == 5 and type(model.extras["global_step"]) is int
        assert model.extras["loss"] == 0.25
        assert model.extras["lr"] == 1e-4
        assert model.extras["flag"] is True
        assert model.extras["history"] == "<ndarray>"


@FORMATS
def test_parameters_read_like_tensors(legacy, write_ckpt):
    weights = {
        "w": torch.nn.Parameter(torch.randn(3, 3)),
        "frozen": torch.nn.Parameter(torch.randn(4).half(), requires_grad=False),
    }
    path = write_ckpt("params.ckpt", {"state_dict": weights}, legacy=legacy)
    with open_model(path) as model:
        assert sorted(model) == ["frozen", "w"]
        assert model["frozen"].dtype == "F16"
        for key, t in weights.items():
            _assert_reads_back(model, key, t)


@FORMATS
def test_strided_views_and_shared_storage(legacy, write_ckpt):
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    views = {
        "base": base,
        "transposed": base.T,  # non-contiguous
        "row": base[2],  # contiguous slice at an offset into the same storage
        "block": base[1:4, 3:7],  # strided slice at an offset
        "every_third": base.reshape(-1)[5:50:3],
        "broadcast": torch.ones(1, 4).expand(3, 4),  # stride 0
        "bf16_transposed": torch.arange(24, dtype=torch.bfloat16).reshape(4, 6).T,
    }
    path = write_ckpt("views.ckpt", views, legacy=legacy)
    with open_model(path) as model:
        for key, t in views.items():
            _assert_reads_back(model, key, t)
        assert model["base"].strides is None and model["row"].strides is None
        assert model["transposed"].strides == (1, 10)
        # One storage, read in place: the row starts 2 rows (80 bytes) into the base's bytes.
        assert model["row"].data_offset == model["base"].data_offset + 2 * 10 * 4


@pytest.mark.parametrize("protocol", [0, 1, 2, 4])
def test_bare_pickle_of_plain_data(protocol, tmp_path):
    """A ``pickle.dump`` of plain values (no torch) at any protocol, including Python 2 names."""
    path = tmp_path / "plain.pt"
    with open(path, "wb") as f:
        data = {"step": 5, "name": "x", "tags": {"a", "b"}, "blob": b"xy", "hp": argparse.Namespace(lr=0.1)}
        pickle.dump(data, f, protocol=protocol)
    with open_model(path) as model:
        assert model.container == "pickle"
        assert len(model) == 0
        assert model.extras == {
            "step": 5, "name": "x", "tags": "<set>", "blob": "<2 bytes>", "hp": "<argparse.Namespace>",
        }


def test_format_comes_from_bytes_not_name(write_ckpt, tmp_path):
    """A zip checkpoint renamed ``.safetensors`` is still read as the checkpoint it is."""
    src = write_ckpt("real.ckpt", {"w": torch.arange(5.0)})
    renamed = tmp_path / "renamed.safetensors"
    renamed.write_bytes(open(src, "rb").read())
    with open_model(renamed) as model:
        assert (model.format, model.container) == ("ckpt", "torch_zip")
        _assert_reads_back(model, "w", torch.arange(5.0))
