"""Load the component key tables shipped in ``arch/tables/`` (generated, never hand-typed)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

__all__ = ["Table", "table", "TABLE_IDS", "DERIVED", "derive", "shape_matches"]


# Keys (per table id) a correct file may lack: transformers >= 4.31 no longer saves position_ids
# buffers; whether AltDiffusion's saved text encoder kept the (unused) RoBERTa pooler varies.
_XLMR_OPTIONAL = frozenset({"roberta.embeddings.position_ids", "roberta.pooler.dense.weight", "roberta.pooler.dense.bias"})
OPTIONAL_KEYS: Mapping[str, frozenset[str]] = {
    "clip_l": frozenset({"embeddings.position_ids"}),
    "clip_g_hf": frozenset({"text_model.embeddings.position_ids"}),
    "xlmr_m9": _XLMR_OPTIONAL,
    "xlmr_m18": _XLMR_OPTIONAL,
}


def _label_emb(adm_in: int, time_dim: int = 1280) -> dict[str, tuple[int, ...] | None]:
    """The ``num_classes: sequential`` label embedding (``label_emb.0.0`` / ``label_emb.0.2`` linears)."""
    return {"label_emb.0.0.weight": (time_dim, adm_in), "label_emb.0.0.bias": (time_dim,),
            "label_emb.0.2.weight": (time_dim, time_dim), "label_emb.0.2.bias": (time_dim,)}


def _in_channels(channels: int) -> dict[str, tuple[int, ...] | None]:
    """The UNet's first conv taking ``channels`` latent channels instead of 4 (its only difference)."""
    return {"input_blocks.0.0.weight": (320, channels, 3, 3)}


# Tables that differ from a shipped one in a few keys: shape overrides, additions, ``None`` removes.
# Inpainting UNets take 9 input channels (latent + mask + masked image), InstructPix2Pix 8 (latent +
# image), SD2 depth 5 (latent + depth); the SD1 / SD2 ones match the reference lists, which
# tools/gen_tables.py checks instead of shipping four 687-line copies. SD 2.1 unCLIP = SD2 UNet +
# label_emb (adm_in_channels 2048 for H, 1536 for L, v2-1-stable-unclip-*-inference.yaml); the
# SD3 / Flux VAE ("ae") = the KL-f8 VAE with 16 latent channels and no quant convs.
DERIVED: Mapping[str, tuple[str, Mapping[str, tuple[int, ...] | None]]] = {
    "unet_sd1_inpaint": ("unet_sd1", _in_channels(9)),
    "unet_sd1_pix2pix": ("unet_sd1", _in_channels(8)),
    "unet_sd2_inpaint": ("unet_sd2", _in_channels(9)),
    "unet_sd2_depth": ("unet_sd2", _in_channels(5)),
    "unet_sdxl_inpaint": ("unet_sdxl", _in_channels(9)),
    "unet_sdxl_pix2pix": ("unet_sdxl", _in_channels(8)),
    "unet_sd2_unclip_h": ("unet_sd2", _label_emb(2048)),
    "unet_sd2_unclip_l": ("unet_sd2", _label_emb(1536)),
    "vae_16ch": ("vae", {
        "encoder.conv_out.weight": (32, 512, 3, 3), "encoder.conv_out.bias": (32,),
        "decoder.conv_in.weight": (512, 16, 3, 3),
        "quant_conv.weight": None, "quant_conv.bias": None, "post_quant_conv.weight": None, "post_quant_conv.bias": None,
    }),
}


@dataclass(frozen=True, eq=False)
class Table:
    """The keys and shapes of one component variant, relative to its mount point.

    A ``-1`` in a shape matches any size (LoRA ranks). Compared and hashed by identity: what
    identification derives from a table (its keys laid out at each mount) is cached per object.
    """

    id: str
    shapes: Mapping[str, tuple[int, ...]]
    optional: frozenset[str] = field(default_factory=frozenset)

    @property
    def required_keys(self) -> frozenset[str]:
        return frozenset(self.shapes) - self.optional


# A plain folder beside this module (importlib.resources would cost ~20 ms of imports at start-up).
_TABLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tables")


def _shipped_ids() -> tuple[str, ...]:
    return tuple(sorted(name[:-4] for name in os.listdir(_TABLE_DIR) if name.endswith(".txt")))


TABLE_IDS: tuple[str, ...] = tuple(sorted(set(_shipped_ids()) | set(DERIVED)))


def _parse(table_id: str, text: str) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line[0] == "#":
            continue
        # partition and a cache of the ~200 distinct shapes, no regex: ~14k lines at each start-up
        key, _, dims = line.partition(" [")
        shape = _SHAPES.get(dims)
        try:
            if not key or " " in key:
                raise ValueError
            if shape is None:
                if dims[-1:] != "]":
                    raise ValueError
                shape = _SHAPES[dims] = tuple(map(int, dims[:-1].split(","))) if dims != "]" else ()
        except ValueError:
            raise ValueError(f"table {table_id}, line {number}: malformed: {line!r}") from None
        shapes[key] = shape
    return shapes


_SHAPES: dict[str, tuple[int, ...]] = {}  # "320,4,3,3]" -> (320, 4, 3, 3)


def derive(base: Mapping[str, tuple[int, ...]], overrides: Mapping[str, tuple[int, ...] | None]) -> dict[str, tuple[int, ...]]:
    """``base`` with ``overrides`` applied (a shape replaces or adds a key, ``None`` removes it), in base order."""
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


@functools.lru_cache(maxsize=None)
def table(table_id: str) -> Table:
    """The :class:`Table` with this id (``unet_sd1``, ``clip_l``, ``vae`` ...)."""
    if table_id in DERIVED:
        base_id, overrides = DERIVED[table_id]
        base = table(base_id)
        return Table(table_id, MappingProxyType(derive(base.shapes, overrides)), base.optional)
    with open(os.path.join(_TABLE_DIR, f"{table_id}.txt"), encoding="utf-8") as f:
        text = f.read()
    return Table(table_id, MappingProxyType(_parse(table_id, text)), OPTIONAL_KEYS.get(table_id, frozenset()))


def shape_matches(expected: tuple[int, ...], actual: tuple[int, ...]) -> bool:
    """Whether a stored shape fits a table shape (``-1`` matches anything)."""
    return len(expected) == len(actual) and all(e in (-1, a) for e, a in zip(expected, actual))
