"""The tab's words for the engine's advice ids: its own buttons, boxes and choices, never a flag.

One table per kind of id (:class:`~lib_modeldoc.report.advice.Repair`, :class:`~lib_modeldoc.report.advice.Remedy`,
component slot names); the command line has its own (``lib_modeldoc/commands/wording.py``).
"""

from __future__ import annotations

from typing import Any

from ..arch.components import component_name
from ..report.advice import Remedy, Repair, worded
from ..report.messages import Language, text

__all__ = ["REPAIRS", "REMEDIES", "COMPONENTS", "say", "repair_text", "component_text", "tab_text"]

REPAIRS: dict[Repair, str] = {r: text(f"tab.repair.{r.value}") for r in Repair}
"""In English; :func:`repair_text` words them in any language of the catalogue (``tab.repair.<id>``)."""

REMEDIES: dict[Remedy, str] = {
    Remedy.OVERWRITE: "tick “Overwrite an existing file” to replace it",
    Remedy.KEEP_JUNK: "tick “Keep junk tensors” to convert every tensor as it is",
    Remedy.FORCE: "tick “Keep junk tensors” to convert it keeping every tensor",
    Remedy.FIX_CLIP: "tick “Fix CLIP position_ids” to repair",
    Remedy.ALLOW_MISSING: "tick “Allow a missing part”",
    Remedy.GIVE_UNET: "pick a file in “UNet from”",
    Remedy.GIVE_VAE: "pick a file in “VAE from”",
    Remedy.GIVE_CLIP: "pick a file in “Text encoder(s) from”",
    Remedy.GIVE_CLIP_G: "pick a file in “SDXL CLIP-G from”",
    Remedy.DROP_CLIP_G: "leave “SDXL CLIP-G from” empty",
    Remedy.VAE_COPY: "set VAE to “copy” under “Per part” to keep it as it is",
    Remedy.VAE_NOT_DELETED: "set VAE to “convert” or “copy” under “Per part”",
    Remedy.GIVE_TOKENIZERS: "the command line's convert can take them from a diffusers folder that has them",
}

# The tab's short names for the "part" column of its tables, where they differ from the engine's
# (``arch.components``: "CLIP-L text encoder" ...).
COMPONENTS: dict[str, str] = {
    "clip_l": "CLIP-L", "clip_g": "CLIP-G (OpenCLIP bigG)", "clip_h": "CLIP-H (OpenCLIP)",
    "ema_unet": "EMA copy of the UNet", "depth": "depth model",
}


def say(item: Any) -> str:
    """An error, a plan note or any text, with its remedies in the tab's terms."""
    return worded(item, REMEDIES)


def repair_text(repair: Repair | None, language: Language | str = Language.EN) -> str:
    """What fixes a finding, in the tab's terms ("" when nothing does)."""
    return text(f"tab.repair.{Repair(repair).value}", language) if repair else ""


def component_text(component: str) -> str:
    """A component (a slot name, or ``other``) in the tab's words."""
    return COMPONENTS.get(component) or component_name(component)


def tab_text(message_id: str, /, **params: Any) -> str:
    """One of the tab's own run-time lines (a ``tab.*`` id of the message catalogue,
    :mod:`lib_modeldoc.report.messages`) with ``params`` filled in."""
    return text(message_id, **params)
