"""The standalone page (``serve``) in the locale's language, in Chromium: no WebUI translates its
labels, so it applies the same ``localizations/*.json`` itself; its verdict follows the locale too.
(A module of its own: the stand-in WebUI's fixture swaps the engine's tables for toy ones.)"""

from __future__ import annotations

import os

import pytest
from ui_helpers import CHROMIUM_ARGS, CI, chromium_or_skip

if CI:
    from playwright.sync_api import sync_playwright
else:
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

STANDALONE_INTRO = "Pick a model from the served folder (or paste a path inside it) and press"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_or_skip(), args=CHROMIUM_ARGS, timeout=30_000)
        yield b
        b.close()


@pytest.mark.parametrize("locale, word, english", [("zh_CN.UTF-8", "预览计划", "Preview plan"),
                                                   ("ru_RU.UTF-8", "Предпросмотр плана", "Preview plan")])
def test_the_standalone_page_speaks_the_locale(browser, library, monkeypatch, locale, word, english):
    """``serve`` has no WebUI to translate its labels: it applies the same files itself, and its
    verdict follows the locale too."""
    from test_ui_browser import _pick
    from ui_helpers import free_port

    from lib_modeldoc.ui.standalone import serve

    monkeypatch.setenv("LANG", locale)
    port = free_port()
    demo = serve(library, host="127.0.0.1", port=port, block=False, log=lambda line: None)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.set_default_timeout(30_000)
        page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
        page.wait_for_selector("#modeldoc_inspect")
        page.wait_for_function("(w) => document.body.innerText.includes(w)", arg=word)
        _pick(page, "damaged-merge-sd15.safetensors")
        page.click("#modeldoc_inspect")
        page.wait_for_selector("#modeldoc_verdict .modeldoc-verdict")
        shown = page.inner_text("body")
        assert english not in shown and STANDALONE_INTRO not in shown and "Nothing is written" not in shown
        assert ("已损坏" if locale.startswith("zh") else "Повреждена") in page.inner_text("#modeldoc_verdict")
    finally:
        page.close()
        demo.close()


def test_the_standalone_page_stays_english_in_an_english_locale():
    from lib_modeldoc.report.messages import Language
    from lib_modeldoc.ui.standalone import page_translation

    assert page_translation(Language.EN) == ""
    assert "预览计划" in page_translation(Language.ZH) and "Предпросмотр плана" in page_translation(Language.RU)
