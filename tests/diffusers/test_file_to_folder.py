"""convert FILE -o DIR --format diffusers: the folder diffusers loads, with the same tensors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from diffusers_support import diffusers, torch
from lib_modeldoc import open_model
from lib_modeldoc.operations.convert import ConvertOptions
from lib_modeldoc.operations.diffusers_export import plan_diffusers
from lib_modeldoc.samples import family_specs, write_safetensors_sample


@pytest.fixture(scope="module")
def tiny_sd1_file(tiny_sd1_folder, tmp_path_factory):
    """The tiny folder as a single file, written by our folder -> file conversion (fp32 kept)."""
    from lib_modeldoc.cli import main

    out = str(tmp_path_factory.mktemp("single") / "tiny.safetensors")
    assert main(["convert", tiny_sd1_folder, "-o", out, "--precision", "keep", "--force"]) == 0
    return out


def _state(cls, folder):
    return {k: v.numpy() for k, v in cls.from_pretrained(folder).state_dict().items()}


def test_round_trip_folder_file_folder_loads_in_diffusers(cli, tiny_sd1_folder, tiny_sd1_file, tmp_path):
    out = tmp_path / "pipe"
    rc, _, err = cli("convert", tiny_sd1_file, "-o", out, "--format", "diffusers", "--precision", "keep", "--force")
    assert rc == 0, err
    for folder, cls in (("unet", diffusers.UNet2DConditionModel), ("vae", diffusers.AutoencoderKL)):
        before = _state(cls, os.path.join(tiny_sd1_folder, folder))
        after = _state(cls, str(out / folder))  # from_pretrained: our config.json and weights
        assert set(after) == set(before)
        for key, value in before.items():
            np.testing.assert_array_equal(after[key], value, err_msg=f"{folder}: {key}")
    with open_model(os.path.join(tiny_sd1_folder, "text_encoder", "model.safetensors")) as a, \
            open_model(str(out / "text_encoder" / "model.safetensors")) as b:
        assert set(a) == set(b)
        for key in a:
            np.testing.assert_array_equal(a.read(key), b.read(key), err_msg=key)
    index = json.loads((out / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    scheduler = diffusers.PNDMScheduler.from_pretrained(str(out / "scheduler"))
    assert scheduler.config.prediction_type == "epsilon"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary folder left


def test_real_sd1_file_plans_what_diffusers_builds_from_our_configs(tmp_path):
    src = str(tmp_path / "sd1.safetensors")
    write_safetensors_sample(src, family_specs("SD1"))  # real shapes, sparse
    with open_model(src) as model:
        plan = plan_diffusers(model, ConvertOptions(precision="keep"))
    by_folder = {c.folder: c for c in plan.components}
    for folder, cls in (("unet", diffusers.UNet2DConditionModel), ("vae", diffusers.AutoencoderKL)):
        config = {k: v for k, v in by_folder[folder].config.items() if not k.startswith("_")}
        with torch.device("meta"):
            built = cls(**config)
        expected = {k: tuple(v.shape) for k, v in built.state_dict().items()}
        assert {e.key: e.shape for e in by_folder[folder].plan.entries} == expected
    te = {e.key for e in by_folder["text_encoder"].plan.entries}
    assert "text_model.embeddings.position_ids" not in te and "text_model.final_layer_norm.weight" in te
    assert plan.left_out == []


def test_v_prediction_marker_sets_the_scheduler(tmp_path):
    src = str(tmp_path / "sd1v.safetensors")
    write_safetensors_sample(src, family_specs("SD1"), metadata={"modelspec.prediction_type": "v"})
    with open_model(src) as model:
        plan = plan_diffusers(model)
    assert plan.scheduler["prediction_type"] == "v_prediction"


def test_existing_folder_is_refused_without_overwrite(cli, tiny_sd1_file, tmp_path):
    out = tmp_path / "pipe"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    rc, _, err = cli("convert", tiny_sd1_file, "-o", out, "--format", "diffusers", "--force")
    assert rc == 2 and "already exists" in err
    rc, _, err = cli("convert", tiny_sd1_file, "-o", out, "--format", "diffusers", "--force", "--overwrite")
    assert rc == 2 and "not a diffusers folder" in err  # --overwrite replaces only a diffusers folder
    assert (out / "keep.txt").read_text() == "mine"


def test_overwrite_replaces_a_diffusers_folder(cli, tiny_sd1_file, tmp_path):
    out = tmp_path / "pipe"
    assert cli("convert", tiny_sd1_file, "-o", out, "--format", "diffusers", "--force")[0] == 0
    (out / "stale.txt").write_text("old")
    rc, _, err = cli("convert", tiny_sd1_file, "-o", out, "--format", "diffusers", "--force", "--overwrite",
                     "--precision", "fp16")
    assert rc == 0, err
    assert not (out / "stale.txt").exists()
    with open_model(str(out / "unet" / "diffusion_pytorch_model.safetensors")) as unet:
        assert {t.dtype for t in unet.values()} == {"F16"}


def test_a_model_that_is_not_sd1_is_refused(cli, tmp_path):
    src = str(tmp_path / "xl.safetensors")
    write_safetensors_sample(src, family_specs("SDXL", components=["vae"]))
    rc, _, err = cli("convert", src, "-o", tmp_path / "pipe", "--format", "diffusers")
    assert rc == 2 and err.startswith("modeldoc: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "pipe").exists()
