"""The message catalogue (lib_modeldoc/report/messages.py): complete in every language, the same
``{fields}`` everywhere, plural forms, and the language picked from the locale or the WebUI setting."""

from __future__ import annotations

import re

import pytest

from lib_modeldoc.report import messages
from lib_modeldoc.report.messages import (
    PLURAL_FORMS, Language, counted, fields, language_from_locale, language_from_webui, plural_form, templates, text,
)

PLURAL = re.compile(r"^(count\.[a-z_]+)\.(one|few|many|other)$")


def base_ids(language: Language) -> dict[str, set[str]]:
    """Message id -> the plural forms it has ({""} for a message that is not a count)."""
    out: dict[str, set[str]] = {}
    for message_id in templates(language):
        match = PLURAL.match(message_id)
        out.setdefault(match.group(1) if match else message_id, set()).add(match.group(2) if match else "")
    return out


@pytest.mark.parametrize("language", [Language.ZH, Language.RU])
def test_every_message_is_translated_with_every_plural_form(language):
    english, translated = base_ids(Language.EN), base_ids(language)
    assert set(translated) == set(english), (set(english) ^ set(translated))
    for message_id, forms in english.items():
        if forms == {""}:
            assert translated[message_id] == {""}
        else:
            assert translated[message_id] == set(PLURAL_FORMS[language]), message_id
    for message_id, template in templates(language).items():
        words = re.sub(r"\{[a-z_]+\}", "", template)
        assert template.strip() and (template != templates(Language.EN).get(message_id)
                                     or not re.search(r"[A-Za-z]", words)), message_id


@pytest.mark.parametrize("language", [Language.ZH, Language.RU])
def test_fields_are_the_same_in_every_language(language):
    english = templates(Language.EN)
    for message_id, template in templates(language).items():
        match = PLURAL.match(message_id)
        reference = english[f"{match.group(1)}.other"] if match else english[message_id]
        assert fields(template) == fields(reference), (language, message_id, template)


def test_text_fills_in_and_falls_back_to_english(monkeypatch):
    assert text("verdict.to_fix", Language.ZH, command="python -m lib_modeldoc convert a") == \
        "修复方法：python -m lib_modeldoc convert a"
    assert text("verdict.to_fix", "ru", command="x") == "Как исправить: x"
    monkeypatch.setattr(messages, "templates", lambda lang: {"a": "{n} in English"} if lang is Language.EN else {})
    assert text("a", Language.RU, n=3) == "3 in English"


@pytest.mark.parametrize("n, form", [(1, "one"), (2, "few"), (4, "few"), (5, "many"), (11, "many"), (12, "many"),
                                     (21, "one"), (22, "few"), (25, "many"), (111, "many"), (0, "many")])
def test_russian_plural_forms(n, form):
    assert plural_form(n, Language.RU) == form


def test_counted_words():
    assert [counted("tensor", n) for n in (1, 2)] == ["1 tensor", "2 tensors"]
    assert [counted("error", n, Language.RU) for n in (1, 3, 7)] == ["1 ошибка", "3 ошибки", "7 ошибок"]
    assert counted("warning", 1, Language.ZH) == "1 个警告"


@pytest.mark.parametrize("env, language", [
    ({"LANG": "zh_CN.UTF-8"}, Language.ZH),
    ({"LANG": "ru_RU.UTF-8"}, Language.RU),
    ({"LANG": "en_US.UTF-8"}, Language.EN),
    ({"LANG": "de_DE.UTF-8"}, Language.EN),
    ({"LANG": "zh_TW.UTF-8"}, Language.EN),  # Traditional Chinese is not what the catalogue holds
    ({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}, Language.EN),  # LC_ALL wins
    ({"LC_MESSAGES": "ru_RU.UTF-8", "LANG": "en_US.UTF-8"}, Language.RU),
    ({"LC_ALL": "", "LANG": "ru_RU"}, Language.RU),  # empty means unset
    ({}, Language.EN),
])
def test_language_from_locale(env, language):
    assert language_from_locale(env) is language


@pytest.mark.parametrize("name, language", [
    ("zh_CN", Language.ZH), ("zh-Hans (Stable)", Language.ZH), ("zh-Hans (Testing)", Language.ZH),
    ("zh-Hans (Stable) [vladmandic]", Language.ZH), ("Chinese-All", Language.ZH), ("ru_RU", Language.RU),
    ("zh_TW", Language.EN), ("zh_Hant", Language.EN), ("ja_JP", Language.EN), ("None", Language.EN), (None, Language.EN),
    ("", Language.EN),
])
def test_language_from_the_webui_setting(name, language):
    assert language_from_webui(name) is language
