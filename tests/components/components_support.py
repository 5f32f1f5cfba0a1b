"""Helpers for the component tests: real-key models with planted values, trimmed tables, oracles.

Imported by this folder's test modules as ``components_support`` (a name no other test folder and
no stdlib module uses). Fixtures live in ``conftest.py``.

Why trimmed tables: replace and build refuse an incomplete part, and a complete real part is
large (an SDXL UNet is 2.6 G values; this machine writes ~300 MB/s). ``trimmed_table`` keeps each
real table's small tensors plus the shapes that tell families apart (the input channels and the
first cross-attention width), under the real names, prefixes and shapes. Files written from it
are complete under the trimmed tables and identify as the same architecture under the real ones
(``test_fixtures_identify_the_same_under_real_tables``). The trimming is never the only evidence:
the exported parts are identified, and the refusals and a full-size VAE (84 M values, written
sparse) are checked, under the real tables.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

import numpy as np
import torch
from safetensors import safe_open

from lib_modeldoc.arch.families import family
from lib_modeldoc.arch.tables import Table, table
from lib_modeldoc.dtypes import DTYPES
from lib_modeldoc.samples import Spec, write_safetensors_sample

TRIM_VALUES = 65536  # tensors of at most this many values stay in a trimmed table (half the keys or more)
DISCRIMINATORS = ("input_blocks.0.0.weight",)  # plus the first attn2.to_k.weight of a UNet

SD1_UNET = "model.diffusion_model."
SD1_VAE = "first_stage_model."
SD1_CLIP = "cond_stage_model.transformer.text_model."
SD2_CLIP = "cond_stage_model.model."
XL_CLIP_L = "conditioner.embedders.0.transformer.text_model."
XL_CLIP_G = "conditioner.embedders.1.model."
EMA = "model_ema.diffusion_model"
POSITION_IDS = "embeddings.position_ids"

# Where each component sits in a full checkpoint of each family.
PREFIX = {
    ("SD1", "unet"): SD1_UNET, ("SD1", "vae"): SD1_VAE, ("SD1", "clip_l"): SD1_CLIP,
    ("SD2", "unet"): SD1_UNET, ("SD2", "vae"): SD1_VAE, ("SD2", "clip_h"): SD2_CLIP,
    ("SDXL", "unet"): SD1_UNET, ("SDXL", "vae"): SD1_VAE, ("SDXL", "clip_l"): XL_CLIP_L,
    ("SDXL", "clip_g"): XL_CLIP_G,
}


def trimmed_table(real: Table) -> Table:
    """``real`` with only its small tensors and its family-telling ones (same id, names, shapes)."""
    first_to_k = next((k for k in real.shapes if k.endswith("attn2.to_k.weight")), None)
    keep = {
        k: s for k, s in real.shapes.items()
        if math.prod(abs(d) for d in s) <= TRIM_VALUES or k in DISCRIMINATORS or k == first_to_k
    }
    return Table(real.id, MappingProxyType(keep), real.optional & frozenset(keep))


@functools.lru_cache(maxsize=None)
def _trimmed(table_id: str) -> Table:
    return trimmed_table(table(table_id))


def model_specs(arch: str, *, dtype: str = "F16", ema: bool = False, components: Iterable[str] | None = None,
                full: Iterable[str] = ()) -> list[Spec]:
    """A family's tensors at their checkpoint keys, from the trimmed tables (``full`` components:
    the real ones); like ``samples.family_specs``, which always uses the real tables."""
    wanted = set(components) if components is not None else None
    specs = []
    for slot in family(arch).slots:
        if (slot.component == "ema_unet" and not ema) or (wanted is not None and slot.component not in wanted):
            continue
        tab = table(slot.tables[0]) if slot.component in full else _trimmed(slot.tables[0])
        for key, shape in tab.shapes.items():
            code = "I64" if key.endswith("position_ids") else dtype
            specs.append(Spec(slot.mounts[0].key(key), code, tuple(abs(d) for d in shape)))
    return specs


def pattern_fill(seed: str, *, limit: int | None = None) -> Callable[[Spec], bytes]:
    """``fill`` for ``write_safetensors_sample``: values distinct per (seed, key), finite, cheap.

    Floats are a sine with a phase and frequency drawn from (seed, key), rounded to the tensor's
    dtype; integer tensors (position_ids) are 0..n-1. With ``limit``, tensors above ``limit``
    bytes stay sparse holes (zeros).
    """

    def fill(spec: Spec) -> bytes:
        if limit is not None and spec.nbytes > limit:
            return b""
        n = math.prod(spec.shape)
        if not DTYPES[spec.dtype].is_float:
            return np.arange(n, dtype=np.dtype(DTYPES[spec.dtype].numpy)).tobytes()
        h = zlib.crc32(f"{seed}:{spec.key}".encode())
        values = np.sin(np.arange(n, dtype=np.float32) * np.float32(0.1 + (h & 0xFFFF) / 65536) + np.float32(h >> 16))
        if DTYPES[spec.dtype].numpy is not None:
            return values.astype(np.dtype(DTYPES[spec.dtype].numpy)).tobytes()
        return raw_bytes(torch.from_numpy(values).to(torch_dtype(spec.dtype)))  # bf16, fp8

    return fill


def write_model(path: str | os.PathLike[str], arch: str, *, dtype: str = "F16", seed: str | None = None,
                ema: bool = False, components: Iterable[str] | None = None, full: Iterable[str] = (),
                extra: Iterable[Spec] = (), values: Mapping[str, np.ndarray] | None = None,
                metadata: Mapping[str, str] | None = None, limit: int | None = None) -> str:
    """Write a safetensors model of ``arch`` (see the ``make_model`` fixture); returns its path."""
    specs = {s.key: s for s in model_specs(arch, dtype=dtype, ema=ema, components=components, full=tuple(full))}
    for spec in extra:
        specs[spec.key] = spec
    fill = pattern_fill(seed or os.path.basename(os.fspath(path)), limit=limit)
    return write_safetensors_sample(os.fspath(path), list(specs.values()), dict(values or {}), fill=fill,
                                    metadata=dict(metadata) if metadata else None)


def torch_dtype(code: str) -> torch.dtype:
    return getattr(torch, DTYPES[code].torch)


def raw_bytes(t: torch.Tensor) -> bytes:
    """A tensor's bytes as stored (any dtype, any shape)."""
    flat = t.detach().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def digest(t: torch.Tensor) -> tuple[str, tuple[int, ...], str]:
    """(dtype, shape, sha256 of the bytes): what "hash-equal" compares."""
    return str(t.dtype).replace("torch.", ""), tuple(t.shape), hashlib.sha256(raw_bytes(t)).hexdigest()


def read_tensors(path: str | os.PathLike[str], keys: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a file (all, or ``keys``), read by the reference libraries (safetensors /
    torch.load; a pickle's ``state_dict`` unwrapped as the WebUI does)."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k) for k in (f.keys() if keys is None else keys)}
    obj = torch.load(path, map_location="cpu", weights_only=True)
    while isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    return dict(obj) if keys is None else {k: obj[k] for k in keys}


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    with safe_open(os.fspath(path), framework="pt") as f:
        return dict(f.metadata() or {})


def digests(path: str | os.PathLike[str], keys: Iterable[str] | None = None) -> dict[str, tuple]:
    """key -> :func:`digest` for every tensor of a file (or for ``keys``)."""
    return {k: digest(t) for k, t in read_tensors(path, keys).items()}


def with_prefix(prefix: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors with ``prefix`` put before every key."""
    return {prefix + k: t for k, t in tensors.items()}


def component_of(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix``, keyed without it."""
    return {k[len(prefix):]: t for k, t in tensors.items() if k.startswith(prefix)}


def planted(tensors: Mapping[str, torch.Tensor]) -> int:
    """How many tensors hold something other than zeros (so equality proves something)."""
    return sum(1 for t in tensors.values() if t.numel() and bool(torch.any(t.float() != 0)))




def names_arch(message: str, arch: str) -> bool:
    """Whether ``message`` names ``arch`` as a word (``SD1`` is not found inside ``SD1-inpaint``)."""
    return re.search(rf"(?<![\w-]){re.escape(arch)}(?![\w-])", message) is not None


def listing(folder: str | os.PathLike[str]) -> list[str]:
    """Every entry of a folder, hidden ones included (temporary files start with a dot)."""
    return sorted(os.listdir(folder))
