"""Identify a model from its keys and shapes, keeping the evidence.

Every family is scored against the file: per component slot, the best (table, mount) pair by
keys found with the right shape. The best family wins even with a few keys missing or extra:
a damaged SDXL file is "SDXL, with findings", never "unknown". Nothing here reads tensor data.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import re
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .families import FAMILIES, SIGNATURES, ComponentId, Family, Mount, Signature, Slot, Variant
from .tables import Table, shape_matches, table

if TYPE_CHECKING:
    from ..io.tensor import TensorInfo

__all__ = ["SlotMatch", "Candidate", "Identification", "identify", "identify_model", "known_architectures"]

# A family is recognised when one of its required components is at least this complete.
MIN_COMPONENT_SHARE = 0.5


@dataclass(frozen=True)
class SlotMatch:
    """How one component slot of a family matched the file."""

    component: ComponentId
    table: str
    mount: Mount
    required: bool
    expected: int  # required keys of the table
    matched: tuple[str, ...]  # file keys present with the right shape
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]  # (key, found, expected)
    # The required keys the file lacks; None when it has none of the table's keys (then all are
    # missing, and they are laid out only if asked for: most tables a file is scored against are absent).
    some_missing: tuple[str, ...] | None
    definition: Table = field(repr=False, compare=False)  # the table ``table`` names, as it was matched

    @property
    def missing(self) -> tuple[str, ...]:
        """File keys the table requires but the file lacks."""
        if self.some_missing is not None:
            return self.some_missing
        return _laid_out(self.definition, self.mount).required

    @property
    def missing_count(self) -> int:
        """``len(missing)``, without laying out the keys of an absent table."""
        return self.expected if self.some_missing is None else len(self.some_missing)

    @property
    def present(self) -> bool:
        return bool(self.matched or self.mismatched)

    @property
    def complete(self) -> bool:
        return self.present and not self.missing and not self.mismatched

    @property
    def keys(self) -> tuple[str, ...]:
        """Every file key this slot claims."""
        return self.matched + tuple(k for k, _, _ in self.mismatched)

    @property
    def share(self) -> float:
        return len(self.matched) / self.expected if self.expected else 0.0

    def table_key(self, file_key: str) -> str | None:
        """The table key a file key of this slot stands for (EMA keys have lost their dots)."""
        if not file_key.startswith(self.mount.prefix):
            return None
        rest = file_key[len(self.mount.prefix):]
        if not self.mount.ema:
            return rest if rest in self.definition.shapes else None
        return _ema_index(self.definition).get(rest)


@dataclass(frozen=True)
class Candidate:
    """A family considered, with its score (matched minus mismatched keys)."""

    name: str
    score: int
    matched: int
    missing: int
    mismatched: int


@dataclass(frozen=True)
class Identification:
    """What a file is, and why we think so.

    Attributes:
        architecture: a contract id (``SD1``, ``SDXL``, ``VAE`` ... or ``unknown``).
        family: the matched :class:`Family`, ``None`` for signatures and unknown files.
        slots: how each component slot of that family matched (present or not).
        candidates: the best-scoring families, best first.
        evidence: short human-readable reasons.
        label: a human name for the architecture.
    """

    architecture: str
    family: Family | None
    slots: tuple[SlotMatch, ...]
    candidates: tuple[Candidate, ...]
    evidence: tuple[str, ...]
    label: str
    parts: tuple[tuple[ComponentId, str], ...] = ()  # signature families: (component, key prefix) of their parts

    @property
    def identified(self) -> bool:
        return self.architecture != "unknown"

    @property
    def prunable(self) -> bool:
        """Whether "not claimed by any table" may be read as junk (a table family was matched)."""
        return self.family is not None

    def slot(self, component: str) -> SlotMatch | None:
        return next((s for s in self.slots if s.component == component), None)

    def claimed(self) -> set[str]:
        """File keys that belong to a component of the identified family."""
        return {k for s in self.slots for k in s.keys}

    def component_keys(self) -> dict[str, tuple[str, ...]]:
        return {s.component: s.keys for s in self.slots if s.present}


class _Derived:
    """What identification computes once from one table: its layouts by mount, its EMA key index."""

    def __init__(self, tab: Table) -> None:
        self.layouts: dict[Mount, _Laid] = {}
        self.required_count = len(tab.shapes) - sum(1 for k in tab.optional if k in tab.shapes)
        self.ema_index: dict[str, str] | None = None


# Keyed by the table object, so a table made for one run (a test's toy) goes with it.
_DERIVED: weakref.WeakKeyDictionary[Table, _Derived] = weakref.WeakKeyDictionary()


def _derived(tab: Table) -> _Derived:
    found = _DERIVED.get(tab)
    if found is None:
        found = _DERIVED[tab] = _Derived(tab)
    return found


def _ema_index(tab: Table) -> dict[str, str]:
    derived = _derived(tab)
    if derived.ema_index is None:
        derived.ema_index = {k.replace(".", ""): k for k in tab.shapes}
    return derived.ema_index


def _match_slot(slot: Slot, tables: Callable[[str], Table], shapes: Mapping[str, tuple[int, ...]],
                present: frozenset[str], cache: dict) -> SlotMatch:
    best: SlotMatch | None = None
    for table_id in slot.tables:
        for mount in slot.mounts:
            key = (table_id, mount, slot.component, slot.required)
            found = cache.get(key)
            if found is None:
                found = cache[key] = _match(slot, tables(table_id), mount, shapes, present, cache)
            # Ties go to the table the file completes (WD 1.4's CLIP-H is a subset of CLIP-H).
            if best is None or (len(found.matched), -len(found.mismatched), -found.missing_count) > (
                len(best.matched), -len(best.mismatched), -best.missing_count
            ):
                best = found
    assert best is not None
    return best


@dataclass(frozen=True)
class _Laid:
    """A table mounted at one place: its file keys in table order, computed once per process."""

    keys: tuple[str, ...]
    expected: tuple[tuple[int, ...], ...]  # the table shape of each key, in the same order
    required: tuple[str, ...]


def _laid_out(tab: Table, mount: Mount) -> _Laid:
    layouts = _derived(tab).layouts
    laid = layouts.get(mount)
    if laid is None:
        keys = mount.keys(tab.shapes)  # once per key: ~60 layouts of ~700 keys at each start-up
        optional = tab.optional
        required = tuple(fk for fk, k in zip(keys, tab.shapes) if k not in optional) if optional else keys
        laid = layouts[mount] = _Laid(keys, tuple(tab.shapes.values()), required)
    return laid


def _prefix_present(prefix: str, present_keys: frozenset[str], cache: dict) -> bool:
    """Whether any file key starts with ``prefix`` (else no key of a table mounted there can be present)."""
    found = cache.get(("prefix", prefix))
    if found is None:
        ordered = cache.get("sorted")
        if ordered is None:  # once per file: then each prefix is one bisection, not a pass over every key
            ordered = cache["sorted"] = sorted(present_keys)
        at = bisect.bisect_left(ordered, prefix)
        found = cache["prefix", prefix] = at < len(ordered) and ordered[at].startswith(prefix)
    return found


def _match(slot: Slot, tab: Table, mount: Mount, shapes: Mapping[str, tuple[int, ...]], present_keys: frozenset[str],
           cache: dict) -> SlotMatch:
    matched, mismatched = [], []
    if _prefix_present(mount.prefix, present_keys, cache):
        laid = _laid_out(tab, mount)
        for file_key, expected in zip(laid.keys, laid.expected):
            if file_key in present_keys:
                found = shapes[file_key]
                # only LoRA tables hold -1 (any size): elsewhere a different shape is a mismatch
                if expected == found or (-1 in expected and shape_matches(expected, found)):
                    matched.append(file_key)
                else:
                    mismatched.append((file_key, found, expected))
    missing = tuple(k for k in laid.required if k not in present_keys) if matched or mismatched else None
    return SlotMatch(
        slot.component, tab.id, mount, slot.required, _derived(tab).required_count,
        tuple(matched), tuple(mismatched), missing, tab,
    )


@functools.lru_cache(maxsize=None)
def _signature_pattern(signature: Signature) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in signature.patterns))


def _signature_share(signature: Signature, keys: Iterable[str]) -> float:
    """The share of ``keys`` matching the signature's patterns; 0.0 as soon as it cannot reach ``min_share``."""
    search = _signature_pattern(signature).search
    keys = list(keys)
    total, floor = len(keys), signature.min_share
    hits = misses = 0
    for k in keys:
        if search(k):
            hits += 1
        else:
            misses += 1
            # Most files match no signature: stop once even a hit on every key left falls short.
            if total == misses or (total - misses) / total < floor:
                return 0.0
    return hits / len(keys) if keys and hits else 0.0


def _variant(signature: Signature, shapes: Mapping[str, tuple[int, ...]]) -> Variant | None:
    for variant in signature.variants:
        pattern = re.compile(variant.key)
        key = next((k for k in shapes if pattern.search(k)), None)
        if key is None:
            continue
        shape = shapes[key]
        if variant.dim is None or (len(shape) > variant.dim and shape[variant.dim] == variant.size):
            return variant
    return None


@dataclass(frozen=True, eq=False)
class _Known:
    families: Sequence[Family]
    tables: Callable[[str], Table]


_KNOWN: list[_Known] = [_Known(FAMILIES, table)]  # a stack: known_architectures() pushes onto it


@contextlib.contextmanager
def known_architectures(families: Sequence[Family], tables: Callable[[str], Table]) -> Iterator[None]:
    """Within the block, :func:`identify` (and so every command of the engine) knows only ``families``,
    with their tables from ``tables`` (table id -> :class:`~lib_modeldoc.arch.tables.Table`).

    For tests that run the engine on tiny stand-in architectures. It holds for the whole process,
    not one thread: the WebUI and ``serve`` run the engine in worker threads.
    """
    known = _Known(tuple(families), tables)
    _KNOWN.append(known)
    try:
        yield
    finally:
        del _KNOWN[next(i for i, k in enumerate(_KNOWN) if k is known)]


def identify(shapes: Mapping[str, tuple[int, ...]], *, families: Sequence[Family] | None = None,
             tables: Callable[[str], Table] | None = None) -> Identification:
    """Identify a model from ``key -> shape``.

    Args:
        shapes: every tensor key of the file's state dict with its shape.
        families: the families to score the file against; by default every known one
            (:data:`~lib_modeldoc.arch.families.FAMILIES`, or those of :func:`known_architectures`).
        tables: table id -> :class:`~lib_modeldoc.arch.tables.Table` for those families; by default
            the shipped tables (or those of :func:`known_architectures`).

    Returns:
        An :class:`Identification`; ``architecture == "unknown"`` when no family fits, with the
        candidates that came closest.
    """
    for signature in SIGNATURES:
        share = _signature_share(signature, shapes)
        if share and share >= signature.min_share:
            name, label, evidence = signature.name, signature.label, [f"{share:.0%} of keys match the {signature.label} key pattern"]
            variant = _variant(signature, shapes)
            if variant is not None:
                name, label = variant.name, variant.label
                evidence.append(f"{variant.label}: key {variant.key!r}" + (f" has size {variant.size} in dim {variant.dim}" if variant.dim is not None else ""))
            return Identification(name, None, (), (), tuple(evidence), label, signature.parts)

    known = _KNOWN[-1]
    families = known.families if families is None else families
    tables = known.tables if tables is None else tables
    cache: dict = {}
    present = frozenset(shapes)
    scored: list[tuple[tuple[int, int, int], Family, tuple[SlotMatch, ...], Candidate]] = []
    for order, fam in enumerate(families):
        slots = tuple(_match_slot(slot, tables, shapes, present, cache) for slot in fam.slots)
        matched = sum(len(s.matched) for s in slots)
        mismatched = sum(len(s.mismatched) for s in slots)
        missing = sum(s.missing_count for s in slots if s.required)
        candidate = Candidate(fam.name, matched - mismatched, matched, missing, mismatched)
        scored.append(((matched - mismatched, -missing, -order), fam, slots, candidate))
    scored.sort(key=lambda item: item[0], reverse=True)
    candidates = tuple(item[3] for item in scored[:5] if item[3].matched)
    _, best, slots, top = scored[0]

    recognised = [s for s in slots if s.required and s.share >= MIN_COMPONENT_SHARE]
    if not recognised:
        evidence = tuple(
            f"{c.name}: {c.matched} keys match, {c.missing} missing, {c.mismatched} with other shapes"
            for c in candidates[:3]
        ) or ("no key matches any known architecture",)
        return Identification("unknown", None, (), candidates, evidence, "unknown model")

    evidence = [f"{best.label}: {top.matched} keys match"]
    for s in slots:
        if s.present:
            where = s.mount.prefix or "no prefix"
            optional = {s.mount.key(k) for k in s.definition.optional}
            required = sum(1 for k in s.matched if k not in optional)  # never "197/196 keys"
            evidence.append(f"{s.component} = {s.table} at '{where}' ({required}/{s.expected} keys)")
    if len(scored) > 1 and scored[1][3].matched:
        runner = scored[1][3]
        evidence.append(f"next best: {runner.name} ({runner.score} vs {top.score})")
    return Identification(best.name, best, slots, candidates, tuple(evidence), best.label)


def identify_model(model: Mapping[str, TensorInfo], *, families: Sequence[Family] | None = None,
                   tables: Callable[[str], Table] | None = None) -> Identification:
    """:func:`identify` an open model (a :class:`~lib_modeldoc.io.model.ModelFile`: shapes from its header)."""
    return identify({k: info.shape for k, info in model.items()}, families=families, tables=tables)
