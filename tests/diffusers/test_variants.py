"""Inpainting (9-channel UNet), InstructPix2Pix (8) and the SDXL refiner, both ways."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from diffusers_support import diffusers, torch, write_tiny_vocab
from lib_modeldoc import open_model
from lib_modeldoc.arch.families import REFINER_CLIP_G, family
from lib_modeldoc.arch.parts import identify_model
from lib_modeldoc.arch.tables import table
from lib_modeldoc.operations.convert import ConvertOptions
from lib_modeldoc.operations.diffusers_export import plan_diffusers
from lib_modeldoc.samples import family_specs, write_safetensors_sample

# family -> (pipeline class, UNet input channels)
VARIANTS = {
    "SD1-inpaint": ("StableDiffusionInpaintPipeline", 9),
    "SD1-pix2pix": ("StableDiffusionInstructPix2PixPipeline", 8),
    "SD2-inpaint": ("StableDiffusionInpaintPipeline", 9),
    "SDXL-inpaint": ("StableDiffusionXLInpaintPipeline", 9),
    "SDXL-refiner": ("StableDiffusionXLImg2ImgPipeline", 4),
}


def _family_keys(name: str) -> set[str]:
    keys = set()
    for slot in family(name).slots:
        if slot.component != "ema_unet":
            keys |= {slot.mounts[0].key(k) for k in table(slot.tables[0]).required_keys}
    return keys


def _built_shapes(cls, config: dict) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        built = cls(**{k: v for k, v in config.items() if not k.startswith("_")})
    return {k: tuple(v.shape) for k, v in built.state_dict().items()}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request, tmp_path_factory):
    """(family, real-shape sparse single file of it)."""
    src = str(tmp_path_factory.mktemp("variant") / f"{request.param}.safetensors")
    write_safetensors_sample(src, family_specs(request.param))
    return request.param, src


def test_variant_plans_what_diffusers_builds_from_our_configs(variant):
    name, src = variant
    pipeline, channels = VARIANTS[name]
    with open_model(src) as model:
        assert identify_model(model).architecture == name
        plan = plan_diffusers(model, ConvertOptions(precision="keep"))
    assert plan.pipeline.value == pipeline and plan.model_index["_class_name"] == pipeline
    assert plan.left_out == []
    by_folder = {c.folder: c for c in plan.components}
    assert by_folder["unet"].config["in_channels"] == channels
    for folder, cls in (("unet", diffusers.UNet2DConditionModel), ("vae", diffusers.AutoencoderKL)):
        assert {e.key: e.shape for e in by_folder[folder].plan.entries} == _built_shapes(cls, by_folder[folder].config)
    if name == "SDXL-refiner":
        assert set(by_folder) == {"unet", "vae", "text_encoder_2"}
        assert plan.model_index["text_encoder"] == [None, None] and plan.model_index["requires_aesthetics_score"]
        unet = by_folder["unet"].config
        assert unet["block_out_channels"] == [384, 768, 1536, 1536] and unet["cross_attention_dim"] == 1280
        assert unet["projection_class_embeddings_input_dim"] == 2560


def test_variant_file_folder_file_keeps_the_webui_keys(cli, variant, tmp_path):
    """File -> folder -> the same WebUI keys and shapes (each variant identified again)."""
    name, src = variant
    out = tmp_path / "pipe"
    rc, _, err = cli("convert", src, "-o", out, "--format", "diffusers", "--precision", "keep")
    assert rc == 0, err
    with open_model(str(out)) as folder, open_model(src) as single:
        assert identify_model(folder).architecture == name
        assert set(folder) == _family_keys(name)
        assert {k: folder[k].shape for k in folder} == {k: single[k].shape for k in folder}
        if name == "SDXL-refiner":
            assert folder[REFINER_CLIP_G + "transformer.resblocks.0.attn.in_proj_weight"].shape == (3840, 1280)


TINY_REFINER_UNET = {
    "sample_size": 8, "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "block_out_channels": (32, 64, 64, 64), "transformer_layers_per_block": 2, "attention_head_dim": (1, 1, 1, 1),
    "cross_attention_dim": 64, "use_linear_projection": True, "addition_embed_type": "text_time",
    "addition_time_embed_dim": 8, "projection_class_embeddings_input_dim": 64 + 5 * 8,
}


def test_tiny_inpaint_and_refiner_round_trip_in_diffusers(cli, tiny_sd1_folder, tiny_sdxl_folder, tmp_path):
    """Random-weight UNets (9-channel SD1; the refiner's 4-level one) folder -> file -> folder, values equal;
    the folder loads as a whole pipeline of its class."""
    import shutil

    vocab = write_tiny_vocab(str(tmp_path / "vocab"))
    torch.manual_seed(1)
    cases = []
    inpaint = tmp_path / "inpaint"
    shutil.copytree(tiny_sd1_folder, inpaint)
    shutil.rmtree(inpaint / "unet")
    config = dict(diffusers.UNet2DConditionModel.load_config(os.path.join(tiny_sd1_folder, "unet")))
    diffusers.UNet2DConditionModel.from_config({**config, "in_channels": 9}).save_pretrained(str(inpaint / "unet"))
    index = json.loads((inpaint / "model_index.json").read_text())
    (inpaint / "model_index.json").write_text(json.dumps({**index, "_class_name": "StableDiffusionInpaintPipeline"}))
    cases.append((inpaint, "StableDiffusionInpaintPipeline", ["unet", "vae", "text_encoder"]))
    refiner = tmp_path / "refiner"
    shutil.copytree(tiny_sdxl_folder, refiner)
    for gone in ("unet", "text_encoder"):
        shutil.rmtree(refiner / gone)
    diffusers.UNet2DConditionModel(**TINY_REFINER_UNET).save_pretrained(str(refiner / "unet"))
    index = json.loads((refiner / "model_index.json").read_text())
    (refiner / "model_index.json").write_text(json.dumps(
        {**index, "_class_name": "StableDiffusionXLImg2ImgPipeline", "text_encoder": [None, None]}))
    cases.append((refiner, "StableDiffusionXLImg2ImgPipeline", ["unet", "vae", "text_encoder_2"]))
    for folder, pipeline, components in cases:
        single = tmp_path / f"{folder.name}.safetensors"
        rc, _, err = cli("convert", folder, "-o", single, "--precision", "keep", "--force")
        assert rc == 0, err
        out = tmp_path / f"{folder.name}-again"
        rc, _, err = cli("convert", single, "-o", out, "--format", "diffusers", "--precision", "keep", "--force",
                         "--tokenizers", vocab)
        assert rc == 0, err
        index = json.loads((out / "model_index.json").read_text())
        assert index["_class_name"] == pipeline
        loaded = getattr(diffusers, pipeline).from_pretrained(str(out))
        assert type(loaded).__name__ == pipeline
        assert loaded.unet.config.in_channels == (9 if "Inpaint" in pipeline else 4)
        if "XL" in pipeline:  # the refiner: bigG alone, and the aesthetic-score conditioning
            assert loaded.text_encoder is None and loaded.tokenizer is None and loaded.tokenizer_2.pad_token == "!"
            assert loaded.config.requires_aesthetics_score
        assert sorted(c for c in components if index.get(c, [None])[0]) == sorted(components)
        before = diffusers.UNet2DConditionModel.from_pretrained(str(folder / "unet")).state_dict()
        after = diffusers.UNet2DConditionModel.from_pretrained(str(out / "unet")).state_dict()
        assert set(after) == set(before)
        for key, value in before.items():
            assert torch.equal(after[key], value), f"{folder.name}: {key}"
        for component in components[2:]:
            with open_model(str(folder / component / "model.safetensors")) as a, \
                    open_model(str(out / component / "model.safetensors")) as b:
                assert set(a) == set(b)
                for key in a:
                    np.testing.assert_array_equal(a.read(key), b.read(key), err_msg=key)
