"""Sort every tensor of a model into the part it belongs to."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from .arch.families import KNOWN_BUFFERS
from .arch.identify import Identification

__all__ = ["Layout", "layout_of", "JUNK", "BUFFER", "UNKNOWN", "EMA"]

EMA = "ema_unet"
BUFFER = "buffer"  # scheduler buffers and prediction markers: always kept
JUNK = "junk"  # claimed by no table of an identified family
UNKNOWN = "unknown"  # unclaimed, but the family is unknown, so nothing is called junk


@dataclass(frozen=True)
class Layout:
    """Which part (a component name, ``ema_unet``, ``buffer``, ``junk`` or ``unknown``) each key is."""

    parts: Mapping[str, str]

    def keys(self, part: str) -> list[str]:
        return [k for k, p in self.parts.items() if p == part]

    def by_part(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = defaultdict(list)
        for key, part in self.parts.items():
            grouped[part].append(key)
        return dict(grouped)


def layout_of(keys: list[str] | Mapping[str, object], ident: Identification) -> Layout:
    """Assign each key of a file to a component of ``ident`` or to buffer / junk / unknown."""
    owner: dict[str, str] = {}
    for slot in ident.slots:
        for key in slot.keys:
            owner[key] = slot.component
    leftover = JUNK if ident.prunable else UNKNOWN
    parts = {}
    for key in keys:
        if key in owner:
            parts[key] = owner[key]
        elif key in KNOWN_BUFFERS:
            parts[key] = BUFFER
        else:
            parts[key] = leftover
    return Layout(parts)
