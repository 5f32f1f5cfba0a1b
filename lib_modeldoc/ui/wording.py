"""The tab's words for the engine's advice ids: its own buttons, boxes and choices, never a flag.

One table per kind of id (:class:`~lib_modeldoc.report.advice.Repair`, :class:`~lib_modeldoc.report.advice.Remedy`,
component slot names); the command line has its own (``lib_modeldoc/commands/wording.py``).
"""

from __future__ import annotations

from typing import Any

from ..arch.components import component_name
from ..errors import ModelDocError
from ..report.advice import Remedy, Repair, remedies_of
from ..report.messages import Language, templates, text

__all__ = ["REPAIRS", "REMEDIES", "COMPONENTS", "say", "engine_text", "is_worded", "tab_error", "repair_text", "component_text"]

REPAIRS: dict[Repair, str] = {r: text(f"tab.repair.{r.value}") for r in Repair}
"""In English; :func:`repair_text` words them in any language of the catalogue (``tab.repair.<id>``)."""

REMEDIES: dict[Remedy, str] = {r: text(f"tab.remedy.{r.value}") for r in Remedy}
"""In English; :func:`say` words them in the tab's language (``tab.remedy.<id>``, naming the tab's
controls as the translated tab shows them)."""

# The tab's short names for the "part" column of its tables, where they differ from the engine's
# (``arch.components``: "CLIP-L text encoder" ...): ``tab.component.<slot>`` in the catalogue.
COMPONENTS: dict[str, str] = {c: text(f"tab.component.{c}") for c in ("clip_l", "clip_g", "clip_h", "ema_unet", "depth")}


def tab_error(kind: type[ModelDocError], message_id: str, /, **params: Any) -> ModelDocError:
    """One of the tab's own errors: ``str()`` is English (logs, the API), ``message_id`` + ``params``
    let :func:`say` word it in the tab's language."""
    return kind.worded(message_id, **params)


def say(item: Any, language: Language | str = Language.EN) -> str:
    """An error, a plan note or any text, with its remedies in the tab's terms and ``language``.

    The tab's own errors (:func:`tab_error`) are worded in ``language``; the engine's errors and
    notes are English text (see :func:`engine_text`), their remedies in ``language``.
    """
    message = engine_text(item, language)
    found = remedies_of(item)
    if not found:
        return message
    remedies = text("tab.error.or", language).join(text(f"tab.remedy.{r.value}", language) for r in found)
    return text("tab.error.with_remedy", language, message=message, remedies=remedies)


def engine_text(item: Any, language: Language | str = Language.EN) -> str:
    """``item``'s text without its remedies: a :func:`tab_error` in ``language``, anything else as it is."""
    message_id = getattr(item, "message_id", None)
    return text(message_id, language, **getattr(item, "params", {})) if message_id else str(item)


def is_worded(item: Any) -> bool:
    """Whether ``item``'s text comes from the catalogue (so it is in the tab's language)."""
    return bool(getattr(item, "message_id", None))


def repair_text(repair: Repair | None, language: Language | str = Language.EN) -> str:
    """What fixes a finding, in the tab's terms ("" when nothing does)."""
    return text(f"tab.repair.{Repair(repair).value}", language) if repair else ""


def component_text(component: str, language: Language | str = Language.EN) -> str:
    """A component (a slot name, or ``other``) in the tab's words and ``language``."""
    if component in COMPONENTS or component == "other":
        return text(f"tab.component.{component}", language)
    if f"component.{component}" in templates(Language.EN):
        return text(f"component.{component}", language)
    return component_name(component)
