"""The tab inside a stand-in WebUI page, in Debian's Chromium: the path a WebUI user takes.

``scripts/modeldoc.py`` is loaded against the stand-in ``modules`` package, its tab is rendered
into a page with the WebUI's quicksettings, ``#tabs`` and page-side JavaScript contract
(``webui_stub/page.py``, ``webui_stub/webui.js``), and ``javascript/modeldoc.js`` is loaded into
``<head>`` as the WebUI loads it. Every job button then runs through the same job starter and
argument passing as in the WebUI: under gradio 3.41 (AUTOMATIC1111) and, in CI, 4.40 (Forge),
where gradio hands a ``js=`` function the outputs' values too.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time

import numpy as np
import pytest
from file_digest import autov3_of, sha256_of
from toy_components import CLIP, checkpoint, save_safetensors, standalone_vae, toy_architectures, toy_values
from ui_helpers import CHROMIUM_ARGS, CI, chromium_or_skip, free_port

if CI:
    from playwright.sync_api import sync_playwright
else:
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "modeldoc.py")
EXTENSION_JS = os.path.join(ROOT, "javascript", "modeldoc.js")
STUB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "webui_stub")
WAIT_MS = 30_000


def _drop_modules():
    for name in list(sys.modules):
        if name == "modules" or name.startswith("modules.") or name == "webui_page":
            del sys.modules[name]


@pytest.fixture(scope="module")
def webui(tmp_path_factory):
    """The stand-in WebUI serving the tab; yields (url, models folder, the loaded script module)."""
    models = tmp_path_factory.mktemp("webui") / "models"
    for sub in ("Stable-diffusion", "VAE", "Lora"):
        (models / sub).mkdir(parents=True)
    values = toy_values()
    save_safetensors(models / "Stable-diffusion" / "toy.safetensors", checkpoint(values))
    save_safetensors(models / "Stable-diffusion" / "toy-b.safetensors", checkpoint(toy_values(seed=2)))
    save_safetensors(models / "VAE" / "other-vae.safetensors", standalone_vae(toy_values(seed=1)))
    mp = pytest.MonkeyPatch()
    toy = contextlib.ExitStack()
    toy.enter_context(toy_architectures())  # the engine knows only the toy families: tiny files stand for checkpoints
    _drop_modules()
    mp.syspath_prepend(STUB)
    from modules import call_queue, paths, script_callbacks, sd_models, sd_vae, shared

    paths.models_path = str(models)
    sd_models.model_path = str(models / "Stable-diffusion")
    sd_vae.vae_path = str(models / "VAE")
    shared.cmd_opts.lora_dir = str(models / "Lora")
    sd_models.list_models()
    sd_vae.refresh_vae_list()
    script_callbacks.clear()
    spec = importlib.util.spec_from_file_location("modeldoc", SCRIPT)  # as modules/script_loading.py does
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for callback in script_callbacks.callbacks["ui_settings"]:
        callback()
    import webui_page
    from lib_modeldoc.ui.builder import read_css

    shared.opts.data["sd_model_checkpoint"] = next(t for t, i in sd_models.checkpoints_list.items()
                                                   if i.name == "toy.safetensors")
    interrupts = []
    original = module.WebUIHost.interrupt

    def interrupt(self, session, task_id=None):
        interrupts.append(task_id)
        return original(self, session, task_id)

    mp.setattr(module.WebUIHost, "interrupt", interrupt)
    (tab, title, elem_id), = script_callbacks.callbacks["ui_tabs"][0]()
    demo = webui_page.build_page(tab, title, elem_id, read_css())
    port = free_port()
    webui_page.launch(demo, port)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "models": models, "module": module, "calls": call_queue.calls,
               "sd_models": sd_models, "shared": shared,
               "interrupts": interrupts}
    finally:
        demo.close()
        _drop_modules()
        mp.undo()
        toy.close()


@pytest.fixture(scope="module")
def browser():
    executable = chromium_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=WAIT_MS)
        yield b
        b.close()


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.add_init_script(path=os.path.join(STUB, "webui.js"))  # the WebUI's scripts, then the extension's
    page.add_init_script(path=EXTENSION_JS)
    page.goto(url, wait_until="load")
    page.wait_for_selector("#modeldoc_inspect", state="attached")
    page.click("#tabs button:has-text('Model Doctor')")
    page.wait_for_selector("#modeldoc_inspect")
    return page


def _pick(page, elem_id, text):
    field = page.locator(f"#{elem_id} input")
    field.click()
    field.fill(text)
    page.keyboard.press("Enter")
    page.locator("#modeldoc_intro").first.click()  # close the option list


def _title(webui, name):
    return next(t for t, info in webui["sd_models"].checkpoints_list.items() if info.name == name)


def _ran_as_a_webui_job(page, webui):
    """The last job got the task id the job starter made, and the progress bar polled it."""
    task = webui["calls"][-1]
    assert task and task.startswith("task("), webui["calls"]
    assert task in page.evaluate("webuiCalls.progress")


def _wait_for(condition, seconds=10):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def _wait_result(page, elem_id, text):
    page.wait_for_selector(f"#{elem_id} >> text={text}")
    return page.inner_text(f"#{elem_id}")


def test_every_job_button_runs_through_the_webui_job_starter(browser, webui):
    """Inspect with Scan / Identify, Compute hashes, Compare and every Write (item 1 of issue 9)."""
    page = _open(browser, webui["url"])
    models = webui["models"]
    toy = _title(webui, "toy.safetensors")
    try:
        _pick(page, "modeldoc_model", toy)
        page.click("#modeldoc_scan input")
        page.wait_for_selector("#modeldoc_inspect_deep", state="visible")
        page.click("#modeldoc_inspect_deep")
        page.wait_for_selector("#modeldoc_verdict .modeldoc-verdict, #modeldoc_status .modeldoc-msg")
        assert page.inner_text("#modeldoc_status").strip() == ""  # was "<models>/<…Session object…>: no such file"
        verdict = page.inner_text("#modeldoc_verdict")
        assert "toy.safetensors" in verdict
        assert page.locator("#modeldoc_details .modeldoc-scan").count() == 1, verdict
        _ran_as_a_webui_job(page, webui)
        page.click("#modeldoc_scan input")
        page.click("#modeldoc_identify input")
        page.click("#modeldoc_inspect_deep")
        page.wait_for_function("webuiCalls.progress.length >= 2")
        _wait_result(page, "modeldoc_verdict", "toy.safetensors")
        page.wait_for_function("!document.querySelector('.progressDiv')")
        _ran_as_a_webui_job(page, webui)

        page.click("#modeldoc_actions button:has-text('Hashes / compare')")
        page.click("#modeldoc_hash")
        hashes = _wait_result(page, "modeldoc_hash_result", "SHA-256")
        assert "no such file" not in hashes
        _ran_as_a_webui_job(page, webui)
        # the section's Interrupt names the job its button started (item 2: it also stops a queued one)
        page.click("#modeldoc_hash_interrupt")
        _wait_for(lambda: webui["interrupts"])
        assert webui["interrupts"][-1] == webui["calls"][-1]
        _pick(page, "modeldoc_compare_other", _title(webui, "toy-b.safetensors"))
        page.click("#modeldoc_compare")
        page.wait_for_selector("#modeldoc_compare_result .modeldoc-msg, #modeldoc_compare_result table")
        compared = page.inner_text("#modeldoc_compare_result")
        assert "no such file" not in compared and "toy-b.safetensors" in compared, compared
        _ran_as_a_webui_job(page, webui)

        page.click("#modeldoc_actions button:has-text('Fix / prune / convert')")
        page.click("#modeldoc_convert_write")
        wrote = _wait_result(page, "modeldoc_convert_result", "Wrote")
        assert (models / "Stable-diffusion" / "toy-fixed.safetensors").is_file(), wrote
        _ran_as_a_webui_job(page, webui)
        # "Load the new model" loads it and the WebUI's own dropdown shows it (item 9)
        page.click("#modeldoc_convert_load")
        fixed = _title(webui, "toy-fixed.safetensors")
        _wait_result(page, "modeldoc_convert_result", "Loaded")
        page.wait_for_function("webuiCalls.selectCheckpoint.length > 0")
        assert page.evaluate("webuiCalls.selectCheckpoint")[0] == fixed
        from webui_page import FORGE_FLAVOUR

        shown = "toy-fixed.safetensors" if FORGE_FLAVOUR else fixed  # Forge's dropdown lists names
        page.wait_for_function(f"document.querySelector({_checkpoint_input(page)!r}).value === {shown!r}")
        assert webui["shared"].opts.data["sd_model_checkpoint"] == fixed

        page.click("#modeldoc_actions button:has-text('Components')")
        page.click("#modeldoc_export_write")
        _wait_result(page, "modeldoc_export_result", "Wrote")
        assert (models / "VAE" / "toy-vae.safetensors").is_file()
        _ran_as_a_webui_job(page, webui)

        page.click("#modeldoc_replace_box >> text=Replace a part / bake a VAE")
        _pick(page, "modeldoc_replace_from", "VAE: other-vae.safetensors")
        page.click("#modeldoc_replace_write")
        _wait_result(page, "modeldoc_replace_result", "Wrote")
        assert (models / "Stable-diffusion" / "toy-new-vae.safetensors").is_file()
        _ran_as_a_webui_job(page, webui)

        page.click("#modeldoc_build_box >> text=Build a checkpoint from parts")
        for part in ("unet", "vae", "clip"):
            _pick(page, f"modeldoc_build_{part}", toy)
        page.click("#modeldoc_build_write")
        page.wait_for_selector("#modeldoc_build_result .modeldoc-msg")
        built = page.inner_text("#modeldoc_build_result")
        # the toy parts do not fit SD1: the job says so about the right file and architecture
        # (arguments shifted by one ended in "<models>/SD1: no such file")
        assert "toy.safetensors (TOY) has a unet of type toy_unet, but the new model (SD1) needs" in built, built
        _ran_as_a_webui_job(page, webui)
    finally:
        page.close()


def test_one_progress_bar_at_the_pressed_button(browser, webui):
    """The WebUI's bar (absolutely positioned, 14 px above its positioned parent) lands at the
    pressed button, not over the tab's intro; gradio's own overlay does not show too (item 8)."""
    from modules import call_queue

    page = _open(browser, webui["url"])
    try:
        _pick(page, "modeldoc_model", _title(webui, "toy.safetensors"))
        page.fill("#modeldoc_convert_out_name textarea", "toy-progress")
        call_queue.queue_lock.acquire()  # another job holds the queue: ours waits, its bar shown
        try:
            page.click("#modeldoc_convert_write")
            page.wait_for_selector(".progressDiv")
            page.wait_for_timeout(500)
            bar = page.locator(".progressDiv").bounding_box()
            button = page.locator("#modeldoc_convert_write").bounding_box()
            assert page.locator(".progressDiv").count() == 1
            assert button["y"] + button["height"] - 4 <= bar["y"] <= button["y"] + button["height"] + 60, (bar, button)
            # gradio's status overlay ("processing", "queue: 1/1") stays invisible
            assert page.evaluate("""Array.from(document.querySelectorAll('#modeldoc_convert_result .wrap')).every(w => {
                const c = getComputedStyle(w);
                return c.display === 'none' || c.opacity === '0' || c.visibility === 'hidden'
                    || w.getBoundingClientRect().height === 0;
            })""")
        finally:
            call_queue.queue_lock.release()
        _wait_result(page, "modeldoc_convert_result", "Wrote")
        page.wait_for_function("!document.querySelector('.progressDiv')")
    finally:
        page.close()


def test_a_page_load_shows_the_settings_and_the_loaded_model_now(browser, webui):
    """Items 7 and 11: Apply settings + reload, or a model loaded since start-up, reach the tab."""
    shared, sd_models = webui["shared"], webui["sd_models"]
    info = next(i for i in sd_models.checkpoints_list.values() if i.name == "toy-b.safetensors")
    saved = dict(shared.opts.data)
    shared.opts.data.update(modeldoc_precision="bf16", modeldoc_format="ckpt")
    sd_models.model_data.sd_model = type("Loaded", (), {"sd_checkpoint_info": info})()
    page = _open(browser, webui["url"])
    try:
        page.wait_for_function("document.querySelector('#modeldoc_model input').value.startsWith('toy-b')")
        assert page.input_value("#modeldoc_model input") == info.title
        assert page.is_checked("#modeldoc_precision input[value='bf16']")
        assert page.is_checked("#modeldoc_convert_format input[value='ckpt']")
    finally:
        page.close()
        shared.opts.data.clear()
        shared.opts.data.update(saved)
        sd_models.model_data.sd_model = None


def _checkpoint_input(page):
    from webui_page import FORGE_FLAVOUR

    return "#quicksettings .model_selection input" if FORGE_FLAVOUR else "#setting_sd_model_checkpoint input"


def test_right_click_on_the_checkpoint_dropdown_shows_the_menu_only(browser, webui):
    """The menu entry inspects the checkpoint; the dropdown's own option list stays closed (item 15)."""
    page = _open(browser, webui["url"])
    try:
        page.click("#tabs button:has-text('txt2img')")
        page.click(_checkpoint_input(page), button="right")
        page.wait_for_selector("#context-menu")
        page.wait_for_timeout(300)
        assert page.locator("#quicksettings ul.options").count() == 0 or not page.is_visible("#quicksettings ul.options")
        page.click("#context-menu li:has-text('Inspect with Model Doctor')")
        page.wait_for_selector("#modeldoc_verdict .modeldoc-verdict")
        assert "toy.safetensors" in page.inner_text("#modeldoc_verdict")
    finally:
        page.close()


def test_the_metadata_editor_loads_edits_saves_and_never_replaces_the_loaded_model(browser, webui):
    """Issue 13 item 1 in the tab: Load metadata, edit a field, save as a new file (AutoV3 kept, AutoV2
    changed, the source untouched), the recipe's model named as the WebUI lists it; in place refused
    for the loaded model. Both buttons run as WebUI jobs."""
    import hashlib
    import json

    from safetensors.numpy import save_file

    models = webui["models"] / "Stable-diffusion"
    parent = models / "toy-b.safetensors"
    recipe = {"type": "webui", "primary_model_hash": sha256_of(parent), "interp_method": "Weighted sum", "multiplier": 0.4}
    # the legacy hash as AUTOMATIC1111's merger records it (AutoV1: 64 KiB at 1 MiB; empty for a toy file)
    with open(parent, "rb") as f:
        f.seek(0x100000)
        legacy = hashlib.sha256(f.read(0x10000)).hexdigest()[:8]
    merged = {sha256_of(parent): {"name": "toyB-as-recorded.safetensors", "legacy_hash": legacy}}
    source = models / "meta-src.safetensors"
    save_file({"x": np.arange(12, dtype=np.float32).reshape(3, 4)}, str(source), metadata={
        "modelspec.title": "Mix", "sd_merge_recipe": json.dumps(recipe), "sd_merge_models": json.dumps(merged)})
    before_sha, before_v3 = sha256_of(source), autov3_of(source)
    shared, sd_models = webui["shared"], webui["sd_models"]
    saved = dict(shared.opts.data)
    shared.opts.data["sd_model_checkpoint"] = _title(webui, "toy.safetensors")  # the loaded model
    loaded = models / "toy.safetensors"
    loaded_sha = sha256_of(loaded)
    page = _open(browser, webui["url"])
    try:
        _pick(page, "modeldoc_model", str(source))
        page.click("#modeldoc_actions button:has-text('Metadata')")
        page.click("#modeldoc_meta_load")
        _wait_result(page, "modeldoc_meta_status", "Loaded 3 metadata keys")
        _ran_as_a_webui_job(page, webui)
        assert page.input_value("#modeldoc_meta_title textarea") == "Mix"
        other = json.loads(page.input_value("#modeldoc_meta_other textarea"))
        assert set(other) == {"sd_merge_recipe", "sd_merge_models"}
        recipe_shown = page.inner_text("#modeldoc_meta_recipe")
        assert "Weighted sum" in recipe_shown and "toyB-as-recorded.safetensors" in recipe_shown
        assert _title(webui, "toy-b.safetensors") in recipe_shown  # resolved to the WebUI's own entry, by hash
        assert page.input_value("#modeldoc_meta_out_name textarea") == "meta-src-meta.safetensors"

        page.fill("#modeldoc_meta_title textarea", "Edited in the tab")
        page.fill("#modeldoc_meta_author textarea", "Ann")
        page.click("#modeldoc_meta_save")
        result = _wait_result(page, "modeldoc_meta_result", "Wrote")
        _ran_as_a_webui_job(page, webui)
        new = models / "meta-src-meta.safetensors"
        assert new.is_file(), result
        assert sha256_of(source) == before_sha  # the source untouched
        assert autov3_of(new) == before_v3 and sha256_of(new) != before_sha
        assert f"AutoV2 {before_sha[:10]} → {sha256_of(new)[:10]}" in result and f"AutoV3 {before_v3[:12]} unchanged" in result
        from lib_modeldoc.operations.meta import read_metadata

        written = read_metadata(str(new))
        assert written.fields == {"title": "Edited in the tab", "author": "Ann"}
        assert json.loads(written.metadata["sd_merge_recipe"]) == recipe

        # the loaded model: never replaced in place
        _pick(page, "modeldoc_model", _title(webui, "toy.safetensors"))
        page.click("#modeldoc_meta_load")
        _wait_result(page, "modeldoc_meta_status", "has no metadata yet")
        page.fill("#modeldoc_meta_title textarea", "Not allowed")
        page.click("#modeldoc_meta_in_place input")
        page.click("#modeldoc_meta_save")
        refused = _wait_result(page, "modeldoc_meta_result", "never replaced in place")
        assert "toy.safetensors" in refused
        assert sha256_of(loaded) == loaded_sha
        assert not [n for n in os.listdir(models) if n.endswith(".partial")]
    finally:
        page.close()
        shared.opts.data.clear()
        shared.opts.data.update(saved)
        for name in ("meta-src.safetensors", "meta-src-meta.safetensors"):
            if (models / name).exists():
                (models / name).unlink()
        sd_models.list_models()
