"""The message catalogue (lib_modeldoc/report/messages.py): complete in every language, the same
``{fields}`` everywhere, plural forms, and the language picked from the locale or the WebUI setting."""

from __future__ import annotations

import re

import pytest

from lib_modeldoc.report import messages
from lib_modeldoc.report.messages import (
    PLURAL_FORMS, Language, counted, fields, language_from_locale, language_from_webui, plural_form, templates, text,
)

PLURAL = re.compile(r"^(count\.[a-z0-9_]+)\.(one|few|many|other)$")
SAME_NAMES = {"component.unet", "component.vae", "component.controlnet", "component.ema_unet", "tab.shell.powershell",
              "finding.lora.rank", "finding.lora.alpha", "tab.component.clip_l", "tab.component.clip_g",
              "tab.component.clip_h", "vae.alt"}  # LoRA terms the communities keep  # names in every language


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
                                     or not re.search(r"[A-Za-z]", words) or message_id in SAME_NAMES), message_id


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


# Findings on real files ---------------------------------------------------------------------------

ENGLISH_ONLY: set[str] = set()
"""Findings still worded in English in every language (none now; a new one must be listed here)."""


def _findings_of_every_sample(folder):
    import torch

    from lib_modeldoc.checks.diagnose import inspect_model
    from lib_modeldoc.samples import SAMPLES, Spec, family_specs, write_demo_sample, write_safetensors_sample, write_sample

    paths = [write_demo_sample(folder)]
    paths += [write_sample(f"{folder}/{name}.safetensors", name) for name in SAMPLES]
    paths.append(write_safetensors_sample(f"{folder}/unknown.safetensors", [Spec("foo.weight", "F32", (3, 5))]))
    paths.append(write_safetensors_sample(f"{folder}/no-vae.safetensors", family_specs("SD1", components=["unet", "clip_l"])))
    torch.save({"state_dict": {"a.weight": torch.ones(2, 3)}, "optimizer_states": [1]}, f"{folder}/tiny.ckpt")
    paths.append(f"{folder}/tiny.ckpt")
    from lib_modeldoc.checks.diagnose import fit_adapter

    found = [f for p in paths for f in inspect_model(p).findings]
    for adapter in ("lora-sd15-kohya", "lora-sdxl", "embedding-sdxl"):  # fits, does not fit, does not fit
        found += fit_adapter(inspect_model(f"{folder}/{adapter}.safetensors"), paths[0]).findings[-1:]
    return found


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    return _findings_of_every_sample(str(tmp_path_factory.mktemp("samples")))


def test_the_samples_give_many_kinds_of_finding(findings):
    ids = {f.id for f in findings}
    assert {"clip.position_ids.offset", "junk", "ema", "precision.fp64", "arch.unknown", "arch.inspect_only",
            "component.missing", "prediction.v", "format.pickle", "lora.summary", "embedding.summary",
            "adapter.fit"} <= ids, ids


@pytest.mark.parametrize("language", [Language.ZH, Language.RU])
def test_every_finding_is_worded_in_each_language(findings, language):
    script = re.compile(r"[\u4e00-\u9fff]" if language is Language.ZH else r"[\u0400-\u04ff]")
    for finding in findings:
        if finding.id in ENGLISH_ONLY:
            continue
        assert finding.message_id, f"{finding.id} has no catalogue message"
        worded = finding.message_in(language)
        assert script.search(worded), (finding.id, worded)
        assert finding.message_in(Language.EN) == finding.message


def test_component_names_agree_with_the_components_table():
    from lib_modeldoc.arch.components import component_name

    names = {k.split(".", 1)[1]: v for k, v in templates(Language.EN).items() if k.startswith("component.")}
    assert names and all(component_name(c) == name for c, name in names.items()), names
