"""SDXL both ways: UNet with per-level transformer depth, CLIP-L and OpenCLIP bigG (fused q/k/v)."""

from __future__ import annotations

import os

import numpy as np

from diffusers_support import SDXL_UNET_CONFIG, diffusers, torch, write_sdxl_folder
from lib_modeldoc import open_model
from lib_modeldoc.arch.diffusers_map import OpenClipMap, unet_map, unet_structure_from_config
from lib_modeldoc.arch.families import XL_CLIP_G, family
from lib_modeldoc.arch.tables import table
from lib_modeldoc.operations.convert import ConvertOptions
from lib_modeldoc.operations.diffusers_export import plan_diffusers
from lib_modeldoc.samples import family_specs, write_safetensors_sample


def _sdxl_keys() -> set[str]:
    keys = set()
    for slot in family("SDXL").slots:
        if slot.component != "ema_unet":
            keys |= {slot.mounts[0].key(k) for k in table(slot.tables[0]).required_keys}
    return keys


def test_sdxl_unet_table_maps_onto_diffusers():
    with torch.device("meta"):
        unet = diffusers.UNet2DConditionModel(**SDXL_UNET_CONFIG)
    state = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    key_map = unet_map(unet_structure_from_config(unet.config))
    mapped = {key_map.to_diffusers(k): tuple(s) for k, s in table("unet_sdxl").shapes.items()}
    assert mapped == state


def test_open_clip_g_maps_onto_transformers_names():
    key_map = OpenClipMap(32)
    names = set()
    for key in table("clip_g").shapes:
        if key == "logit_scale":
            continue
        names |= set(key_map.split(key) or (key_map.to_diffusers(key),))
    assert names == set(table("clip_g_hf").shapes) - {"text_model.embeddings.position_ids"}
    assert key_map.fused_into("text_model.encoder.layers.7.self_attn.v_proj.weight") == (
        "transformer.resblocks.7.attn.in_proj_weight", 2)


def test_real_shape_sdxl_folder_reads_as_the_webui_checkpoint(tmp_path):
    folder = write_sdxl_folder(str(tmp_path / "xl"), tiny=False)
    with open_model(folder) as model:
        assert set(model) == _sdxl_keys()
        assert model[XL_CLIP_G + "transformer.resblocks.0.attn.in_proj_weight"].shape == (3840, 1280)
        assert model[XL_CLIP_G + "text_projection"].shape == (1280, 1280)


def test_real_sdxl_file_plans_what_diffusers_builds_from_our_configs(tmp_path):
    src = str(tmp_path / "xl.safetensors")
    write_safetensors_sample(src, family_specs("SDXL"))
    with open_model(src) as model:
        plan = plan_diffusers(model, ConvertOptions(precision="keep"))
    assert plan.pipeline.value == "StableDiffusionXLPipeline" and plan.left_out == []
    by_folder = {c.folder: c for c in plan.components}
    for folder, cls in (("unet", diffusers.UNet2DConditionModel), ("vae", diffusers.AutoencoderKL)):
        config = {k: v for k, v in by_folder[folder].config.items() if not k.startswith("_")}
        with torch.device("meta"):
            built = cls(**config)
        assert {e.key: e.shape for e in by_folder[folder].plan.entries} == {
            k: tuple(v.shape) for k, v in built.state_dict().items()}
    g = {e.key: e.shape for e in by_folder["text_encoder_2"].plan.entries}
    assert g == {k: tuple(s) for k, s in table("clip_g_hf").shapes.items() if not k.endswith("position_ids")}
    assert by_folder["text_encoder_2"].config["num_hidden_layers"] == 32
    assert by_folder["unet"].config["transformer_layers_per_block"] == [1, 2, 10]


def test_sdxl_round_trip_keeps_every_tensor(cli, tiny_sdxl_folder, tmp_path):
    single = tmp_path / "xl.safetensors"
    rc, _, err = cli("convert", tiny_sdxl_folder, "-o", single, "--precision", "keep", "--force")
    assert rc == 0, err
    with open_model(single) as model:  # q, k, v fused back the way OpenCLIP stores them
        fused = model.read(XL_CLIP_G + "transformer.resblocks.1.attn.in_proj_weight")
        proj = model.read(XL_CLIP_G + "text_projection")
        assert XL_CLIP_G + "logit_scale" in model
    with open_model(os.path.join(tiny_sdxl_folder, "text_encoder_2", "model.safetensors")) as g:
        qkv = [g.read(f"text_model.encoder.layers.1.self_attn.{p}_proj.weight") for p in "qkv"]
        np.testing.assert_array_equal(fused, np.concatenate(qkv))
        np.testing.assert_array_equal(proj, g.read("text_projection.weight").T)
    out = tmp_path / "pipe"
    rc, _, err = cli("convert", single, "-o", out, "--format", "diffusers", "--precision", "keep", "--force")
    assert rc == 0, err
    for folder, cls in (("unet", diffusers.UNet2DConditionModel), ("vae", diffusers.AutoencoderKL)):
        before = cls.from_pretrained(os.path.join(tiny_sdxl_folder, folder)).state_dict()
        after = cls.from_pretrained(str(out / folder)).state_dict()
        assert set(after) == set(before)
        for key, value in before.items():
            assert torch.equal(after[key], value), f"{folder}: {key}"
    for folder in ("text_encoder", "text_encoder_2"):
        with open_model(os.path.join(tiny_sdxl_folder, folder, "model.safetensors")) as a, \
                open_model(str(out / folder / "model.safetensors")) as b:
            assert set(a) == set(b)
            for key in a:
                np.testing.assert_array_equal(a.read(key), b.read(key), err_msg=f"{folder}: {key}")
    assert diffusers.EulerDiscreteScheduler.from_pretrained(str(out / "scheduler")).config.prediction_type == "epsilon"
