"""Our localization files against the tab as a browser renders it (the stand-in WebUI page, Chromium).

The WebUI's ``localization.js`` replaces a text node, a ``title`` or a ``placeholder`` whose trimmed
text is a key of the merged dictionary. So every key we ship must be such a text exactly as gradio
renders it (3.41 here, 4.40 in CI): markdown split at its bold words, apostrophes as typed. This
test finds each key in the rendered tab, then translates the page the same way (a few lines of our
own here, not the WebUI's file) and checks that no English string of the tab is left.
"""

from __future__ import annotations

import json
import os

import pytest
from test_ui_webui_browser import _open, browser, webui  # noqa: F401  (fixtures)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZH = os.path.join(ROOT, "localizations", "zh_CN.json")

# Shown only elsewhere or only on demand: the Settings page's section, the right-click entry and
# the standalone page's first line (both checked below), and a dropdown's options (rendered when
# the list opens).
STANDALONE_INTRO = "Pick a model from the served folder (or paste a path inside it) and press"
NOT_IN_THE_TAB = {"convert", "copy", "delete", "None", "(by part: the VAE folder for a VAE, else the parts folder)",
                  "Inspect with Model Doctor", STANDALONE_INTRO, ". Nothing is written until you press a"}

TEXTS = """() => {
  const root = document.querySelector('#tab_modeldoc') || document.body;
  const out = [];
  const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walk.nextNode())) {
    const text = node.textContent.trim();
    const parent = node.parentElement ? node.parentElement.nodeName : '';
    if (text && parent !== 'SCRIPT' && parent !== 'STYLE' && parent !== 'TEXTAREA') out.push(text);
  }
  root.querySelectorAll('[placeholder]').forEach(e => out.push(e.placeholder));
  root.querySelectorAll('[title]').forEach(e => out.push(e.title));
  return out;
}"""

# What the WebUI does with window.localization, in short: every trimmed text node, placeholder and
# title that is a key gets its translation.
TRANSLATE = """(table) => {
  const root = document.querySelector('#tab_modeldoc') || document.body;
  const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  let node;
  const nodes = [];
  while ((node = walk.nextNode())) nodes.push(node);
  nodes.forEach(n => { const t = table[n.textContent.trim()]; if (t !== undefined) n.textContent = t; });
  root.querySelectorAll('[placeholder]').forEach(e => { const t = table[e.placeholder]; if (t !== undefined) e.placeholder = t; });
}"""


def _settings_labels() -> set[str]:
    from test_ui_l10n import settings_labels

    return settings_labels()


@pytest.fixture
def page(browser, webui):  # noqa: F811
    page = _open(browser, webui["url"])
    # the closed accordions' contents are rendered once opened (gradio 3.41 renders them lazily)
    for box in ("modeldoc_details_box", "modeldoc_metadata_box"):
        page.locator(f"#{box}").first.click()
    for tab in ("Fix / prune / convert", "Components", "Hashes / compare", "Loaded model"):
        page.click(f"#modeldoc_actions button:has-text('{tab}')")
        for accordion in page.locator("#modeldoc_actions .label-wrap:not(.open)").all():
            if accordion.is_visible():
                accordion.click()
    yield page
    page.close()


def test_every_key_is_a_text_the_browser_shows(page):
    table = json.load(open(ZH, encoding="utf-8"))
    shown = set(page.evaluate(TEXTS))
    wanted = set(table) - NOT_IN_THE_TAB - _settings_labels()
    missing = sorted(k for k in wanted if k not in shown)
    assert not missing, f"keys no text node, placeholder or title of the rendered tab has: {missing}"


def test_the_translated_tab_has_no_english_left(page):
    table = json.load(open(ZH, encoding="utf-8"))
    page.evaluate(TRANSLATE, table)
    shown = set(page.evaluate(TEXTS))
    left = sorted(set(table) & shown)
    assert not left, f"still English after translation: {left}"
    for word in ("检查", "预览计划", "写入", "修复 / 剪枝 / 转换", "输出文件名"):
        assert word in shown, word


def test_the_right_click_entry_is_translated_and_still_finds_the_tab(browser, webui):  # noqa: F811
    """modeldoc.js looks its menu entry up in window.localization (the WebUI defines it before any
    script); the tab keeps its title, so the entry still switches to it and inspects."""
    from test_ui_webui_browser import EXTENSION_JS, STUB, WAIT_MS, _checkpoint_input

    table = json.load(open(ZH, encoding="utf-8"))
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    try:
        page.add_init_script(f"window.localization = {json.dumps(table)};")
        page.add_init_script(path=os.path.join(STUB, "webui.js"))
        page.add_init_script(path=EXTENSION_JS)
        page.goto(webui["url"], wait_until="load")
        page.wait_for_selector("#modeldoc_inspect", state="attached")
        page.click(_checkpoint_input(page), button="right")
        page.wait_for_selector("#context-menu")
        assert page.locator("#context-menu li:has-text('Inspect with Model Doctor')").count() == 0
        page.click(f"#context-menu li:has-text('{table['Inspect with Model Doctor']}')")
        page.wait_for_selector("#modeldoc_verdict .modeldoc-verdict")
        assert "toy.safetensors" in page.inner_text("#modeldoc_verdict")
    finally:
        page.close()

