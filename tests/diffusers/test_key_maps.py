"""The key maps against diffusers itself: SD1's UNet and VAE built on the meta device (no memory, no download)."""

from __future__ import annotations

import pytest

from diffusers_support import SD1_UNET_CONFIG, SD1_VAE_CONFIG, diffusers, torch
from lib_modeldoc.arch.diffusers_map import SD1_UNET, unet_map, unet_structure_from_config, vae_map
from lib_modeldoc.arch.tables import table


def _meta(cls, config):
    with torch.device("meta"):
        model = cls(**config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}, model.config


@pytest.mark.parametrize("name", ["unet", "vae"])
def test_sd1_table_maps_onto_diffusers_state_dict(name):
    if name == "unet":
        state, config = _meta(diffusers.UNet2DConditionModel, SD1_UNET_CONFIG)
        key_map, shapes = unet_map(unet_structure_from_config(config)), table("unet_sd1").shapes
    else:
        state, config = _meta(diffusers.AutoencoderKL, SD1_VAE_CONFIG)
        key_map, shapes = vae_map(), table("vae").shapes
    mapped = {key_map.to_diffusers(k): k for k in shapes}
    assert None not in mapped
    assert set(mapped) == set(state)  # every LDM key has a diffusers twin and no diffusers key is left over
    for diffusers_key, ldm_key in mapped.items():
        assert key_map.to_ldm(diffusers_key) == ldm_key
        want = tuple(shapes[ldm_key])
        got = state[diffusers_key]
        if key_map.is_conv_as_linear(diffusers_key):
            assert want == got + (1, 1), diffusers_key
        else:
            assert want == got, diffusers_key


def test_structure_from_sd1_config_is_sd1():
    _, config = _meta(diffusers.UNet2DConditionModel, SD1_UNET_CONFIG)
    assert unet_structure_from_config(config) == SD1_UNET


def test_vae_attention_projections_are_the_only_reshaped_keys():
    reshaped = [k for k in (vae_map().to_diffusers(k) for k in table("vae").shapes) if vae_map().is_conv_as_linear(k)]
    assert sorted(reshaped) == sorted(f"{side}.mid_block.attentions.0.{p}.weight"
                                      for side in ("encoder", "decoder") for p in ("to_q", "to_k", "to_v", "to_out.0"))


def test_unknown_module_has_no_twin():
    assert unet_map().to_diffusers("not_a_block.weight") is None
    assert unet_map().to_ldm("down_blocks.9.resnets.0.conv1.weight") is None
