"""Tiny KL autoencoders written as real model files, for the VAE test's tests.

The shapes come from a config (widths 32 and 64: two levels, GroupNorm's 32 groups), the values
from a seeded numpy generator scaled like a trained network (std 1/sqrt(fan-in)), so a forward
pass on a 32x32 image takes milliseconds and its activations stay in a sane range.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from safetensors.numpy import save_file

from lib_modeldoc.vae_model import Autoencoder, VaeConfig

TINY = VaeConfig(in_channels=3, out_channels=3, widths=(32, 64), blocks=1, z_channels=4, quant=True)
TINY16 = VaeConfig(in_channels=3, out_channels=3, widths=(32, 64), blocks=1, z_channels=16, quant=False)
SIZE = 32  # test image side for the tiny VAEs


def tiny_shapes(cfg: VaeConfig = TINY) -> dict[str, tuple[int, ...]]:
    """LDM key -> shape of the autoencoder ``cfg`` describes."""
    with torch.device("meta"):
        module = Autoencoder(cfg)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def tiny_state(cfg: VaeConfig = TINY, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 weights by LDM key: norms near 1, biases small, weights std 1/sqrt(fan-in)."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in tiny_shapes(cfg).items():
        if "norm" in key and key.endswith(".weight"):
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        elif key.endswith(".bias"):
            value = 0.05 * rng.standard_normal(shape)
        else:
            value = rng.standard_normal(shape) / math.sqrt(math.prod(shape[1:]))
        state[key] = value.astype(np.float32)
    state["decoder.conv_out.weight"] *= 0.5  # keep the random picture mostly inside -1..1
    return state


def write_vae(path, state: dict[str, np.ndarray], *, prefix: str = "", dtype=np.float32,
              extra: dict[str, np.ndarray] | None = None) -> str:
    """``state`` as a ``.safetensors`` file with ``prefix`` on every key (``first_stage_model.`` ...)."""
    tensors = {prefix + k: np.ascontiguousarray(v.astype(dtype)) for k, v in state.items()}
    tensors.update(extra or {})
    save_file(tensors, str(path))
    return str(path)
