"""Synthetic models with real keys and shapes, for the demo, the tests and the benchmark.

Tensors are taken from the architecture tables. A sample written *sparse* stores only the few
tensors whose values matter (position_ids); the rest of the file is a hole the filesystem does
not allocate, so a real-size 4 GB sample costs a few kilobytes of disk.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .arch.families import family
from .arch.tables import table
from .dtypes import DTYPES
from .io.atomic import atomic_output
from .io.safetensors_write import OutTensor, build_header

__all__ = ["Spec", "family_specs", "write_safetensors_sample", "write_demo_sample", "broken_position_ids"]


@dataclass(frozen=True)
class Spec:
    """A tensor to synthesise."""

    key: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype].itemsize


def family_specs(arch: str, *, dtype: str = "F16", ema: bool = False, components: Iterable[str] | None = None) -> list[Spec]:
    """Every tensor of a family's components at their checkpoint keys (floats in ``dtype``)."""
    fam = family(arch)
    wanted = set(components) if components is not None else None
    specs = []
    for slot in fam.slots:
        if slot.component == "ema_unet" and not ema:
            continue
        if wanted is not None and slot.component not in wanted:
            continue
        tab = table(slot.tables[0])
        mount = slot.mounts[0]
        for key, shape in tab.shapes.items():
            code = "I64" if key.endswith("position_ids") else dtype
            specs.append(Spec(mount.key(key), code, tuple(abs(d) for d in shape)))
    return specs


def broken_position_ids(wrong: dict[int, float] | None = None) -> np.ndarray:
    """position_ids as a float merge leaves them: 0..76 in float32 with a few values just under."""
    values = np.arange(77, dtype=np.float32).reshape(1, 77)
    for index, value in (wrong if wrong is not None else {76: 75.9975, 41: 40.9999}).items():
        values[0, index] = value
    return values


def write_safetensors_sample(
    path: str,
    specs: list[Spec],
    values: dict[str, np.ndarray] | None = None,
    fill: Callable[[Spec], bytes] | None = None,
    metadata: dict[str, str] | None = None,
) -> str:
    """Write ``specs`` as a safetensors file.

    ``values`` gives exact arrays for some keys; every other tensor is ``fill(spec)`` or, with
    no ``fill``, left as a sparse hole of zeros.
    """
    values = values or {}
    out = [OutTensor(s.key, s.dtype, s.shape) for s in specs]
    header = build_header(out, metadata)
    total = len(header) + sum(s.nbytes for s in specs)
    with atomic_output(path) as f:
        f.write(header)
        offset = len(header)
        for spec in specs:
            if spec.key in values:
                data = np.ascontiguousarray(values[spec.key]).tobytes()
            elif fill is not None:
                data = fill(spec)
            else:
                data = b""
            if data:
                if len(data) != spec.nbytes:
                    raise ValueError(f"{spec.key}: {len(data)} bytes given, {spec.nbytes} needed")
                f.seek(offset)
                f.write(data)
            offset += spec.nbytes
        f.truncate(total)
    return path


def write_demo_sample(folder: str) -> str:
    """The demo's damaged merge: an SD1 checkpoint (real size, sparse) with the usual problems.

    fp32 weights, an EMA copy, an ``embedding_manager`` copy of CLIP, float64 leftovers and
    position_ids merged into floats (index 76 at 75.9975, index 41 at 40.9999).
    """
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "damaged-merge-sd15.safetensors")
    specs = family_specs("SD1", dtype="F32", ema=True)
    pos_key = "cond_stage_model.transformer.text_model.embeddings.position_ids"
    specs = [Spec(s.key, "F32", s.shape) if s.key == pos_key else s for s in specs]
    specs += [Spec(f"embedding_manager.embedder.transformer.text_model.{k}", "F32", tuple(v))
              for k, v in table("clip_l").shapes.items() if not k.endswith("position_ids")]
    specs += [Spec("model_ema.decay", "F32", ()), Spec("model_ema.num_updates", "I32", ())]
    specs += [Spec("alphas_cumprod", "F64", (1000,)), Spec("betas", "F64", (1000,))]
    metadata = {
        "format": "pt",
        "sd_merge_recipe": '{"type": "webui", "interp_method": "Add difference", "multiplier": 1.0}',
    }
    return write_safetensors_sample(path, specs, {pos_key: broken_position_ids()}, metadata=metadata)

