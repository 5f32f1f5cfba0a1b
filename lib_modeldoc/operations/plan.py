"""A plan: what an edit does to every tensor, decided from headers before anything is written.

Builders (``convert``, ``components``) produce a :class:`Plan`; :mod:`lib_modeldoc.operations.writer`
carries it out. A dry run is just the plan rendered.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..dtypes import DTYPES
from ..errors import PlanError
from ..io.model import ModelFile, ModelFormat
from ..io.safetensors_write import OutTensor, build_header, header_size
from ..io.tensor import TensorInfo
from ..report.advice import count
from ..report.units import human_bytes
from ..strenum import StrEnum

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Action", "Entry", "Drop", "Plan"]


class Action(StrEnum):
    """Where an output tensor's bytes come from."""

    COPY = "copy"  # the input's bytes as they are
    CAST = "cast"  # the input's values in another dtype
    FIX = "fix"  # written from a corrected value
    SYNTHESIZE = "synthesize"  # written from a value the input lacks


# Short names for the builders, which write them on almost every line.
COPY, CAST, FIX, SYNTH = Action.COPY, Action.CAST, Action.FIX, Action.SYNTHESIZE

# Storage types AUTOMATIC1111's restricted unpickler (modules/safe.py) lets a .ckpt use.
A1111_CKPT_DTYPES = frozenset({"fp32", "fp16", "bf16", "fp64", "int64", "int32", "uint8"})


@dataclass(frozen=True)
class Entry:
    """One output tensor and where it comes from.

    Attributes:
        key: the output key.
        dtype: the output dtype code.
        shape: the output shape.
        action: :attr:`Action.COPY` (bytes as they are), :attr:`Action.CAST` (to ``dtype``),
            :attr:`Action.FIX` or :attr:`Action.SYNTHESIZE` (written from ``value``).
        source: the input tensor, ``None`` when written from ``value``.
        origin: index into :attr:`Plan.sources`.
        value: the values to write for ``fix``/``synthesize``.
        renamed_from: the input key when it differs from ``key``.
        note: why, for the plan's reader.
    """

    key: str
    dtype: str
    shape: tuple[int, ...]
    action: Action
    source: TensorInfo | None = None
    origin: int = 0
    value: np.ndarray | None = None
    renamed_from: str | None = None
    note: str = ""

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype].itemsize


@dataclass(frozen=True)
class Drop:
    """An input tensor left out, and why (``junk``, ``ema``, ``delete vae`` ...)."""

    key: str
    reason: str
    nbytes: int


@dataclass
class Plan:
    """Everything an edit will write, in output order."""

    sources: list[ModelFile]
    entries: list[Entry]
    dropped: list[Drop] = field(default_factory=list)
    metadata: dict[str, str] | None = None
    format: ModelFormat = ModelFormat.SAFETENSORS  # of the output: safetensors or ckpt
    warnings: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # one line each, also stored as provenance

    def __post_init__(self) -> None:
        self.format = ModelFormat(self.format)  # builders pass the option string on
        seen: set[str] = set()
        for entry in self.entries:
            if entry.key in seen:
                raise PlanError(f"two tensors would be written as '{entry.key}'")
            seen.add(entry.key)
        if self.format == ModelFormat.CKPT:
            refused = sorted({DTYPES[e.dtype].label for e in self.entries} - A1111_CKPT_DTYPES)
            if refused:
                self.warnings.append(
                    f"AUTOMATIC1111's safe loader refuses {', '.join(refused)} tensors in a .ckpt; prefer .safetensors"
                )

    @property
    def source(self) -> ModelFile:
        return self.sources[0]

    @property
    def data_bytes(self) -> int:
        return sum(e.nbytes for e in self.entries)

    def header(self) -> bytes:
        """The exact safetensors header this plan writes."""
        return build_header([OutTensor(e.key, e.dtype, e.shape) for e in self.entries], self.metadata)

    @property
    def output_size(self) -> int:
        """Bytes of the output file (exact for safetensors; within a few KB for .ckpt)."""
        if self.format == ModelFormat.SAFETENSORS:
            return header_size(self.entries, self.metadata) + self.data_bytes
        # zip: per record a local header, 64-byte alignment, data descriptor and central entry.
        return self.data_bytes + len(self.entries) * (64 + 180) + 1024 + 120 * len(self.entries)

    def counts(self) -> dict[str, int]:
        return dict(Counter(e.action for e in self.entries))

    def to_dict(self) -> dict[str, Any]:
        dropped: Counter[str] = Counter()
        dropped_bytes: Counter[str] = Counter()
        for d in self.dropped:
            dropped[d.reason] += 1
            dropped_bytes[d.reason] += d.nbytes
        casts: Counter[str] = Counter()
        for e in self.entries:
            if e.action == CAST and e.source is not None:
                casts[f"{DTYPES[e.source.dtype].label} -> {DTYPES[e.dtype].label}"] += 1
        return {
            "source": self.source.path,
            "source_size_bytes": self.source.size,
            "format": self.format,
            "size_bytes": self.output_size,
            "keys": len(self.entries),
            "actions": self.counts(),
            "casts": dict(casts),
            "dropped": {r: {"keys": dropped[r], "bytes": dropped_bytes[r]} for r in dropped},
            "renamed": sum(1 for e in self.entries if e.renamed_from),
            "changes": list(self.changes),
            "warnings": list(self.warnings),
        }

    def describe(self, say: Callable[[str], str] = str) -> str:
        """The plan for people (what ``--dry-run`` prints); ``say`` words notes' remedies for the front end."""
        info = self.to_dict()
        lines = [
            f"Plan for {self.source.path}",
            f"  {human_bytes(self.source.size)} -> {human_bytes(self.output_size)} ({self.format}, {count(len(self.entries), 'tensor')})",
        ]
        lines += [f"  - {say(c)}" for c in self.changes]
        for reason, d in info["dropped"].items():
            lines.append(f"  drop {reason}: {count(d['keys'], 'tensor')}, {human_bytes(d['bytes'])}")
        for change, n in info["casts"].items():
            lines.append(f"  cast {change}: {count(n, 'tensor')}")
        kept = info["actions"].get(COPY, 0)
        if kept:
            lines.append(f"  copy unchanged: {count(kept, 'tensor')}")
        lines += [f"  warning: {say(w)}" for w in self.warnings]
        return "\n".join(lines)
