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

from lib_modeldoc.analysis.vae_model import Autoencoder, VaeConfig

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


def identity_state(image: np.ndarray, contrast: float = 1.0) -> dict[str, np.ndarray]:
    """Weights of :data:`TINY` that pass the image through: 2x2 average down, nearest-neighbour up.

    Every residual branch and the attention output are zero (each block is the identity), the
    image's channels ride in channels 0, 2, 4 (one per GroupNorm group), and the two ``norm_out``
    layers get the scale and offset that undo their normalisation *for this image* (plus 10 to
    stay where SiLU is the identity). So decode(encode(image)) is the image at half resolution:
    a VAE that reconstructs well, whose output contrast ``contrast`` scales (a washed-out VAE).
    """
    state = {k: np.zeros(s, dtype=np.float32) for k, s in tiny_shapes(TINY).items()}
    for key in state:
        if "norm" in key and key.endswith(".weight"):
            state[key][:] = 1.0
    rgb = (0, 2, 4)

    def eye(key: str, pairs, tap=(1, 1)) -> None:
        weight = state[key]
        for out_c, in_c in pairs:
            weight[(out_c, in_c) + (tap if weight.ndim == 4 and weight.shape[2] == 3 else (0, 0))] = 1.0

    eye("encoder.conv_in.weight", zip(rgb, range(3)))
    eye("encoder.down.1.block.0.nin_shortcut.weight", [(c, c) for c in range(32)])
    for dy in (0, 1):
        for dx in (0, 1):
            for c in rgb:
                state["encoder.down.0.downsample.conv.weight"][c, c, dy, dx] = 0.25
    eye("encoder.conv_out.weight", zip(range(3), rgb))
    eye("quant_conv.weight", [(c, c) for c in range(8)])
    eye("post_quant_conv.weight", [(c, c) for c in range(4)])
    eye("decoder.conv_in.weight", zip(rgb, range(3)))
    eye("decoder.up.1.upsample.conv.weight", [(c, c) for c in range(64)])
    eye("decoder.up.0.block.0.nin_shortcut.weight", [(c, c) for c in range(32)])
    eye("decoder.conv_out.weight", zip(range(3), rgb))

    # Undo the two norm_out layers for this image (their group statistics, measured encoder first).
    state["encoder.conv_out.bias"][:3] = -10.0
    state["decoder.conv_out.bias"][:] = -10.0
    x = torch.from_numpy(image.transpose(2, 0, 1)[None] * 2.0 - 1.0)
    for name, width in (("encoder.norm_out", 64), ("decoder.norm_out", 32)):
        module = _module(state)
        seen: list[torch.Tensor] = []
        module.get_submodule(name).register_forward_pre_hook(lambda m, a: seen.append(a[0]))
        with torch.no_grad():
            module(x)
        groups = seen[0].reshape(32, -1).double()
        mean, std = groups.mean(1), (groups.var(1, unbiased=False) + 1e-6).sqrt()
        per_channel = width // 32
        state[f"{name}.weight"] = np.repeat(std.numpy(), per_channel).astype(np.float32)
        state[f"{name}.bias"] = (np.repeat(mean.numpy(), per_channel) + 10.0).astype(np.float32)
    state["decoder.conv_out.weight"] *= contrast
    state["decoder.conv_out.bias"][:] *= contrast
    return state


def _module(state: dict[str, np.ndarray]) -> Autoencoder:
    return Autoencoder.from_tensors({k: v.shape for k, v in state.items()}, lambda k: torch.from_numpy(state[k]))
