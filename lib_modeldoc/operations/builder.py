"""What every plan builder shares: the dtype rule, entries, provenance, and a plan that mounts parts.

``convert``, ``replace``, ``export`` and ``build`` (and the SD3 / Flux part files) decide output
dtypes and stamp their output the same way; the rules are written here once. :class:`PlanBuilder`
is the part of a plan over one model that ``convert`` and ``replace`` have in common: dropping
tensors, mounting a component from another file, the summary of changes and the metadata.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._version import __version__
from ..arch.families import Base
from ..arch.identify import Identification
from ..arch.parts import Part
from ..arch.precision import FP8_DTYPES, keeps_16bit_in_fp8, sixteen_bit_for
from ..dtypes import DTYPES
from ..errors import PlanError
from ..io.model import ModelFile
from ..io.tensor import TensorInfo
from ..report.advice import Note, Remedy
from ..report.messages import Counted, Phrase
from .plan import CAST, COPY, Drop, Entry, Plan

__all__ = ["Casting", "stored", "stamped", "PlanBuilder"]


@dataclass
class Casting:
    """The dtype rule of one plan: every float tensor to ``target`` (``None`` keeps its type).

    Integers are never cast and float64 is always narrowed to float32. When the target is fp8, norms,
    biases and embedders keep 16 bit in every output (they lose too much in fp8; ComfyUI and Forge
    fp8 checkpoints keep them too); ``kept_16bit`` counts them.
    """

    target: str | None
    kept_16bit: int = 0

    def dtype(self, dtype: str, key: str, shape: tuple[int, ...], *, keep: bool = False) -> str:
        """The dtype tensor ``key`` (stored as ``dtype``) is written in; ``keep``: as if the target were ``None``."""
        target = None if keep else self.target
        if not DTYPES[dtype].is_float:
            return dtype
        if target is None:
            return "F32" if dtype == "F64" else dtype
        if target in FP8_DTYPES and keeps_16bit_in_fp8(key, shape):
            self.kept_16bit += 1
            return dtype if dtype in ("F16", "BF16") or dtype in FP8_DTYPES else sixteen_bit_for(dtype)
        return target

    def kept_line(self) -> Note | None:
        """The change line saying how many tensors kept 16 bit in an fp8 output (``None``: none did)."""
        if not self.kept_16bit:
            return None
        return Note.worded("plan.kept_16bit", tensors=Counted("tensor", self.kept_16bit))


def stored(key: str, source: TensorInfo, dtype: str, **extra: object) -> Entry:
    """The entry that writes ``source`` at ``key`` as ``dtype``: a copy when the type is unchanged, else a cast."""
    return Entry(key, dtype, source.shape, CAST if dtype != source.dtype else COPY, source, **extra)  # type: ignore[arg-type]


def stamped(changes: list[str], source: str, *, carried: Mapping[str, str] | None = None,
            added: Mapping[str, str] | None = None) -> dict[str, str]:
    """Safetensors metadata of an output: ``carried`` (the source's), ``format=pt``, ``added``, then the
    ``modeldoc`` provenance (the version, the ``source`` file name and the plan's ``changes``)."""
    metadata = dict(carried or {})
    metadata["format"] = "pt"
    metadata.update(added or {})
    metadata["modeldoc"] = json.dumps({"version": __version__, "source": source, "changes": changes}, ensure_ascii=False)
    return metadata


class PlanBuilder:
    """A plan over one model, some of whose components are replaced by parts of other files.

    Subclasses add the model's own tensors; this drops the replaced ones (:attr:`replaced`), mounts
    the parts, and sums up.
    """

    def __init__(self, model: ModelFile, ident: Identification, casting: Casting, replacements: Iterable[str]) -> None:
        self.model = model
        self.ident = ident
        self.casting = casting
        self.sources: list[ModelFile] = [model]
        self.entries: list[Entry] = []
        self.dropped: list[Drop] = []
        self.changes: list[str] = []
        self.warnings: list[str] = []
        self.replaced: dict[str, str] = {}  # file key -> component being replaced
        for component in replacements:
            slot = ident.slot(component)
            if slot is None:
                raise PlanError(f"{model.path}: a {ident.architecture} has no {component} to replace")
            self.replaced.update(dict.fromkeys(slot.keys, component))

    def drop(self, key: str, reason: str) -> None:
        self.dropped.append(Drop(key, reason, self.model[key].nbytes))

    def drop_training_state(self) -> None:
        """Leave out what a .ckpt holds besides the weights (optimizer state ...)."""
        for key, info in self.model.stray_tensors.items():
            self.dropped.append(Drop(key, "training state", info.nbytes))

    def put(self, component: str, part: Part, *, keep: bool = False, verb: str = "") -> None:
        """Mount ``part``'s tensors where this model's family keeps ``component`` (its standard layout).

        ``keep``: leave their dtypes as they are; ``verb``: how the change line starts.
        """
        assert self.ident.family is not None
        slot = self.ident.family.slot(component)
        assert slot is not None  # checked in __init__
        mount = slot.mounts[0]
        origin = len(self.sources)
        self.sources.append(part.model)
        name = os.path.basename(part.model.path)
        for table_key, info in part.tensors.items():
            key = mount.key(table_key)
            dtype = self.casting.dtype(info.dtype, key, info.shape, keep=keep)
            self.entries.append(stored(key, info, dtype, origin=origin, renamed_from=info.key,
                                       note=f"{component} from {name}"))
        if verb:
            self.changes.append(f"{verb} from {name} ({part.architecture})")
        else:
            self.changes.append(Note.worded("plan.replaced", part=component, name=name, arch=part.architecture))

    def summarise(self, renamed: Iterable[str] = (), *, vae_keys: Iterable[str] = (),
                  vae_remedy: tuple[Remedy, ...] = ()) -> None:
        """Add the change lines (drops, ``renamed``, 16-bit keeps, casts) and the VAE precision warnings.

        The VAE is what was mounted from another file, plus ``vae_keys``.
        """
        reasons: dict[str, int] = {}
        for d in self.dropped:
            reasons[d.reason] = reasons.get(d.reason, 0) + d.nbytes
        for reason, size in reasons.items():
            if reason.endswith(" replaced"):
                continue  # said by the replacement's own line
            self.changes.append(Note.worded("plan.dropped", what=_reason(reason), size=f"{size / 1e6:.1f}"))
        self.changes.extend(renamed)
        kept = self.casting.kept_line()
        if kept:
            self.changes.append(kept)
        casts = {(e.source.dtype, e.dtype) for e in self.entries if e.action == CAST and e.source is not None}
        for src, dst in sorted(casts):
            self.changes.append(Note.worded("plan.cast", source=DTYPES[src].label, target=DTYPES[dst].label))
        vae = {e.key for e in self.entries if e.note.startswith("vae from ")} | set(vae_keys)
        vae_dtypes = {e.dtype for e in self.entries if e.key in vae}
        if vae_dtypes & {"F8_E4M3", "F8_E5M2"}:
            self.warnings.append(Note.worded("plan.vae_fp8", *vae_remedy))
        if "F16" in vae_dtypes and self.ident.family is not None and self.ident.family.base == Base.SDXL:
            self.warnings.append(Note.worded("plan.vae_sdxl_fp16", *vae_remedy))

    def plan(self, format: str, *, strip_metadata: bool = False, spec: Mapping[str, str] | None = None) -> Plan:
        """The plan, its safetensors metadata the source's plus ``spec`` and the provenance (``format=pt``
        only with ``strip_metadata``); a .ckpt has none."""
        metadata = None
        if format == "safetensors":
            if strip_metadata:
                metadata = {"format": "pt"}
            else:
                if spec:
                    self.changes.append("ModelSpec: " + ", ".join(f"{k}={v}" for k, v in spec.items()))
                metadata = stamped(self.changes, os.path.basename(self.model.path), carried=self.model.metadata,
                                   added=spec)
        elif self.model.metadata and not strip_metadata:
            self.warnings.append(Note.worded("plan.ckpt_no_metadata"))
        return Plan(self.sources, self.entries, self.dropped, metadata, format, self.warnings, self.changes)


# Drop reasons (``Drop.reason``) the catalogue words (``plan.reason.<reason>``); others are shown as they are.
_REASONS = {"ema": "ema", "junk": "junk", "unknown": "unknown", "training state": "training_state",
            "ema bookkeeping": "ema_bookkeeping", "UNet replaced by its EMA": "unet_by_ema"}


def _reason(reason: str) -> Any:
    """A drop reason as a phrase of the catalogue (``unet deleted`` -> ``plan.reason.deleted``)."""
    if reason in _REASONS:
        return Phrase(f"plan.reason.{_REASONS[reason]}")
    if reason.endswith(" deleted"):
        return Phrase("plan.reason.deleted", {"part": reason[: -len(" deleted")]})
    return reason
