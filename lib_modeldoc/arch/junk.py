"""What may be called junk: named groups of tensors no WebUI loads, as data.

The hard rule: junk is only what matches one of these groups, and a tensor under a component
prefix of the identified family (``model.diffusion_model.``, ``first_stage_model.`` ...) is never
junk, whatever it is. Every other tensor no table claims is "unknown, kept": reported, and
dropped only when the user asks (``--drop-unknown``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = ["JunkGroup", "JUNK_GROUPS", "EMA_PREFIX", "junk_group_of"]

# Every LitEma tensor, the UNet copy and its bookkeeping (decay, num_updates): --prune no-ema drops them all.
EMA_PREFIX = "model_ema."


@dataclass(frozen=True)
class JunkGroup:
    """A named kind of tensor no WebUI loads.

    Attributes:
        name: shown to the user (``embedding_manager``, ``LoRA leftovers`` ...).
        pattern: a regular expression matched at the start of the key.
        why: one line saying why no WebUI loads it.
        unless_families: families that do load these tensors (a ControlNet's ``control_model``).
    """

    name: str
    pattern: str
    why: str
    unless_families: frozenset[str] = frozenset()

    @functools.cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)


_CONTROLNETS = frozenset({"ControlNet", "ControlNet-SD2", "ControlNet-SDXL"})

JUNK_GROUPS: tuple[JunkGroup, ...] = (
    JunkGroup("embedding_manager", r"embedding_manager\.",
              "a textual-inversion trainer's copy of the text encoder"),
    JunkGroup("LoRA leftovers", r"(lora_(unet|te\d?|transformer)_|lyco_)",
              "LoRA weights merged in by a tool that kept the network too; the WebUI loads LoRAs from their own files"),
    JunkGroup("control_model", r"control_model\.",
              "a ControlNet left inside a checkpoint; the WebUI loads ControlNets from their own files",
              unless_families=_CONTROLNETS),
    JunkGroup("optimizer state", r"(optimizer(_states)?|lr_schedulers?|optimizer_state_dict)\.",
              "training state of the optimizer"),
    JunkGroup("VAE training loss", r"loss\.",
              "the discriminator / LPIPS of VAE training; the WebUI skips 'loss' keys"),
)


def junk_group_of(key: str, family: str | None) -> JunkGroup | None:
    """The junk group ``key`` belongs to in a file of ``family``, or ``None``."""
    for group in JUNK_GROUPS:
        if family in group.unless_families:
            continue
        if group.regex.match(key):
            return group
    return None
