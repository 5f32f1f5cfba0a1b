"""The command line's words for the engine's advice ids: its flags and commands.

One table per kind of id (:class:`~lib_modeldoc.report.advice.Repair`, :class:`~lib_modeldoc.report.advice.Remedy`);
the tab has its own (``lib_modeldoc/ui/wording.py``).
"""

from __future__ import annotations

from typing import Any

from ..report.advice import Remedy, Repair, worded
from ..report.messages import Language, text

__all__ = ["REPAIRS", "REMEDIES", "say", "repair_text"]

REPAIRS: dict[Repair, str] = {r: text(f"cli.repair.{r.value}") for r in Repair}
"""In English; :func:`repair_text` words them in any language of the catalogue (``cli.repair.<id>``)."""

REMEDIES: dict[Remedy, str] = {
    Remedy.OVERWRITE: "pass --overwrite to replace it",
    Remedy.KEEP_JUNK: "pass --keep-junk to convert every tensor as it is",
    Remedy.FORCE: "--force converts it keeping every tensor",
    Remedy.FIX_CLIP: "use --fix-clip to repair",
    Remedy.ALLOW_MISSING: "pass --allow-missing",
    Remedy.GIVE_UNET: "pass --unet FILE",
    Remedy.GIVE_VAE: "pass --vae FILE",
    Remedy.GIVE_CLIP: "pass --clip FILE",
    Remedy.GIVE_CLIP_G: "pass --clip-g FILE",
    Remedy.DROP_CLIP_G: "drop --clip-g",
    Remedy.VAE_COPY: "--vae copy keeps it as it is",
    Remedy.VAE_NOT_DELETED: "leave out --vae delete (--vae copy keeps the new VAE as it is)",
    Remedy.GIVE_TOKENIZERS: "pass --tokenizers with a diffusers folder (or a folder with vocab.json and merges.txt) that has them",
}


def say(item: Any) -> str:
    """An error, a plan note or any text, with its remedies in command-line terms."""
    return worded(item, REMEDIES)


def repair_text(repair: Repair | None, language: Language | str = Language.EN) -> str:
    """What fixes a finding, in command-line terms ("" when nothing does)."""
    return text(f"cli.repair.{Repair(repair).value}", language) if repair else ""
