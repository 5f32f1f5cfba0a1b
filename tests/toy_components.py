"""A toy family with tiny tables, registered by a fixture, for component machinery tests.

Real tables need real shapes (a VAE is 84 M values); the toy has the same component names
(``unet``, ``vae``, ``clip_l``), prefixes and the NAI CLIP layout, at a few hundred values.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pytest

from lib_modeldoc.arch.families import Family, Mount, Slot
from lib_modeldoc.arch.identify import known_architectures
from lib_modeldoc.arch.tables import Table

UNET = "model.diffusion_model."
VAE = "first_stage_model."
CLIP = "cond_stage_model.transformer.text_model."
CLIP_NAI = "cond_stage_model.transformer."

TOY_TABLES: dict[str, dict[str, tuple[int, ...]]] = {
    "toy_unet": {
        "input_blocks.0.0.weight": (4, 4, 3, 3), "input_blocks.0.0.bias": (4,),
        "middle_block.0.weight": (4, 4), "output_blocks.0.0.weight": (4, 4, 1, 1), "out.2.weight": (4, 4, 3, 3),
    },
    "toy_vae": {
        "encoder.conv_in.weight": (6, 3, 3, 3), "encoder.conv_in.bias": (6,), "quant_conv.weight": (8, 8, 1, 1),
        "post_quant_conv.weight": (4, 4, 1, 1), "decoder.conv_out.weight": (3, 6, 3, 3), "decoder.conv_out.bias": (3,),
    },
    "toy_clip": {
        "embeddings.position_ids": (1, 7), "embeddings.token_embedding.weight": (11, 4),
        "encoder.layers.0.mlp.fc1.weight": (8, 4), "encoder.layers.0.mlp.fc2.weight": (4, 8),
        "encoder.layers.0.self_attn.q_proj.weight": (4, 4), "encoder.layers.1.mlp.fc1.weight": (8, 4),
        "final_layer_norm.weight": (4,),
    },
}
TOY_OPTIONAL = {"toy_clip": frozenset({"embeddings.position_ids"})}

FAMILIES = (
    Family("TOY", "checkpoint", "SD1", "toy checkpoint", (
        Slot("unet", ("toy_unet",), (Mount(UNET),)),
        Slot("vae", ("toy_vae",), (Mount(VAE),)),
        Slot("clip_l", ("toy_clip",), (Mount(CLIP), Mount(CLIP_NAI, layout="nai"))),
    )),
    Family("TOY-VAE", "component", "SD", "toy VAE", (Slot("vae", ("toy_vae",), (Mount(""),)),)),
)


TABLES: dict[str, Table] = {
    table_id: Table(table_id, MappingProxyType(shapes), TOY_OPTIONAL.get(table_id, frozenset()))
    for table_id, shapes in TOY_TABLES.items()
}


def toy_architectures():
    """A context in which the engine knows only the toy families (and their tables)."""
    return known_architectures(FAMILIES, TABLES.__getitem__)


@pytest.fixture
def toy_family():
    """Make :func:`identify` know only the toy families (and their tables) during the test."""
    with toy_architectures():
        yield FAMILIES


def toy_values(seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Random float32 values (not fp16-exact) per toy component, by component-relative key."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, np.ndarray]] = {}
    for component, table_id in (("unet", "toy_unet"), ("vae", "toy_vae"), ("clip_l", "toy_clip")):
        out[component] = {
            key: (np.arange(shape[-1], dtype=np.int64).reshape(shape) if key.endswith("position_ids")
                  else (rng.standard_normal(shape) * 0.7).astype(np.float32))
            for key, shape in TOY_TABLES[table_id].items()
        }
    return out


def checkpoint(values: dict[str, dict[str, np.ndarray]], *, nai: bool = False, dtype: str = "float32",
               components: tuple[str, ...] = ("unet", "vae", "clip_l")) -> dict[str, np.ndarray]:
    """A flat toy checkpoint state dict (numpy arrays), optionally in NAI CLIP layout / fp16."""
    prefixes = {"unet": UNET, "vae": VAE, "clip_l": CLIP_NAI if nai else CLIP}
    flat = {}
    for component in components:
        for key, value in values[component].items():
            flat[prefixes[component] + key] = value.astype(dtype) if value.dtype.kind == "f" else value
    return flat


def standalone_vae(values: dict[str, dict[str, np.ndarray]], *, dtype: str = "float32") -> dict[str, np.ndarray]:
    return {k: v.astype(dtype) for k, v in values["vae"].items()}


def save_safetensors(path, tensors: dict[str, np.ndarray]) -> str:
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))
    return str(path)


def save_ckpt(path, tensors: dict[str, np.ndarray], *, wrap: bool = True) -> str:
    import torch

    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}
    torch.save({"state_dict": state, "global_step": 1} if wrap else state, str(path))
    return str(path)
