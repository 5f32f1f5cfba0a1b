"""The VAE module built from a file's tensors computes what diffusers' AutoencoderKL computes.

diffusers is the oracle (a dev requirement, never used by the engine): an AutoencoderKL made
from a config with random weights (nothing downloaded) is written to real ``.safetensors`` files,
once with its own (diffusers) keys, once in the LDM layout of a checkpoint, and the engine's
module loaded from each file must give the same encode -> decode output.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from lib_modeldoc import open_model
from lib_modeldoc.errors import IncompatibleComponentError
from lib_modeldoc.analysis.vae_model import config_from_shapes, ldm_keys
from lib_modeldoc.analysis.vae_test import locate_vae, open_autoencoder
from vae_support import write_vae

diffusers = pytest.importorskip("diffusers")

# Independent of lib_modeldoc's key map: the LDM names written by hand for the tiny config below.
LDM_BY_HAND = {
    "encoder.down_blocks.1.resnets.0.conv_shortcut.weight": "encoder.down.1.block.0.nin_shortcut.weight",
    "encoder.down_blocks.0.downsamplers.0.conv.weight": "encoder.down.0.downsample.conv.weight",
    "encoder.mid_block.resnets.1.conv2.bias": "encoder.mid.block_2.conv2.bias",
    "encoder.mid_block.attentions.0.group_norm.weight": "encoder.mid.attn_1.norm.weight",
    "encoder.mid_block.attentions.0.to_out.0.weight": "encoder.mid.attn_1.proj_out.weight",
    "encoder.conv_norm_out.bias": "encoder.norm_out.bias",
    "decoder.up_blocks.0.resnets.2.conv1.weight": "decoder.up.1.block.2.conv1.weight",
    "decoder.up_blocks.0.upsamplers.0.conv.bias": "decoder.up.1.upsample.conv.bias",
    "decoder.up_blocks.1.resnets.0.conv_shortcut.bias": "decoder.up.0.block.0.nin_shortcut.bias",
    "decoder.mid_block.attentions.0.to_q.weight": "decoder.mid.attn_1.q.weight",
    "quant_conv.weight": "quant_conv.weight",
}


@functools.lru_cache(maxsize=None)
def diffusers_vae(latent_channels: int = 4, quant: bool = True, seed: int = 0):
    """A tiny AutoencoderKL with every weight (norms included) random (cached: tests only read it)."""
    torch.manual_seed(seed)
    model = diffusers.AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(32, 64), layers_per_block=2, latent_channels=latent_channels, norm_num_groups=32,
        use_quant_conv=quant, use_post_quant_conv=quant,
    ).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model


def reference(model, image: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.decode(model.encode(image).latent_dist.mode()).sample


def image(size: int = 32) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1


def ldm_state(model) -> dict[str, np.ndarray]:
    """The diffusers state dict renamed to LDM keys, attention weights as 1x1 convs (as LDM files store them)."""
    names = ldm_keys(model.state_dict())
    out = {}
    for key, value in model.state_dict().items():
        array = value.numpy()
        if ".attn_1." in names[key] and names[key].endswith(".weight") and array.ndim == 2:
            array = array[:, :, None, None]
        out[names[key]] = array
    return out


def test_key_map_matches_the_hand_written_ldm_names():
    names = ldm_keys(diffusers_vae().state_dict())
    for key, expected in LDM_BY_HAND.items():
        assert names[key] == expected


@pytest.mark.parametrize("prefix", ["", "first_stage_model."])
def test_ldm_layout_file_gives_the_diffusers_output(tmp_path, prefix):
    model = diffusers_vae()
    path = write_vae(tmp_path / "vae.safetensors", ldm_state(model), prefix=prefix)
    with open_model(path) as f:
        mine = open_autoencoder(f)
    x = image()
    expected = reference(model, x)
    with torch.no_grad():
        got = mine(x)
    assert got.shape == expected.shape == (1, 3, 32, 32)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), float((got - expected).abs().max())
    assert float(expected.abs().max()) > 0.1  # a real signal, not two zeros


def test_diffusers_layout_file_is_read_directly(tmp_path):
    model = diffusers_vae(seed=3)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    path = write_vae(tmp_path / "diffusion_pytorch_model.safetensors", state)
    with open_model(path) as f:
        assert locate_vae(f).layout == "diffusers"
        mine = open_autoencoder(f)
    x = image(48)
    with torch.no_grad():
        got = mine(x)
    assert torch.allclose(got, reference(model, x), atol=1e-4, rtol=1e-4)


def test_sixteen_channel_autoencoder_without_quant_convs(tmp_path):
    model = diffusers_vae(latent_channels=16, quant=False, seed=5)
    path = write_vae(tmp_path / "ae.safetensors", ldm_state(model))
    with open_model(path) as f:
        mine = open_autoencoder(f)
    assert mine.config.family == "SD3/Flux" and not mine.config.quant
    x = image()
    with torch.no_grad():
        got = mine(x)
    assert torch.allclose(got, reference(model, x), atol=1e-4, rtol=1e-4)


def test_fp16_storage_is_widened_to_fp32(tmp_path):
    model = diffusers_vae(seed=7)
    path = write_vae(tmp_path / "vae16.safetensors", ldm_state(model), dtype=np.float16)
    with open_model(path) as f:
        mine = open_autoencoder(f)
    assert next(mine.parameters()).dtype == torch.float32
    x = image()
    with torch.no_grad():
        got = mine(x)
    assert torch.allclose(got, reference(model, x), atol=2e-2)  # only fp16 rounding of the weights differs


def test_config_is_read_from_shapes():
    state = ldm_state(diffusers_vae())
    cfg = config_from_shapes({k: v.shape for k, v in state.items()})
    assert (cfg.widths, cfg.blocks, cfg.z_channels, cfg.quant, cfg.downscale) == ((32, 64), 2, 4, True, 2)


def test_a_missing_tensor_is_a_one_line_error(tmp_path):
    state = ldm_state(diffusers_vae())
    del state["decoder.mid.attn_1.v.bias"]
    path = write_vae(tmp_path / "cut.safetensors", state)
    with open_model(path) as f, pytest.raises(IncompatibleComponentError, match="decoder.mid.attn_1.v.bias"):
        open_autoencoder(f)
