"""Sort every tensor of a model into the part it belongs to.

The rule that keeps loaded weights safe: a tensor is ``junk`` only when it matches a named
junk group (:mod:`lib_modeldoc.arch.junk`) and lies under no component prefix of the identified
family. Every other tensor no table claims is ``unknown``: kept, reported, dropped only on request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .families import KNOWN_BUFFERS, ComponentId
from .identify import Identification
from .junk import EMA_PREFIX, junk_group_of

__all__ = ["Layout", "layout_of", "JUNK", "BUFFER", "UNKNOWN", "EMA"]

EMA = ComponentId.EMA_UNET
BUFFER = "buffer"  # scheduler buffers and prediction markers: always kept
JUNK = "junk"  # a named junk group no WebUI loads (embedding_manager, LoRA leftovers ...)
UNKNOWN = "unknown"  # claimed by no table and in no junk group: kept unless the user asks


@dataclass(frozen=True)
class Layout:
    """Which part (a component name, ``ema_unet``, ``buffer``, ``junk`` or ``unknown``) each key is.

    ``junk_groups`` names the junk group of every ``junk`` key.
    """

    parts: Mapping[str, str]
    junk_groups: Mapping[str, str] = field(default_factory=dict)

    def keys(self, part: str) -> list[str]:
        return [k for k, p in self.parts.items() if p == part]


def component_prefixes(ident: Identification) -> tuple[str, ...]:
    """The non-empty mount prefixes of the identified family: nothing under them is junk."""
    if ident.family is None:
        return ()
    return tuple(sorted({m.prefix for s in ident.family.slots for m in s.mounts if m.prefix and not m.ema}))


def layout_of(keys: list[str] | Mapping[str, object], ident: Identification) -> Layout:
    """Assign each key of a file to a component of ``ident`` or to ema / buffer / junk / unknown."""
    owner: dict[str, str] = {}
    for slot in ident.slots:
        for key in slot.keys:
            owner[key] = slot.component
    prefixes = component_prefixes(ident)
    name = ident.family.name if ident.family is not None else None
    parts: dict[str, str] = {}
    groups: dict[str, str] = {}
    for key in keys:
        if key in owner:
            parts[key] = owner[key]
        elif key in KNOWN_BUFFERS:
            parts[key] = BUFFER
        elif not ident.prunable:
            parts[key] = UNKNOWN  # nothing is called junk (or EMA) in a model we cannot place
        elif key.startswith(EMA_PREFIX):
            parts[key] = EMA  # the EMA copy and its bookkeeping (decay, num_updates)
        elif key.startswith(prefixes):
            parts[key] = UNKNOWN  # under a component we recognise: never junk
        else:
            group = junk_group_of(key, name)
            parts[key] = UNKNOWN if group is None else JUNK
            if group is not None:
                groups[key] = group.name
    return Layout(parts, groups)
