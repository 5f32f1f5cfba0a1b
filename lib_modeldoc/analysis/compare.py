"""Compare two model files component by component and block by block, one tensor at a time.

Keys are matched by their component-relative name, so a full checkpoint compares with a
standalone component file, with another family's prefix (SDXL's CLIP-L against SD1's) or with
the old NAI CLIP layout. Tensors no component claims are matched by their plain key (``other``).
Both files are read key by key; memory holds a tensor of each file at most.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..arch.components import COMPONENTS
from ..arch.identify import Identification, identify_model
from ..dtypes import DTYPES
from ..io.model import ModelFile, open_model
from ..io.tensor import TensorInfo
from ..progress import Progress
from .fingerprint import component_tensors

__all__ = ["DiffStats", "ComponentDiff", "Comparison", "compare_models", "compare_open_models", "block_of", "OTHER"]

OTHER = "other"  # tensors no component claims, matched by their plain key
_CHUNK = 1 << 20  # elements per float64 step

# Block = the components table's rule's first group; else the key's first part (plus its index for
# unknown parts). Blocks are shown in the table's ``block_order``; unlisted names come last, alphabetically.
_BLOCK_RULES: Mapping[str, re.Pattern[str]] = {c.id: re.compile(c.blocks) for c in COMPONENTS if c.blocks}
_BLOCK_ORDER: Mapping[str, tuple[str, ...]] = {c.id: c.block_order for c in COMPONENTS if c.block_order}
_GENERIC = re.compile(r"^([^.]+(?:\.\d+(?=\.))?)")


def block_of(component: str, key: str) -> str:
    """The block a component-relative key belongs to (``input_blocks.4``, ``layers.11``, ``decoder``)."""
    rule = _BLOCK_RULES.get(component)
    if rule is None:
        match = _GENERIC.match(key)
        return match.group(1) if match else key
    match = rule.match(key)
    return match.group(1) if match else key.split(".")[0]


def _block_sort_key(component: str, block: str) -> tuple[int, tuple[Any, ...]]:
    order = _BLOCK_ORDER.get(component, ())
    base = block.split(".")[0]
    rank = order.index(base) if base in order else len(order)
    natural = tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", block))
    return rank, natural


@dataclass
class _Acc:
    keys: int = 0
    different: int = 0
    different_fp16: int = 0
    floats: int = 0  # keys that entered the cosine
    dot: float = 0.0
    aa: float = 0.0
    bb: float = 0.0
    dd: float = 0.0

    def add(self, other: _Acc) -> None:
        for name in ("keys", "different", "different_fp16", "floats", "dot", "aa", "bb", "dd"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def stats(self) -> DiffStats:
        cosine = relative = None
        if self.floats:
            if self.aa == 0 and self.bb == 0:
                cosine = 1.0
            elif self.aa == 0 or self.bb == 0:
                cosine = 0.0
            else:
                cosine = self.dot / math.sqrt(self.aa * self.bb)
            if self.aa > 0:
                relative = math.sqrt(self.dd / self.aa)
            else:
                relative = 0.0 if self.dd == 0 else math.inf
        return DiffStats(self.keys, self.different, self.different_fp16, _finite(cosine), _finite(relative))


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


@dataclass(frozen=True)
class DiffStats:
    """How a set of tensors of A differs from the same tensors of B.

    Attributes:
        keys_compared: keys present in both.
        keys_different: keys whose values differ at all (different shapes included).
        keys_different_fp16: keys that still differ once both are rounded to fp16.
        cosine: cosine similarity of all their float values as one vector (``None`` when no
            float tensor was compared or values are not finite).
        relative_difference: ``||A - B|| / ||A||`` over the same vector.
    """

    keys_compared: int
    keys_different: int
    keys_different_fp16: int
    cosine: float | None
    relative_difference: float | None

    @property
    def identical(self) -> bool:
        return self.keys_different == 0

    @property
    def cosine_text(self) -> str:
        """The cosine for people: ``-`` when none, ``1-3.2e-08`` when it rounds to 1 but differs."""
        c = self.cosine
        if c is None:
            return "-"
        return f"1-{max(1 - c, 0.0):.1e}" if not self.identical and c > 0.999999 else f"{c:.6f}"

    @property
    def relative_text(self) -> str:
        """The relative difference for people: ``-`` when none, ``0``, or ``1.23e-04``."""
        r = self.relative_difference
        return "-" if r is None else ("0" if r == 0 else f"{r:.2e}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "identical_fp16": self.keys_different_fp16 == 0,
            "cosine": self.cosine,
            "relative_difference": self.relative_difference,
            "keys_compared": self.keys_compared,
            "keys_different": self.keys_different,
            "keys_different_fp16": self.keys_different_fp16,
        }


@dataclass(frozen=True)
class ComponentDiff:
    """One component present in both files."""

    name: str
    stats: DiffStats
    missing_in_a: int  # keys of this component only B has
    missing_in_b: int
    shape_mismatch: tuple[str, ...]
    blocks: tuple[tuple[str, DiffStats], ...]

    @property
    def identical(self) -> bool:
        """Same keys and the same values (storage precision aside: an fp32 copy of fp16 values is identical)."""
        return self.stats.identical and not self.missing_in_a and not self.missing_in_b

    @property
    def verdict(self) -> str:
        """``identical``, ``same at fp16`` (differs only below fp16 precision) or ``different``.

        When the shared keys hold the same values and the part differs only because one file has keys
        the other lacks, it says that instead: ``same values, 2 keys only in A`` (a bare "different"
        beside cosine 1 and 0 keys different reads as a contradiction).
        """
        if self.identical:
            return "identical"
        if self.stats.keys_different_fp16:
            return "different"
        values = "same values" if self.stats.keys_different == 0 else "same at fp16"
        only = [f"{n} key{'s' * (n != 1)} only in {side}" for n, side in ((self.missing_in_b, "A"), (self.missing_in_a, "B"))
                if n]
        return ", ".join([values, *only]) if only else values

    def to_dict(self) -> dict[str, Any]:
        out = self.stats.to_dict()
        out["identical"] = self.identical
        out["identical_fp16"] = out["identical_fp16"] and not self.missing_in_a and not self.missing_in_b
        out.update(missing_in_a=self.missing_in_a, missing_in_b=self.missing_in_b,
                   shape_mismatch=list(self.shape_mismatch),
                   blocks={name: stats.to_dict() for name, stats in self.blocks})
        return out


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare_models`."""

    a: str
    b: str
    a_architecture: str
    b_architecture: str
    components: dict[str, ComponentDiff]
    only_in_a: tuple[str, ...] = ()  # components B lacks
    only_in_b: tuple[str, ...] = ()
    missing_in_a: tuple[str, ...] = ()  # B's keys with no counterpart in A
    missing_in_b: tuple[str, ...] = ()  # A's keys with no counterpart in B
    bytes_compared: int = field(default=0, compare=False)

    @property
    def identical(self) -> bool:
        return (all(c.identical for c in self.components.values()) and not self.only_in_a
                and not self.only_in_b and not self.missing_in_a and not self.missing_in_b)

    def to_dict(self) -> dict[str, Any]:
        """The CLI contract's JSON shape, plus per-block detail under each component."""
        return {
            "a": {"path": self.a, "architecture": self.a_architecture},
            "b": {"path": self.b, "architecture": self.b_architecture},
            "identical": self.identical,
            "components": {name: c.to_dict() for name, c in self.components.items()},
            "only_in_a": list(self.only_in_a),
            "only_in_b": list(self.only_in_b),
            "missing_in_a": list(self.missing_in_a),
            "missing_in_b": list(self.missing_in_b),
        }


def _groups(model: ModelFile, ident: Identification) -> dict[str, dict[str, tuple[str, TensorInfo]]]:
    """component -> relative key -> (file key, tensor); unclaimed tensors under ``other``."""
    groups: dict[str, dict[str, tuple[str, TensorInfo]]] = {}
    claimed: set[str] = set()
    for name, tensors in component_tensors(model, ident).items():
        groups[name] = {rel: (info.key, info) for rel, info in tensors.items()}
        claimed.update(info.key for info in tensors.values())
    other = {k: (k, info) for k, info in model.items() if k not in claimed}
    if other:
        groups[OTHER] = other
    return groups


def _compare_tensor(a: ModelFile, ia: TensorInfo, b: ModelFile, ib: TensorInfo) -> _Acc:
    acc = _Acc(keys=1)
    if ia.shape != ib.shape:
        acc.different = acc.different_fp16 = 1
        return acc
    va, vb = a.read(ia).reshape(-1), b.read(ib).reshape(-1)
    floats = DTYPES[ia.dtype].is_float and DTYPES[ib.dtype].is_float
    if not floats:
        equal = bool(np.array_equal(va.astype(np.float64), vb.astype(np.float64), equal_nan=True))
        acc.different = acc.different_fp16 = int(not equal)
        return acc
    acc.floats = 1
    same_bits = va.dtype == vb.dtype and np.array_equal(va.view(np.uint8), vb.view(np.uint8))
    both_fp16 = ia.dtype == ib.dtype == "F16"
    equal = equal16 = True
    for start in range(0, va.size, _CHUNK):
        x = va[start:start + _CHUNK].astype(np.float64)
        if same_bits:
            acc.aa += float(x @ x)
            continue
        y = vb[start:start + _CHUNK].astype(np.float64)
        d = x - y
        aa, bb, dd = float(x @ x), float(y @ y), float(d @ d)
        acc.aa += aa
        acc.bb += bb
        acc.dd += dd
        acc.dot += (aa + bb - dd) / 2  # = x @ y, one pass fewer
        if equal and dd != 0:  # NaN in both at the same place still counts as equal
            equal = math.isnan(dd) and bool(np.array_equal(x, y, equal_nan=True))
        if not equal and equal16 and not both_fp16:
            equal16 = bool(np.array_equal(va[start:start + _CHUNK].astype("<f2"), vb[start:start + _CHUNK].astype("<f2")))
    if same_bits:
        acc.dot = acc.bb = acc.aa
    if both_fp16:
        equal16 = equal
    acc.different = int(not equal)
    acc.different_fp16 = int(not equal16)
    return acc


def compare_open_models(a: ModelFile, b: ModelFile, *, progress: Progress | None = None) -> Comparison:
    """:func:`compare_models` for two files already opened with :func:`~lib_modeldoc.open_model`."""
    ida = identify_model(a)
    idb = identify_model(b)
    ga, gb = _groups(a, ida), _groups(b, idb)
    total = sum(info.nbytes for name, g in ga.items() if name in gb for rel, (_, info) in g.items() if rel in gb[name])
    done = 0
    components: dict[str, ComponentDiff] = {}
    missing_in_a: list[str] = []
    missing_in_b: list[str] = []
    for name, group_a in ga.items():
        group_b = gb.get(name)
        if group_b is None:
            missing_in_b.extend(key for key, _ in group_a.values())
            continue
        whole = _Acc()
        blocks: dict[str, _Acc] = {}
        mismatch = []
        common = sorted((rel for rel in group_a if rel in group_b), key=lambda r: group_a[r][1].data_offset)
        for rel in common:
            key_a, ia = group_a[rel]
            _, ib = group_b[rel]
            acc = _compare_tensor(a, ia, b, ib)
            if ia.shape != ib.shape:
                mismatch.append(key_a)
            whole.add(acc)
            blocks.setdefault(block_of(name, rel), _Acc()).add(acc)
            done += ia.nbytes
            if progress is not None:
                progress(done, total, f"comparing {name}")
        only_a = [key for rel, (key, _) in group_a.items() if rel not in group_b]
        only_b = [key for rel, (key, _) in group_b.items() if rel not in group_a]
        missing_in_b.extend(only_a)
        missing_in_a.extend(only_b)
        ordered = sorted(blocks, key=lambda blk: _block_sort_key(name, blk))
        components[name] = ComponentDiff(
            name, whole.stats(), len(only_b), len(only_a), tuple(mismatch),
            tuple((blk, blocks[blk].stats()) for blk in ordered),
        )
    for name, group_b in gb.items():
        if name not in ga:
            missing_in_a.extend(key for key, _ in group_b.values())
    return Comparison(
        a.path, b.path, ida.architecture, idb.architecture, components,
        tuple(n for n in ga if n not in gb and n != OTHER), tuple(n for n in gb if n not in ga and n != OTHER),
        tuple(missing_in_a), tuple(missing_in_b), total,
    )


def compare_models(
    a: str | os.PathLike[str], b: str | os.PathLike[str], *, progress: Progress | None = None
) -> Comparison:
    """Compare two model files: per component and per block, identical or not, how close.

    Args:
        a, b: any two supported model files (checkpoints or component files, any layout).
        progress: ``progress(done_bytes, total_bytes, message)``.

    Returns:
        A :class:`Comparison`; ``to_dict()`` gives the CLI contract's JSON.

    Raises:
        ModelReadError: either file cannot be read (one-line message naming it).

    Example:
        >>> result = compare_models("merge.safetensors", "base.safetensors")
        >>> result.components["vae"].identical
        True
    """
    with open_model(a) as model_a, open_model(b) as model_b:
        return compare_open_models(model_a, model_b, progress=progress)
