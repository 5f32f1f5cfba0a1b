"""What the engine advises, as ids: each front end words them in its own terms.

The engine never names a command-line flag or a tab control. A finding carries the
:class:`Repair` that fixes it; an error or a plan note carries the :class:`Remedy` a user can
apply. ``lib_modeldoc/commands/wording.py`` words both for the command line ("pass --overwrite"),
``lib_modeldoc/ui/wording.py`` for the tab ("tick “Overwrite an existing file”"); a test checks that
every id has wording in both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..strenum import StrEnum

__all__ = ["Repair", "Remedy", "Note", "remedies_of", "worded", "count"]


class Repair(StrEnum):
    """What fixes a finding (``Finding.repair``; ``repair`` in ``inspect --json``)."""

    FIX_CLIP = "fix_clip"
    """Reset the CLIP position_ids to int64 0..76 while converting."""
    PRUNE_EMA = "prune_ema"
    """Drop the EMA copy of the UNet (or make it the UNet)."""
    PRECISION_FP16 = "precision_fp16"
    """Store the weights as fp16."""
    DROP_UNKNOWN = "drop_unknown"
    """Drop tensors no table of the architecture describes."""
    CONVERT = "convert"
    """A default conversion fixes it (junk dropped, NAI layout renamed, .safetensors written)."""
    REPLACE = "replace"
    """Take the part from a full model of the same family."""
    FP32_VAE = "fp32_vae"
    """Run the VAE in fp32 in the WebUI."""


class Remedy(StrEnum):
    """What a user can do about an error or a note in a plan."""

    OVERWRITE = "overwrite"
    KEEP_JUNK = "keep_junk"
    FORCE = "force"
    FIX_CLIP = "fix_clip"
    ALLOW_MISSING = "allow_missing"
    GIVE_UNET = "give_unet"
    GIVE_VAE = "give_vae"
    GIVE_CLIP = "give_clip"
    GIVE_CLIP_G = "give_clip_g"
    DROP_CLIP_G = "drop_clip_g"
    VAE_COPY = "vae_copy"
    GIVE_TOKENIZERS = "give_tokenizers"
    VAE_NOT_DELETED = "vae_not_deleted"
    """Leave the VAE's own action off ``delete`` when a VAE replaces it (baked or taken from another model)."""

    @classmethod
    def give(cls, part: str) -> Remedy:
        """The remedy that supplies a part file (``unet``, ``vae``, ``clip``, ``clip_g``)."""
        return cls(f"give_{part}")


class Note(str):
    """A line of text for people that carries remedies; everywhere else (JSON, metadata) it is the plain text."""

    remedies: tuple[Remedy, ...]
    message_id: str | None = None
    params: Mapping[str, Any] = {}

    def __new__(cls, text: str, *remedies: Remedy) -> Note:
        note = super().__new__(cls, text)
        note.remedies = tuple(remedies)
        return note

    @classmethod
    def worded(cls, message_id: str, *remedies: Remedy, **params: Any) -> Note:
        """A note from the message catalogue: its text is the English (plans, provenance, the CLI), and
        ``message_id`` + ``params`` let a front end word it in another language."""
        from .messages import Language, text

        note = cls(text(message_id, Language.EN, **params), *remedies)
        note.message_id, note.params = message_id, dict(params)
        return note


def remedies_of(item: Any) -> tuple[Remedy, ...]:
    """The remedies a :class:`Note` or a :class:`~lib_modeldoc.errors.ModelDocError` carries (none for plain text)."""
    return tuple(getattr(item, "remedies", ()) or ())


def worded(item: Any, remedies: Mapping[Remedy, str]) -> str:
    """``item``'s text followed by its remedies in one front end's words: ``text; pass --x, or --y``."""
    text = str(item)
    found = remedies_of(item)
    return f"{text}; " + ", or ".join(remedies[r] for r in found) if found else text


def count(n: int, word: str, plural: str | None = None) -> str:
    """``1 tensor``, ``3 tensors``: a number with its noun in agreement."""
    return f"{n} {word if n == 1 else plural or word + 's'}"
