"""A diffusers folder where a model path goes: inspect identifies it, convert writes the WebUI's single file."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from diffusers_support import diffusers, torch
from lib_modeldoc import open_model
from lib_modeldoc.arch.diffusers_map import unet_map, vae_map
from lib_modeldoc.arch.families import SD1_CLIP, UNET, VAE, family
from lib_modeldoc.arch.tables import table
from lib_modeldoc.operations.convert import ConvertOptions, plan_convert
from lib_modeldoc.arch.parts import identify_model


def _sd1_keys(optional: bool = True) -> set[str]:
    keys = set()
    for slot in family("SD1").slots:
        if slot.component == "ema_unet":
            continue
        tab = table(slot.tables[0])
        keys |= {slot.mounts[0].key(k) for k in (tab.shapes if optional else tab.required_keys)}
    return keys


def test_real_shape_folder_reads_as_an_sd1_checkpoint(real_sd1_folder):
    with open_model(real_sd1_folder) as model:
        assert model.format == "diffusers"
        assert set(model) == _sd1_keys(optional=False)  # transformers saves no position_ids
        assert identify_model(model).architecture == "SD1"
        plan = plan_convert(model, ConvertOptions(precision="keep"))
    assert {e.key for e in plan.entries} == _sd1_keys(optional=False)
    shapes = {e.key: e.shape for e in plan.entries}
    unet = table("unet_sd1").shapes
    assert all(shapes[UNET + k] == tuple(s) for k, s in unet.items())
    assert shapes[VAE + "encoder.mid.attn_1.q.weight"] == (512, 512, 1, 1)


def test_inspect_names_the_folder_sd1(cli, real_sd1_folder):
    rc, out, err = cli("inspect", real_sd1_folder, "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert (report["format"], report["architecture"]) == ("diffusers", "SD1")
    assert all(report["components"][c]["complete"] for c in ("unet", "vae", "clip_l"))


def test_convert_folder_to_file_keeps_every_value(cli, tiny_sd1_folder, tmp_path):
    out = tmp_path / "model.safetensors"
    rc, _, err = cli("convert", tiny_sd1_folder, "-o", out, "--precision", "keep", "--force")
    assert rc == 0, err
    unet = diffusers.UNet2DConditionModel.from_pretrained(os.path.join(tiny_sd1_folder, "unet")).state_dict()
    vae = diffusers.AutoencoderKL.from_pretrained(os.path.join(tiny_sd1_folder, "vae")).state_dict()
    with open_model(out) as written, open_model(os.path.join(tiny_sd1_folder, "text_encoder", "model.safetensors")) as te:
        expected = {UNET + unet_map().to_ldm(k): v.numpy() for k, v in unet.items()}
        expected |= {VAE + vae_map().to_ldm(k): v.numpy() for k, v in vae.items()}
        expected |= {SD1_CLIP + k: te.read(k) for k in te}
        assert set(written) == set(expected)
        for key, value in expected.items():
            got = written.read(key)
            if key.startswith(VAE) and key.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")) and "attn_1" in key:
                assert got.shape == value.shape + (1, 1)
                got = got.reshape(value.shape)
            np.testing.assert_array_equal(got, value, err_msg=key)


def test_unknown_pipeline_is_one_line(cli, tmp_path):
    folder = tmp_path / "flux"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    rc, out, err = cli("inspect", folder)
    assert rc == 2
    assert err.startswith("modeldoc: error:") and "FluxPipeline" in err and len(err.strip().splitlines()) == 1


def test_missing_component_is_one_line(cli, tiny_sd1_folder, tmp_path):
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(tiny_sd1_folder, folder)
    os.remove(folder / "vae" / "diffusion_pytorch_model.safetensors")
    rc, _, err = cli("convert", folder, "-o", tmp_path / "x.safetensors", "--force")
    assert rc == 2
    assert "vae/diffusion_pytorch_model.safetensors is missing" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.safetensors").exists()


def test_v_prediction_folder_becomes_a_v_marked_file(cli, tmp_path):
    from diffusers_support import write_sd1_folder

    folder = write_sd1_folder(str(tmp_path / "v"), tiny=True, prediction_type="v_prediction")
    out = tmp_path / "v.safetensors"
    rc, _, err = cli("convert", folder, "-o", out, "--force")
    assert rc == 0, err
    with open_model(out) as model:
        assert model.metadata.get("modelspec.prediction_type") == "v"
    back = tmp_path / "back"
    assert cli("convert", out, "-o", back, "--format", "diffusers", "--force")[0] == 0
    assert json.loads((back / "scheduler" / "scheduler_config.json").read_text())["prediction_type"] == "v_prediction"


@pytest.mark.parametrize("folder, field, value", [
    ("unet", "layers_per_block", 10**9),
    ("unet", "down_block_types", 5),
    ("text_encoder", "num_hidden_layers", "many"),
])
def test_crafted_config_is_refused_in_one_line(cli, tiny_sd1_folder, tmp_path, folder, field, value):
    import shutil

    copy = tmp_path / "crafted"
    shutil.copytree(tiny_sd1_folder, copy)
    config_path = copy / folder / "config.json"
    config = json.loads(config_path.read_text())
    config[field] = value
    config_path.write_text(json.dumps(config))
    if folder == "text_encoder":  # an OpenCLIP encoder reads the layer count (SD1's CLIP-L does not)
        config["hidden_size"] = 1024
        config_path.write_text(json.dumps(config))
    rc, _, err = cli("inspect", copy)
    assert rc == 2 and err.startswith("modeldoc: error:") and field in err and len(err.strip().splitlines()) == 1


def test_oversized_model_index_is_refused(cli, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    with open(folder / "model_index.json", "w") as f:
        f.write('{"_class_name": "StableDiffusionPipeline", "pad": "' + "x" * (2 << 20) + '"}')
    rc, _, err = cli("inspect", folder)
    assert rc == 2 and "model_index.json is over" in err


def test_batch_converts_a_pipeline_folder_as_one_checkpoint(cli, tiny_sd1_folder, tmp_path):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(tiny_sd1_folder, models / "sub" / "pipe")
    out = tmp_path / "out"
    rc, stdout, err = cli("convert", "--batch", models, "-o", out, "--force", "--precision", "keep")
    assert rc == 0, err
    assert "1 converted" in stdout
    written = out / "sub" / "pipe.safetensors"
    with open_model(written) as model, open_model(tiny_sd1_folder) as folder:
        assert set(model) == set(folder) and UNET + "input_blocks.0.0.weight" in model
    rc, stdout, _ = cli("convert", "--batch", models, "-o", out, "--force", "--precision", "keep")
    assert rc == 0 and "already converted" in stdout  # resume: the folder's output is known


def test_v_prediction_and_zero_snr_become_the_markers_the_webui_reads(cli, tiny_sdxl_folder, tmp_path):
    """A v_prediction / rescale_betas_zero_snr scheduler -> empty 'v_pred' and 'ztsnr' tensors (Forge,
    ComfyUI, A1111 after 1.10 look for them) -> the same scheduler settings on the way back."""
    import shutil

    folder = tmp_path / "vxl"
    shutil.copytree(tiny_sdxl_folder, folder)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "EulerDiscreteScheduler", "prediction_type": "v_prediction", "rescale_betas_zero_snr": True}))
    single = tmp_path / "vxl.safetensors"
    rc, _, err = cli("convert", folder, "-o", single, "--precision", "keep", "--force")
    assert rc == 0, err
    with open_model(str(single)) as model:
        assert model["v_pred"].shape == (0,) and model["ztsnr"].shape == (0,)
        assert model.metadata.get("modelspec.prediction_type") == "v"
    back = tmp_path / "back"
    rc, text, err = cli("convert", single, "-o", back, "--format", "diffusers", "--precision", "keep", "--force")
    assert rc == 0, err
    assert "no place in a diffusers folder" not in text  # the markers are the scheduler settings, not left out
    scheduler = diffusers.EulerDiscreteScheduler.from_pretrained(str(back / "scheduler"))
    assert scheduler.config.prediction_type == "v_prediction" and scheduler.config.rescale_betas_zero_snr
