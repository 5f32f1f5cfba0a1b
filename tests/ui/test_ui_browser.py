"""Real-browser tests: Debian's Chromium driven by Playwright (never a downloaded browser).

1. The standalone server in a browser: inspect a sample, see the verdict, preview a plan.
2. ``javascript/modeldoc.js`` on a small page that provides ``appendContextMenuOption`` and the
   WebUI's checkpoint dropdown ids (AUTOMATIC1111 and Forge): the right-click entry switches to
   the tab by its text and sends the selected checkpoint to the tab's hidden inspect button.
3. The same entry on the real standalone page: the right-click ends in a real inspection.

Skipped only when Chromium is missing outside CI; with ``CI`` set, a missing browser fails.
Servers listen on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import os

import pytest
from ui_helpers import CHROMIUM_ARGS, CI, chromium_or_skip, free_port

if CI:
    from playwright.sync_api import sync_playwright
else:
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "javascript", "modeldoc.js")
WAIT_MS = 30_000

# A minimal context-menu provider with the WebUI's contract: appendContextMenuOption(selector,
# name, fn) and a menu on right-click when the innermost clicked element matches the selector.
CONTEXT_MENU = """
window.menuOptions = [];
window.appendContextMenuOption = function(selector, name, fn) {
  window.menuOptions.push([selector, name, fn]);
  return 'id' + window.menuOptions.length;
};
document.addEventListener('contextmenu', function(e) {
  var target = e.composedPath()[0];
  var old = document.getElementById('context-menu');
  if (old) old.remove();
  var hits = window.menuOptions.filter(function(o) { return target.matches && target.matches(o[0]); });
  if (!hits.length) return;
  e.preventDefault();
  var nav = document.createElement('nav'); nav.id = 'context-menu';
  var ul = document.createElement('ul'); nav.appendChild(ul);
  hits.forEach(function(o) {
    var li = document.createElement('li'); li.textContent = o[1];
    li.addEventListener('click', function() { nav.remove(); o[2](); });
    ul.appendChild(li);
  });
  document.body.appendChild(nav);
});
"""

PAGE = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<div id="tabs"><div class="tab-nav">
  <button class="selected">txt2img</button><button>img2img</button><button>Model Doctor</button><button>Settings</button>
</div></div>
<div id="quicksettings">
  <div id="setting_sd_model_checkpoint"><label><div class="wrap"><div class="wrap-inner"><div class="secondary-wrap">
    <input value="sd15-merge.safetensors [0123456789]"></div></div></div></label></div>
  <div class="model_selection"><label><input value="juggernaut-xl.safetensors"></label></div>
</div>
<div id="modeldoc_js_value"><label><textarea></textarea></label></div>
<button id="modeldoc_js_inspect">inspect</button>
<script>
window.events = [];
document.querySelectorAll('#tabs button').forEach(function(b) {
  b.addEventListener('click', function() { window.events.push('tab:' + b.textContent); });
});
document.querySelector('#modeldoc_js_value textarea').addEventListener('input', function(e) {
  window.events.push('input:' + e.target.value);
});
document.getElementById('modeldoc_js_inspect').addEventListener('click', function() {
  window.events.push('inspect:' + document.querySelector('#modeldoc_js_value textarea').value);
});
</script></body></html>"""


@pytest.fixture(scope="module")
def browser():
    executable = chromium_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=WAIT_MS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(library):
    from lib_modeldoc.ui.standalone import serve

    port = free_port()
    lines = []
    demo = serve(library, host="127.0.0.1", port=port, block=False, log=lines.append)
    assert lines == [f"Model Doctor is running on http://127.0.0.1:{port}/ (models: {library}); press Ctrl+C to stop"]
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(url, wait_until="load")
    page.wait_for_selector("#modeldoc_inspect")
    return page


def _pick(page, label):
    field = page.locator("#modeldoc_model input")
    field.click()
    field.fill(label)
    page.keyboard.press("Enter")


def test_standalone_inspects_a_sample_and_shows_the_verdict(browser, server, library):
    page = _open(browser, server)
    nan_sample = None
    try:
        # a page of its own: a heading, and a first line for a served folder (item 19 of issue 9)
        assert page.locator("h1", has_text="Model Doctor").count() == 1
        first = page.locator("#modeldoc_intro").first.inner_text()
        assert first.startswith("Pick a model from the served folder") and "loaded model" not in first
        _pick(page, "damaged-merge-sd15.safetensors")
        page.click("#modeldoc_inspect")
        page.wait_for_selector("#modeldoc_verdict .modeldoc-verdict")
        verdict = page.inner_text("#modeldoc_verdict")
        assert "damaged-merge-sd15.safetensors" in verdict
        assert "Damaged — 1 error, 2 warnings" in verdict
        assert "CLIP position_ids are shifted" in verdict and "Space to gain: 6.06 GB" in verdict
        assert page.locator("#modeldoc_chart .modeldoc-bar .modeldoc-seg-unet").count() == 1
        assert page.input_value("#modeldoc_convert_out_name textarea") == "damaged-merge-sd15-fixed.safetensors"
        page.click("#modeldoc_convert_preview")
        page.wait_for_selector("#modeldoc_convert_result .modeldoc-plan")
        assert "8.20 GB → 2.13 GB" in page.inner_text("#modeldoc_convert_result")
        # the hidden bridge elements stay hidden
        assert not page.is_visible("#modeldoc_js_value") and not page.is_visible("#modeldoc_js_inspect")
        # "Scan every value" turns Inspect into a job that reads every tensor: a planted NaN is found
        nan_sample = _nan_sample(library)  # a path inside the served folder (outside it is refused)
        _pick(page, nan_sample)
        assert not page.is_visible("#modeldoc_inspect_deep")
        page.click("#modeldoc_scan input")
        page.wait_for_selector("#modeldoc_inspect_deep", state="visible")
        assert not page.is_visible("#modeldoc_inspect")
        # the job goes through the same job starter as in a WebUI (loaded with the page)
        assert page.evaluate("typeof window.modeldoc_start_job") == "function"
        page.click("#modeldoc_inspect_deep")
        page.wait_for_selector("#modeldoc_verdict .modeldoc-verdict[data-verdict='error'] >> text=NaN or infinite values")
        assert "nan-sample.safetensors" in page.inner_text("#modeldoc_verdict")
        assert page.locator("#modeldoc_details .modeldoc-scan").count() == 1
    finally:
        page.close()
        if nan_sample:
            os.remove(nan_sample)


def _nan_sample(folder) -> str:
    """A tiny file whose one weight holds a NaN (beside the sample library's lists, pasted as a path)."""
    import numpy as np

    from lib_modeldoc.samples import Spec, write_safetensors_sample

    key = "model.diffusion_model.input_blocks.0.0.weight"
    values = {key: np.array([0.5, np.nan, -0.25, 1.0], dtype=np.float16)}
    return write_safetensors_sample(os.path.join(folder, "nan-sample.safetensors"), [Spec(key, "F16", (4,))], values)


@pytest.mark.parametrize("selector,title", [
    ("#setting_sd_model_checkpoint input", "sd15-merge.safetensors [0123456789]"),  # AUTOMATIC1111
    ("#quicksettings .model_selection input", "juggernaut-xl.safetensors"),  # Forge
])
def test_context_menu_entry_switches_tab_by_text_and_sends_the_checkpoint(browser, selector, title):
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.set_content(PAGE)
        page.add_script_tag(content=CONTEXT_MENU)
        page.add_script_tag(path=SCRIPT)
        assert page.evaluate("window.menuOptions.map(o => o[0] + ' | ' + o[1])") == [
            "#setting_sd_model_checkpoint input | Inspect with Model Doctor",
            "#quicksettings .model_selection input | Inspect with Model Doctor",
        ]
        page.click(selector, button="right")
        page.click("#context-menu li:has-text('Inspect with Model Doctor')")
        page.wait_for_function("window.events.some(e => e.startsWith('inspect:'))")
        assert page.evaluate("window.events") == ["tab:Model Doctor", f"input:{title}", f"inspect:{title}"]
        # a right-click elsewhere offers nothing
        page.click("#tabs button >> nth=0", button="right")
        assert page.locator("#context-menu").count() == 0
    finally:
        page.close()


def test_a_written_file_refreshes_the_webui_dropdowns_once(browser):
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.set_content(PAGE.replace("</body>", """
<button id="refresh_sd_model_checkpoint">r</button><button id="refresh_sd_vae">r</button>
<div class="modeldoc-job-result"></div>
<script>
window.refreshed = [];
['refresh_sd_model_checkpoint', 'refresh_sd_vae'].forEach(function(id) {
  document.getElementById(id).addEventListener('click', function() { window.refreshed.push(id); });
});
window.uiUpdates = [];
window.onAfterUiUpdate = function(cb) { window.uiUpdates.push(cb); };
window.uiUpdated = function() { window.uiUpdates.forEach(function(cb) { cb(); }); };
</script></body>"""))
        page.add_script_tag(content=CONTEXT_MENU)
        page.add_script_tag(path=SCRIPT)
        page.evaluate("window.uiUpdated()")
        assert page.evaluate("window.refreshed") == []  # nothing written yet
        page.evaluate("""document.querySelector('.modeldoc-job-result').innerHTML =
            '<div class="modeldoc-msg modeldoc-ok" data-written="/m/x.safetensors|1">Wrote</div>'""")
        page.evaluate("window.uiUpdated(); window.uiUpdated()")
        assert page.evaluate("window.refreshed") == ["refresh_sd_model_checkpoint", "refresh_sd_vae"]
    finally:
        page.close()


def test_context_menu_entry_inspects_on_the_real_page(browser, server):
    page = _open(browser, server)
    try:
        page.add_script_tag(content=CONTEXT_MENU)
        page.evaluate("""() => {
            const box = document.createElement('div');
            box.id = 'setting_sd_model_checkpoint';
            box.innerHTML = '<label><input value="sdxl-base-fp16.safetensors"></label>';
            document.body.prepend(box);
        }""")
        page.add_script_tag(path=SCRIPT)
        page.click("#setting_sd_model_checkpoint input", button="right")
        page.click("#context-menu li:has-text('Inspect with Model Doctor')")
        page.wait_for_selector("#modeldoc_verdict .modeldoc-verdict")
        verdict = page.inner_text("#modeldoc_verdict")
        assert "sdxl-base-fp16.safetensors" in verdict and "Stable Diffusion XL (SDXL)" in verdict
        assert page.input_value("#modeldoc_model input") == "sdxl-base-fp16.safetensors"
    finally:
        page.close()
