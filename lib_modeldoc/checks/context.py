"""What every check sees: the open model, its identification and the key layout."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..arch.families import ComponentId
from ..arch.identify import Identification
from ..arch.layout import EMA, JUNK, UNKNOWN, Layout
from ..io.model import ModelFile
from ..io.plain_values import read_plain, wrong_positions
from ..report.data import PositionIds

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CheckContext", "POSITION_IDS", "CLIP_LENGTH"]

POSITION_IDS = "embeddings.position_ids"  # in the clip_l table
CLIP_LENGTH = 77


@dataclass
class CheckContext:
    """The model under inspection and the analyses checks share (each computed once)."""

    model: ModelFile
    ident: Identification
    layout: Layout

    def nbytes(self, keys: list[str] | tuple[str, ...]) -> int:
        return sum(self.model[k].nbytes for k in keys)

    @functools.cached_property
    def junk_keys(self) -> list[str]:
        return self.layout.keys(JUNK)

    @functools.cached_property
    def stray_bytes(self) -> int:
        return sum(t.nbytes for t in self.model.stray_tensors.values())

    @functools.cached_property
    def ema_keys(self) -> list[str]:
        return self.layout.keys(EMA)

    @functools.cached_property
    def adapter(self):
        """A LoRA's or an embedding's summary (:mod:`lib_modeldoc.arch.networks`), else ``None``."""
        if self.ident.architecture not in ("LoRA", "Embedding"):
            return None  # before the import: checkpoints never need the network tables
        from ..arch.networks import summarise_embedding, summarise_network

        shapes = {k: info.shape for k, info in self.model.items()}
        if self.ident.architecture == "LoRA":
            return summarise_network(shapes, self._scalar, self.model.metadata)
        if self.ident.architecture == "Embedding":
            return summarise_embedding(shapes, self.model.metadata)
        return None

    def _scalar(self, key: str) -> float | None:
        info = self.model[key]
        if info.numel != 1 or not info.is_float:
            return None
        value = float(self.model.read(info).reshape(-1)[0])
        return round(value, 6) if value == value else None

    @functools.cached_property
    def unknown_keys(self) -> list[str]:
        """Tensors no table of the identified family claims and no junk group names: kept.

        Empty for a file recognised by key pattern only (LoRA, Flux ...): there no table claims anything."""
        return self.layout.keys(UNKNOWN) if self.ident.family is not None else []

    @functools.cached_property
    def junk_groups(self) -> list[tuple[str, int, int]]:
        """Junk grouped by its leading key segments: ``(pattern, keys, bytes)``, biggest first.

        :attr:`junk_group_names` gives each pattern's named junk group."""
        counts: Counter[str] = Counter()
        sizes: Counter[str] = Counter()
        for key in self.junk_keys:
            group = _group_of(key)
            counts[group] += 1
            sizes[group] += self.model[key].nbytes
        for key, info in self.model.stray_tensors.items():
            group = key.split(".", 1)[0] + ".* (outside state_dict)"
            counts[group] += 1
            sizes[group] += info.nbytes
        return sorted(((g, counts[g], sizes[g]) for g in counts), key=lambda t: -t[2])

    @functools.cached_property
    def junk_group_names(self) -> dict[str, str]:
        """Junk pattern -> the named junk group it belongs to (``embedding_manager``, ``LoRA leftovers`` ...)."""
        names = {_group_of(k): self.layout.junk_groups.get(k, "junk") for k in self.junk_keys}
        names.update({k.split(".", 1)[0] + ".* (outside state_dict)": "training state" for k in self.model.stray_tensors})
        return names

    @functools.cached_property
    def unknown_groups(self) -> list[tuple[str, int, int]]:
        """Unknown tensors grouped by their leading key segments: ``(pattern, keys, bytes)``, biggest first."""
        counts: Counter[str] = Counter()
        sizes: Counter[str] = Counter()
        for key in self.unknown_keys:
            group = _group_of(key)
            counts[group] += 1
            sizes[group] += self.model[key].nbytes
        return sorted(((g, counts[g], sizes[g]) for g in counts), key=lambda t: -t[2])

    @functools.cached_property
    def position_ids(self) -> list[PositionIds]:
        """Every CLIP-L position_ids tensor, read the way the WebUI reads it (as int64)."""
        found = []
        for slot in self.ident.slots:
            if slot.component != ComponentId.CLIP_L or not slot.present:
                continue
            key = slot.mount.key(POSITION_IDS)
            if key not in self.model:
                continue
            info = self.model[key]
            values = read_plain(self.model, info)  # 77 numbers: struct, not numpy
            wrong = wrong_positions(values)
            if len(values) != CLIP_LENGTH:
                wrong = wrong or tuple(range(len(values), CLIP_LENGTH))
            found.append(PositionIds(key, info.dtype, wrong, tuple(float(values[i]) for i in wrong if i < len(values))))
        return found


def _as_webui_int64(values: np.ndarray) -> np.ndarray:
    """What ``tensor.to(torch.int64)`` gives: floats truncated toward zero."""
    import numpy as np

    if values.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            return np.trunc(np.nan_to_num(values.astype(np.float64), nan=-1.0)).astype(np.int64)
    return values.astype(np.int64)


def _group_of(key: str) -> str:
    parts = key.split(".")
    if parts[0].startswith(("lora_", "lyco_")):
        return parts[0].split("_")[0] + "_" + parts[0].split("_")[1] + "_*"
    depth = 2 if len(parts) > 2 and parts[0] in ("model", "cond_stage_model", "conditioner", "text_encoders") else 1
    if parts[0] == "model" and len(parts) > 3:
        depth = 3  # model.diffusion_model.<block>
    return ".".join(parts[:depth]) + ".*" if len(parts) > depth else key
