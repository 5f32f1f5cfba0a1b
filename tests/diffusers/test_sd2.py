"""SD2 both ways: OpenCLIP-H, whose last layer and projection diffusers does not keep."""

from __future__ import annotations

import json
import os

import numpy as np

from diffusers_support import SD2_UNET_CONFIG, _clip_h_shapes, diffusers, torch, write_sd2_folder
from lib_modeldoc import open_model
from lib_modeldoc.arch.families import SD2_CLIP, family
from lib_modeldoc.arch.tables import table
from lib_modeldoc.operations.convert import ConvertOptions
from lib_modeldoc.operations.diffusers_export import plan_diffusers
from lib_modeldoc.arch.parts import identify_model
from lib_modeldoc.samples import family_specs, write_safetensors_sample


def _sd2_keys() -> set[str]:
    keys = set()
    for slot in family("SD2").slots:
        if slot.component != "ema_unet":
            keys |= {slot.mounts[0].key(k) for k in table(slot.tables[0]).required_keys}
    return keys


def test_real_shape_sd2_folder_reads_as_a_complete_sd2_checkpoint(tmp_path):
    folder = write_sd2_folder(str(tmp_path / "sd2"), tiny=False)
    with open_model(folder) as model:
        assert set(model) == _sd2_keys() | {"v_pred"}  # a v_prediction scheduler: the marker tensor too
        assert identify_model(model).architecture == "SD2"
        assert model.metadata["modelspec.prediction_type"] == "v"
        last = model.read(SD2_CLIP + "transformer.resblocks.23.mlp.c_fc.weight")
        assert last.shape == (4096, 1024) and not last.any()  # the unused layer, as zeros
        assert model.synthesized


def test_real_sd2_file_plans_what_diffusers_builds_from_our_configs(tmp_path):
    src = str(tmp_path / "sd2.safetensors")
    write_safetensors_sample(src, family_specs("SD2"), metadata={"modelspec.prediction_type": "v"})
    with open_model(src) as model:
        plan = plan_diffusers(model, ConvertOptions(precision="keep"))
    by_folder = {c.folder: c for c in plan.components}
    assert sorted(by_folder) == ["text_encoder", "unet", "vae"]
    for folder, cls in (("unet", diffusers.UNet2DConditionModel), ("vae", diffusers.AutoencoderKL)):
        config = {k: v for k, v in by_folder[folder].config.items() if not k.startswith("_")}
        with torch.device("meta"):
            built = cls(**config)
        assert {e.key: e.shape for e in by_folder[folder].plan.entries} == {
            k: tuple(v.shape) for k, v in built.state_dict().items()}
    assert by_folder["unet"].config["cross_attention_dim"] == 1024
    assert {e.key: e.shape for e in by_folder["text_encoder"].plan.entries} == _clip_h_shapes(tiny=False)
    assert by_folder["text_encoder"].config["num_hidden_layers"] == 23
    assert plan.scheduler["prediction_type"] == "v_prediction"
    assert [w for w in plan.warnings if "tokenizer" not in w] == []  # no v-prediction warning


def test_sd2_meta_unet_matches_our_structure():
    with torch.device("meta"):
        unet = diffusers.UNet2DConditionModel(**SD2_UNET_CONFIG)
    from lib_modeldoc.arch.diffusers_map import unet_map, unet_structure_from_config

    key_map = unet_map(unet_structure_from_config(unet.config))
    assert {key_map.to_diffusers(k): tuple(s) for k, s in table("unet_sd2").shapes.items()} == {
        k: tuple(v.shape) for k, v in unet.state_dict().items()}


def test_sd2_round_trip(cli, tmp_path):
    folder = write_sd2_folder(str(tmp_path / "sd2"), tiny=True)
    single = tmp_path / "sd2.safetensors"
    rc, _, err = cli("convert", folder, "-o", single, "--precision", "keep", "--force")
    assert rc == 0, err
    out = tmp_path / "back"
    rc, _, err = cli("convert", single, "-o", out, "--format", "diffusers", "--precision", "keep", "--force")
    assert rc == 0, err
    unet_before = diffusers.UNet2DConditionModel.from_pretrained(os.path.join(folder, "unet")).state_dict()
    unet_after = diffusers.UNet2DConditionModel.from_pretrained(str(out / "unet")).state_dict()
    assert set(unet_before) == set(unet_after)
    assert all(torch.equal(unet_before[k], unet_after[k]) for k in unet_before)
    with open_model(os.path.join(folder, "text_encoder", "model.safetensors")) as a, \
            open_model(str(out / "text_encoder" / "model.safetensors")) as b:
        assert set(a) == set(b)
        for key in a:
            np.testing.assert_array_equal(a.read(key), b.read(key), err_msg=key)
    assert json.loads((out / "scheduler" / "scheduler_config.json").read_text())["prediction_type"] == "v_prediction"
