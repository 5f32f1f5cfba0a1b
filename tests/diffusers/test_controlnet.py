"""ControlNet: a diffusers ControlNetModel folder <-> the single file the WebUI's ControlNet extension loads."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from diffusers_support import _write_json, _write_shapes, diffusers, torch
from lib_modeldoc import open_model
from lib_modeldoc.arch.parts import identify_model
from lib_modeldoc.arch.tables import table
from lib_modeldoc.operations.convert import ConvertOptions
from lib_modeldoc.operations.diffusers_export import plan_diffusers
from lib_modeldoc.samples import Spec, family_specs, write_safetensors_sample

# The diffusers configs of the published SD1, SD2 and SDXL ControlNets (what the key layout depends on).
CONTROLNET_CONFIGS = {
    "ControlNet": ("controlnet_sd1", {"cross_attention_dim": 768, "attention_head_dim": 8}),
    "ControlNet-SD2": ("controlnet_sd2", {"cross_attention_dim": 1024, "attention_head_dim": (5, 10, 20, 20),
                                          "use_linear_projection": True}),
    "ControlNet-SDXL": ("controlnet_sdxl", {
        "cross_attention_dim": 2048, "block_out_channels": (320, 640, 1280),
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "transformer_layers_per_block": (1, 2, 10), "attention_head_dim": (5, 10, 20), "use_linear_projection": True,
        "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 2816}),
}
TINY_CONTROLNET = {"block_out_channels": (32, 64, 128, 128), "cross_attention_dim": 32, "attention_head_dim": 8}


def _shapes(module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", sorted(CONTROLNET_CONFIGS))
def test_real_shape_controlnet_folder_reads_as_the_webui_file(name, tmp_path):
    table_id, config = CONTROLNET_CONFIGS[name]
    with torch.device("meta"):
        built = diffusers.ControlNetModel(**config)
    folder = tmp_path / "cn"
    _write_shapes(str(folder / "diffusion_pytorch_model.safetensors"), built, False)
    _write_json(str(folder / "config.json"), {**built.config, "_class_name": "ControlNetModel"})
    with open_model(str(folder)) as model:
        assert model.format == "diffusers"
        assert identify_model(model).architecture == name
        assert {k: model[k].shape for k in model} == {k: tuple(s) for k, s in table(table_id).shapes.items()}


@pytest.mark.parametrize("name", sorted(CONTROLNET_CONFIGS))
def test_real_controlnet_file_plans_what_diffusers_builds_from_our_config(name, tmp_path):
    src = str(tmp_path / "cn.safetensors")
    write_safetensors_sample(src, family_specs(name))
    with open_model(src) as model:
        plan = plan_diffusers(model, ConvertOptions(precision="keep"))
    assert plan.pipeline.value == "ControlNetModel" and plan.model_index is None and plan.left_out == []
    (component,) = plan.components
    config = {k: v for k, v in component.config.items() if not k.startswith("_")}
    with torch.device("meta"):
        built = diffusers.ControlNetModel(**config)
    assert {e.key: e.shape for e in component.plan.entries} == _shapes(built)
    assert config["cross_attention_dim"] == CONTROLNET_CONFIGS[name][1]["cross_attention_dim"]


def test_prefixed_and_bare_controlnet_files_write_the_same_folder(cli, tmp_path):
    """``control_model.``-prefixed files (ControlNet 1.0) lose the prefix; the folder reads back unprefixed."""
    specs = family_specs("ControlNet")
    assert all(s.key.startswith("control_model.") for s in specs)
    bare = [Spec(s.key[len("control_model."):], s.dtype, s.shape) for s in specs]
    configs = []
    for name, file_specs in (("prefixed", specs), ("bare", bare)):
        src = str(tmp_path / f"{name}.safetensors")
        write_safetensors_sample(src, file_specs)
        rc, _, err = cli("convert", src, "-o", tmp_path / name, "--format", "diffusers", "--precision", "keep")
        assert rc == 0, err
        assert sorted(os.listdir(tmp_path / name)) == ["config.json", "diffusion_pytorch_model.safetensors"]
        configs.append((tmp_path / name / "config.json").read_text())
        with open_model(str(tmp_path / name)) as model:
            assert set(model) == {s.key for s in bare}
    assert configs[0] == configs[1]


def test_tiny_controlnet_round_trip_keeps_every_value(cli, tmp_path):
    torch.manual_seed(0)
    original = diffusers.ControlNetModel(**TINY_CONTROLNET)
    original.save_pretrained(str(tmp_path / "cn"))
    single = tmp_path / "cn.safetensors"
    rc, _, err = cli("convert", tmp_path / "cn", "-o", single, "--precision", "keep", "--force")
    assert rc == 0, err
    with open_model(str(single)) as model:  # the WebUI extension's names: hint encoder, zero convolutions
        np.testing.assert_array_equal(model.read("input_hint_block.14.weight"),
                                      original.controlnet_cond_embedding.conv_out.weight.detach().numpy())
        np.testing.assert_array_equal(model.read("zero_convs.11.0.weight"),
                                      original.controlnet_down_blocks[11].weight.detach().numpy())
        assert "middle_block_out.0.weight" in model
    out = tmp_path / "again"
    rc, text, err = cli("convert", single, "-o", out, "--format", "diffusers", "--precision", "keep", "--force")
    assert rc == 0, err
    assert "warning" not in text  # no tokenizer or scheduler belongs to a ControlNet
    again = diffusers.ControlNetModel.from_pretrained(str(out))
    assert json.loads((out / "config.json").read_text())["conditioning_embedding_out_channels"] == [16, 32, 96, 256]
    before, after = original.state_dict(), again.state_dict()
    assert set(before) == set(after)
    for key, value in before.items():
        assert torch.equal(after[key], value), key


@pytest.mark.parametrize("config, message", [
    ({"conditioning_embedding_out_channels": list(range(100))}, "conditioning_embedding_out_channels"),
    ({"layers_per_block": 10**9}, "layers_per_block"),
    ({}, "diffusion_pytorch_model.safetensors is missing"),
])
def test_a_crafted_controlnet_folder_gives_one_error_line(cli, tmp_path, config, message):
    folder = tmp_path / "cn"
    folder.mkdir()
    blocks = {"down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]}
    (folder / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel", **blocks, **config}))
    if config:
        write_safetensors_sample(str(folder / "diffusion_pytorch_model.safetensors"), [Spec("conv_in.weight", "F16", (4,))])
    rc, _, err = cli("inspect", folder)
    assert rc == 2 and err.startswith("modeldoc: error:") and len(err.strip().splitlines()) == 1
    assert message in err
