"""The tab in Simplified Chinese and Russian through the WebUI's own localization files.

AUTOMATIC1111 and Forge (``modules/localization.py``) list every ``localizations/<name>.json`` of the
WebUI and of each extension under its file name, and merge all files of the name the user picked
into one dict; ``javascript/localization.js`` then replaces every text node, title and placeholder
whose trimmed text is a key. Ours carry the names of the common language packs so they join them.

These tests build the real tab (gradio 3.41 here, 4.40 in CI), collect every string it shows (labels,
buttons, info lines, placeholders, fixed choices, markdown text nodes), plus the settings section's
labels and the script's context-menu entry, and fail when one has no translation in a file.
"""

from __future__ import annotations

import ast
import json
import os
import re

import pytest

gr = pytest.importorskip("gradio") if not os.environ.get("CI") else __import__("gradio")

from lib_modeldoc.report.messages import Language, language_from_webui  # noqa: E402
from lib_modeldoc.ui.builder import build_ui  # noqa: E402
from lib_modeldoc.ui.host import ClipIds  # noqa: E402
from lib_modeldoc.ui.panels import labels  # noqa: E402
from lib_modeldoc.ui.standalone import FolderHost  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCALIZATIONS = os.path.join(ROOT, "localizations")
# The names the common packs use (their localizations/ files): dtlnor's zh_CN, hanamizuki-ai's
# zh-Hans (Stable) / (Testing), ProfaneServitor's ru_RU: the index's zh_CN, zh_Hans and ru_RU entries.
FILES = {Language.ZH: ["zh_CN", "zh-Hans (Stable)", "zh-Hans (Testing)"], Language.RU: ["ru_RU"]}
# Names, not words: shown as they are in every language (formats, dtypes, part ids, architectures).
NAMES_KEPT = {
    "↻", "UNet", "VAE", "SD1", "SD2", "SDXL", "fp32", "fp16", "bf16", "fp8_e4m3fn", "fp8_e5m2", "safetensors",
    "ckpt", "unet", "vae", "clip", "clip_l", "clip_g", "ema-unet", "transformer", "t5xxl", "no-ema", "ema-only",
}
# Technical words a translation must keep when the English has them.
KEPT_IN_TRANSLATION = ("VAE", "UNet", "CLIP", "position_ids", "fp16", "NaN", "PSNR", "SDXL", "EMA", "LoRA",
                       "SHA-256", "BLAKE3", "CRC32", "Civitai", "models/text_encoder", "no-ema", "ema-only", "0..76",
                       "<models>/modeldoc-parts", "Forge", "WebUI")
HIDDEN = {"modeldoc_js_inspect"}  # the right-click entry's hidden button


class WebUILikeHost(FolderHost):
    """The WebUI case: a model in memory, so the "Loaded model" tab and button are there."""

    in_memory = True
    clip_ids = ClipIds.READ
    can_load_models = True


def load(name: str) -> dict[str, str]:
    with open(os.path.join(LOCALIZATIONS, f"{name}.json"), encoding="utf-8") as f:
        return json.load(f)


def markdown_text_nodes(source: str) -> list[str]:
    """The text nodes a markdown paragraph becomes, trimmed as localization.js trims them: bold text is
    a node of its own. Any other markup would split differently: refuse it rather than guess."""
    pieces = [p.strip() for p in re.split(r"\*\*(.+?)\*\*", source)]
    assert not re.search(r"[*`#\[\]_]{1}(?![a-z])", " ".join(pieces).replace("position_ids", "")), source
    return [p for p in pieces if p]


def tab_strings(blocks, host) -> set[str]:
    files = set(labels(host))  # the model lists: file names, not words
    shown: set[str] = set()
    for component in blocks.get_config_file()["components"]:
        props = component.get("props", {})
        kind = component["type"]
        if props.get("elem_id") in HIDDEN or kind in ("state", "html", "json"):
            continue
        if kind == "markdown":
            shown.update(markdown_text_nodes(props.get("value") or ""))
            continue
        for key in ("label", "info", "placeholder"):
            if isinstance(props.get(key), str) and props[key] and props.get("show_label", True) is not False:
                shown.add(props[key])
        if kind == "button" and props.get("value"):
            shown.add(props["value"])
        for choice in props.get("choices") or []:
            text = choice[0] if isinstance(choice, (list, tuple)) else choice
            if text not in files and not str(text).startswith(host.root):  # nor the output folders
                shown.add(text)
    return shown


def settings_labels() -> set[str]:
    """The labels of the WebUI's Settings → Model Doctor section (both forks' wording), from the script."""
    tree = ast.parse(open(os.path.join(ROOT, "scripts", "modeldoc.py"), encoding="utf-8").read())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "OPTIONS":
            for value in node.value.values:
                label = value.elts[1]
                for part in ([label.body, label.orelse] if isinstance(label, ast.IfExp) else [label]):
                    found.add(ast.literal_eval(part))
    assert len(found) >= 8, found
    return found


def script_entry() -> str:
    script = open(os.path.join(ROOT, "javascript", "modeldoc.js"), encoding="utf-8").read()
    return re.search(r'var ENTRY_ENGLISH = "([^"]+)"', script).group(1)


@pytest.fixture(scope="module")
def visible(tmp_path_factory) -> set[str]:
    from lib_modeldoc.ui.standalone import write_sample_library

    folder = str(write_sample_library(str(tmp_path_factory.mktemp("l10n"))))
    host, standalone = WebUILikeHost(folder), FolderHost(folder)  # the WebUI's tab, and serve's page
    strings = tab_strings(build_ui(host), host) | tab_strings(build_ui(standalone), standalone)
    return (strings | settings_labels() | {script_entry()}) - NAMES_KEPT


def test_the_collector_sees_the_whole_tab(visible):
    # A collector that finds nothing would pass everything: it must see every kind of string.
    for expected in ("Inspect", "Loaded model", "Output file name", "<model>-fixed", "Details", "convert",
                     "no-ema drops the EMA copy; ema-only makes it the UNet", "Fix / prune / convert",
                     "in memory", "Default output format", "Inspect with Model Doctor"):
        assert expected in visible
    assert "fp16" not in visible and "Model Doctor" not in visible
    assert not any(os.sep + "Stable-diffusion" in s for s in visible)  # the host's folders are not words


@pytest.mark.parametrize("language", list(FILES))
def test_every_visible_string_has_a_translation(visible, language):
    for name in FILES[language]:
        table = load(name)
        missing = sorted(s for s in visible if not table.get(s, "").strip())
        assert not missing, f"{name}.json lacks {missing}"
        # No entry for a string the tab no longer shows: a stale key would translate someone else's text.
        stale = sorted(set(table) - visible)
        assert not stale, f"{name}.json has strings the tab does not show: {stale}"


def test_one_language_one_content_and_both_languages_cover_the_same_strings():
    for language, names in FILES.items():
        first = load(names[0])
        for name in names[1:]:
            assert load(name) == first, f"{name}.json differs from {names[0]}.json"
    assert set(load("zh_CN")) == set(load("ru_RU"))
    shipped = sorted(f[:-5] for f in os.listdir(LOCALIZATIONS) if f.endswith(".json"))
    assert shipped == sorted(n for names in FILES.values() for n in names)


@pytest.mark.parametrize("name", [n for names in FILES.values() for n in names])
def test_translations_keep_the_technical_names_and_are_translated(name):
    table = load(name)
    script = re.compile(r"[\u4e00-\u9fff]" if name.startswith("zh") else r"[\u0400-\u04ff]")
    for english, translated in table.items():
        for word in KEPT_IN_TRANSLATION:
            if word in english:
                assert word in translated, (name, english, translated, word)
        if english.strip(" ;.,"):  # a lone ";" may stay punctuation
            assert translated.strip() != english.strip(), (name, english)
        if len(english) > 3 and any(c.isalpha() for c in english) and english not in (";",):
            assert script.search(translated) or translated.strip(" ;") == "", (name, english, translated)


@pytest.mark.parametrize("name, language", [(n, lang) for lang, names in FILES.items() for n in names])
def test_the_tab_follows_each_shipped_localization_name(name, language):
    assert language_from_webui(name) is language


# The words the tab makes at run time: the message catalogue, in the host's language -------------

DAMAGED = "damaged-merge-sd15.safetensors"


def _inspect(blocks, path):
    from ui_helpers import Driver

    drv = Driver(blocks)
    return drv.click("modeldoc_inspect", modeldoc_model=path)


@pytest.mark.parametrize("language, words, absent", [
    (Language.ZH, ["已损坏 — 1 个错误，", "CLIP position_ids 在 77 个位置中有", "勾选“修复 / 剪枝 / 转换”中的", "可节省空间",
                   "怎么做：", "命令行"], ["Damaged", "shifted at", "Space to gain"]),
    (Language.RU, ["Повреждена — 1 ошибка, ", "CLIP position_ids сдвинуты в", "Можно освободить", "Что сделать:"],
     ["Damaged", "shifted at", "Space to gain"]),
    (Language.EN, ["Damaged — 1 error, ", "shifted at", "Space to gain", "What to do:"], ["已损坏"]),
])
def test_the_verdict_speaks_the_host_language(tmp_path, language, words, absent):
    from lib_modeldoc.ui.standalone import write_sample_library

    folder = str(write_sample_library(str(tmp_path)))
    host = FolderHost(folder)
    host.language = language
    out = _inspect(build_ui(host), os.path.join(folder, "Stable-diffusion", DAMAGED))
    verdict, details = out["modeldoc_verdict"], out["modeldoc_details"]
    for word in words:
        assert word in verdict, (word, verdict)
    for word in absent:
        assert word not in verdict
    heading = {Language.EN: "Findings", Language.ZH: "发现的问题", Language.RU: "Находки"}[language]
    shifted = {Language.EN: "shifted at", Language.ZH: "发生偏移", Language.RU: "сдвинуты в"}[language]
    assert f"<b>{heading}</b>" in details and shifted in details


def test_status_lines_speak_the_host_language(tmp_path):
    from ui_helpers import Driver

    from lib_modeldoc.ui.standalone import write_sample_library

    host = FolderHost(str(write_sample_library(str(tmp_path))))
    host.language = Language.RU
    host.start_model = None
    drv = Driver(build_ui(host))
    out = drv.click("modeldoc_inspect", modeldoc_model="")
    assert "Модель не выбрана и не загружена" in out["modeldoc_status"]


@pytest.mark.parametrize("env, language", [({"LANG": "zh_CN.UTF-8"}, Language.ZH), ({"LC_ALL": "ru_RU.UTF-8"}, Language.RU),
                                           ({"LANG": "C.UTF-8"}, Language.EN)])
def test_the_standalone_page_follows_the_locale(tmp_path, monkeypatch, env, language):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert FolderHost(str(tmp_path)).language is language


@pytest.mark.parametrize("setting, language", [("None", Language.EN), ("zh_CN", Language.ZH),
                                               ("zh-Hans (Stable)", Language.ZH), ("ru_RU", Language.RU),
                                               ("zh_TW", Language.EN)])
def test_the_webui_tab_follows_its_localization_setting(tmp_path, monkeypatch, setting, language):
    """scripts/modeldoc.py loaded against the stand-in WebUI: WebUIHost.language reads
    shared.opts.localization, and the tab's verdict is worded in it."""
    import test_ui_webui_script as script_tests

    gen = script_tests._webui(tmp_path, monkeypatch, forge=False)
    module, models = next(gen)
    try:
        from modules import shared

        shared.opts.data["localization"] = setting
        host = module.WebUIHost()
        assert host.language is language
        verdict = _inspect(build_ui(host), str(models / "Stable-diffusion" / DAMAGED))["modeldoc_verdict"]
        expected = {Language.EN: "Damaged", Language.ZH: "已损坏", Language.RU: "Повреждена"}[language]
        assert expected in verdict
    finally:
        next(gen, None)
