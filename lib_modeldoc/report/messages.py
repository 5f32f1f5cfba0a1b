"""One message catalogue for the texts people read: verdicts, findings, the tab's run-time lines.

English is the default and the reference: every message id has an English template in
``locales/en.json``; ``zh.json`` (Simplified Chinese) and ``ru.json`` hold the same ids. A template
is a :meth:`str.format` string whose ``{fields}`` are the same in every language. A message missing
from a language falls back to English, never to an error (the tests make sure none is missing).

Which language: the command line and the standalone page follow the locale (:func:`language_from_locale`),
the WebUI tab follows the WebUI's *Localization* setting (:func:`language_from_webui`). The JSON output
(``--json``) is a contract and always English.
"""

from __future__ import annotations

import json
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..strenum import StrEnum

__all__ = ["Language", "Phrase", "Counted", "Listed", "text", "language_for_stream", "counted", "plural_form", "PLURAL_FORMS", "language_from_locale", "language_from_webui", "templates", "fields"]

_LOCALES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locales")


class Language(StrEnum):
    """The languages the catalogue speaks."""

    EN = "en"
    ZH = "zh"
    """Simplified Chinese."""
    RU = "ru"


@lru_cache(maxsize=None)
def templates(language: Language) -> Mapping[str, str]:
    """Message id -> template for ``language`` (read once from ``locales/<lang>.json``)."""
    with open(os.path.join(_LOCALES, f"{Language(language).value}.json"), encoding="utf-8") as f:
        return json.load(f)


def fields(template: str) -> set[str]:
    """The ``{field}`` names a template uses (its parameters)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@dataclass(frozen=True)
class Phrase:
    """A part of a message that is itself worded per language (a parameter of another message)."""

    message_id: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Counted:
    """A number with its noun in the plural form the language wants (``count.<noun>.<form>``)."""

    noun: str
    n: int


@dataclass(frozen=True)
class Listed:
    """Items joined by the language's list separator (``list.comma``, ``list.semicolon``)."""

    items: tuple[Any, ...]
    separator: str = "list.comma"


def render(value: Any, language: Language | str = Language.EN) -> Any:
    """A parameter as ``language`` shows it: phrases, counts and lists worded; anything else as is."""
    if isinstance(value, Phrase):
        return text(value.message_id, language, **value.params)
    if isinstance(value, Counted):
        return counted(value.noun, value.n, language)
    if isinstance(value, Listed):
        return text(value.separator, language).join(str(render(v, language)) for v in value.items)
    return value


def text(message_id: str, language: Language | str = Language.EN, /, **params: Any) -> str:
    """The message ``message_id`` in ``language`` with ``params`` filled in (each rendered in the same
    language; English when that language lacks the message). An unknown id is a programming error."""
    template = templates(Language(language)).get(message_id)
    if template is None:
        template = templates(Language.EN)[message_id]
    return template.format(**{k: render(v, language) for k, v in params.items()})


# Each language's plural forms (CLDR names), in the order :func:`plural_form` tells them apart.
PLURAL_FORMS: dict[Language, tuple[str, ...]] = {
    Language.EN: ("one", "other"),
    Language.ZH: ("other",),
    Language.RU: ("one", "few", "many"),
}


def plural_form(n: int, language: Language | str) -> str:
    """The plural form ``n`` takes in ``language`` (Russian: 1, 21 -> one; 2-4, 22 -> few; else many)."""
    language = Language(language)
    if language is Language.ZH:
        return "other"
    if language is Language.RU:
        if n % 10 == 1 and n % 100 != 11:
            return "one"
        return "few" if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14 else "many"
    return "one" if n == 1 else "other"


def counted(noun: str, n: int, language: Language | str = Language.EN) -> str:
    """``n`` and the noun in the right plural form: ``counted("error", 2)`` -> "2 errors"."""
    form = plural_form(n, language)
    if f"count.{noun}.{form}" not in templates(Language(language)):
        form = plural_form(n, Language.EN)  # a language that lacks the noun: English, in English's form
        language = Language.EN
    return text(f"count.{noun}.{form}", language, n=n)


# --- which language ------------------------------------------------------------------------------

def _from_code(code: str) -> Language:
    """``zh_CN.UTF-8``, ``zh-Hans``, ``ru_RU``, ``Chinese-All`` ... -> a language (English if none fits).
    Traditional Chinese (zh_TW, zh_HK, zh_Hant) is not Simplified Chinese: English."""
    lowered = code.strip().lower()
    if re.match(r"(zh|chinese)(?![-_ ]?(tw|hk|mo|hant))", lowered):
        return Language.ZH
    if re.match(r"(ru|russian)([-_ .@(]|$)", lowered):
        return Language.RU
    return Language.EN


def language_from_locale(environ: Mapping[str, str] | None = None) -> Language:
    """The language of the POSIX locale: the first of ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` that is set
    (``zh_CN.UTF-8`` -> Chinese, ``ru_RU.UTF-8`` -> Russian, anything else -> English).
    ``LANGUAGE`` is not read: a C or POSIX locale means English whatever it says."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return _from_code(value)
    return Language.EN


def language_for_stream(language: Language, stream: Any) -> Language:
    """``language``, or English when ``stream`` cannot encode it (a Windows pipe in cp1252 cannot
    hold Chinese: English beats a ``UnicodeEncodeError`` or a page of question marks)."""
    if language is Language.EN:
        return language
    try:
        templates(language)["verdict.healthy"].encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return Language.EN
    return language


def language_from_webui(localization: str | None) -> Language:
    """The language of a WebUI *Localization* setting (``shared.opts.localization``): the name of a
    localization file such as ``zh_CN``, ``zh-Hans (Stable)``, ``ru_RU``; ``None`` means English."""
    if not localization or localization == "None":
        return Language.EN
    return _from_code(localization)
