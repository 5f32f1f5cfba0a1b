"""The text encoders we write load in transformers with no missing or unexpected weight (tiny configs)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from diffusers_support import torch, write_sd2_folder, write_sdxl_folder
from lib_modeldoc import open_model

transformers = pytest.importorskip("transformers")


def _round_trip(cli, folder, tmp_path):
    single = tmp_path / "single.safetensors"
    assert cli("convert", folder, "-o", single, "--precision", "keep", "--force")[0] == 0
    out = tmp_path / "out"
    rc, _, err = cli("convert", single, "-o", out, "--format", "diffusers", "--precision", "keep", "--force")
    assert rc == 0, err
    return out


def _loads_exactly(cls, folder, source_file):
    model, info = cls.from_pretrained(str(folder), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    state = model.state_dict()
    with open_model(source_file) as source:
        for key in source:
            np.testing.assert_array_equal(state[key].numpy(), source.read(key), err_msg=key)
    return model


def test_sd1_text_encoder_loads_in_transformers(cli, tiny_sd1_folder, tmp_path):
    out = _round_trip(cli, tiny_sd1_folder, tmp_path)
    model = _loads_exactly(transformers.CLIPTextModel, out / "text_encoder",
                           os.path.join(tiny_sd1_folder, "text_encoder", "model.safetensors"))
    with torch.no_grad():
        assert model(torch.zeros(1, 77, dtype=torch.long)).last_hidden_state.shape == (1, 77, 32)


def test_sdxl_text_encoders_load_in_transformers(cli, tiny_sdxl_folder, tmp_path):
    out = _round_trip(cli, tiny_sdxl_folder, tmp_path)
    _loads_exactly(transformers.CLIPTextModel, out / "text_encoder",
                   os.path.join(tiny_sdxl_folder, "text_encoder", "model.safetensors"))
    model = _loads_exactly(transformers.CLIPTextModelWithProjection, out / "text_encoder_2",
                           os.path.join(tiny_sdxl_folder, "text_encoder_2", "model.safetensors"))
    with torch.no_grad():
        assert model(torch.zeros(1, 77, dtype=torch.long)).text_embeds.shape == (1, 64)


def test_sd2_text_encoder_loads_in_transformers(cli, tmp_path):
    folder = write_sd2_folder(str(tmp_path / "sd2"), tiny=True)
    out = _round_trip(cli, folder, tmp_path)
    _loads_exactly(transformers.CLIPTextModel, out / "text_encoder", os.path.join(folder, "text_encoder", "model.safetensors"))
