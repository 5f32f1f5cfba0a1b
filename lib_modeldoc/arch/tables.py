"""Load the component key tables shipped in ``arch/tables/`` (generated, never hand-typed)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Mapping

__all__ = ["Table", "table", "TABLE_IDS", "shape_matches"]

_LINE = re.compile(r"^(\S+) \[(-?\d+(?:,-?\d+)*)?\]$")

# Keys (per table id) a correct file may lack: transformers >= 4.31 no longer saves CLIP position_ids.
OPTIONAL_KEYS: Mapping[str, frozenset[str]] = {
    "clip_l": frozenset({"embeddings.position_ids"}),
}

# Tables that differ from a shipped one only in a few shapes (SDXL inpaint = base, 9 input channels).
DERIVED: Mapping[str, tuple[str, Mapping[str, tuple[int, ...]]]] = {
    "unet_sdxl_inpaint": ("unet_sdxl", {"input_blocks.0.0.weight": (320, 9, 3, 3)}),
    "unet_sdxl_pix2pix": ("unet_sdxl", {"input_blocks.0.0.weight": (320, 8, 3, 3)}),
}


@dataclass(frozen=True)
class Table:
    """The keys and shapes of one component variant, relative to its mount point.

    A ``-1`` in a shape matches any size (LoRA ranks).
    """

    id: str
    shapes: Mapping[str, tuple[int, ...]]
    optional: frozenset[str] = field(default_factory=frozenset)

    @property
    def required_keys(self) -> frozenset[str]:
        return frozenset(self.shapes) - self.optional


def _shipped_ids() -> tuple[str, ...]:
    files = resources.files(__package__).joinpath("tables")
    return tuple(sorted(p.name[:-4] for p in files.iterdir() if p.name.endswith(".txt")))


TABLE_IDS: tuple[str, ...] = tuple(sorted(set(_shipped_ids()) | set(DERIVED)))


def _parse(table_id: str, text: str) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"table {table_id}, line {number}: malformed: {line!r}")
        dims = match.group(2)
        shapes[match.group(1)] = tuple(int(d) for d in dims.split(",")) if dims else ()
    return shapes


@functools.lru_cache(maxsize=None)
def table(table_id: str) -> Table:
    """The :class:`Table` with this id (``unet_sd1``, ``clip_l``, ``vae`` ...)."""
    if table_id in DERIVED:
        base_id, overrides = DERIVED[table_id]
        base = table(base_id)
        return Table(table_id, MappingProxyType({**base.shapes, **overrides}), base.optional)
    text = resources.files(__package__).joinpath("tables", f"{table_id}.txt").read_text()
    return Table(table_id, MappingProxyType(_parse(table_id, text)), OPTIONAL_KEYS.get(table_id, frozenset()))


def shape_matches(expected: tuple[int, ...], actual: tuple[int, ...]) -> bool:
    """Whether a stored shape fits a table shape (``-1`` matches anything)."""
    return len(expected) == len(actual) and all(e in (-1, a) for e, a in zip(expected, actual))
