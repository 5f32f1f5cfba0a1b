"""``scripts/modeldoc.py`` loaded the way AUTOMATIC1111 loads it, against a stand-in ``modules``
package: the tab, the settings section and the HTTP routes it registers, and its Host."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
import threading
import time

import pytest
import torch
from ui_helpers import Driver, update_value

from lib_modeldoc.samples import write_demo_sample

gr = pytest.importorskip("gradio") if not os.environ.get("CI") else __import__("gradio")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "modeldoc.py")
STUB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "webui_stub")
DAMAGED = "damaged-merge-sd15.safetensors"


FORGE_STUB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "webui_stub_forge")


def _drop_modules():
    for name in list(sys.modules):
        if name.split(".")[0] in ("modules", "modules_forge"):
            del sys.modules[name]


@pytest.fixture
def webui(tmp_path, monkeypatch):
    """A WebUI model tree, the stand-in ``modules`` on sys.path, and the script loaded from its file."""
    yield from _webui(tmp_path, monkeypatch, forge=False)


@pytest.fixture
def forge_webui(tmp_path, monkeypatch):
    """The same as Forge: ``modules_forge`` importable (how the script tells Forge)."""
    yield from _webui(tmp_path, monkeypatch, forge=True)


def _webui(tmp_path, monkeypatch, *, forge: bool):
    from lib_modeldoc.ui.standalone import write_sample_library

    models = tmp_path / "models"
    write_sample_library(str(models))
    (models / "Lora").mkdir()
    _drop_modules()
    monkeypatch.syspath_prepend(STUB)
    if forge:
        monkeypatch.syspath_prepend(FORGE_STUB)
    from modules import paths, script_callbacks, sd_models, sd_vae, shared

    paths.models_path = str(models)
    sd_models.model_path = str(models / "Stable-diffusion")
    sd_vae.vae_path = str(models / "VAE")
    shared.cmd_opts.lora_dir = str(models / "Lora")
    sd_models.list_models()
    sd_vae.refresh_vae_list()
    script_callbacks.clear()
    # As modules/script_loading.py does: a module from a file, not put in sys.modules.
    spec = importlib.util.spec_from_file_location("modeldoc", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module, models
    _drop_modules()


def test_registers_a_tab_settings_and_routes_and_imports_no_ldm(webui):
    module, _ = webui
    from modules import script_callbacks

    assert script_callbacks.callbacks["ui_tabs"] == [module.on_ui_tabs]
    assert script_callbacks.callbacks["ui_settings"] == [module.on_ui_settings]
    assert script_callbacks.callbacks["app_started"] == [module.on_app_started]
    assert not {"ldm", "sgm", "modules.sd_models_config"} & set(sys.modules)
    imported = set()
    for node in ast.walk(ast.parse(open(SCRIPT, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{a.name}" for a in node.names} | {node.module or ""}
    assert not {n for n in imported if n.split(".")[0] in ("ldm", "sgm") or "sd_models_config" in n}
    assert {n.split(".")[0] for n in imported} <= {"__future__", "importlib", "logging", "os", "collections",
                                                   "typing", "gradio", "modules", "lib_modeldoc", "fastapi",
                                                   "torch", "modules_forge"}


def test_the_tab(webui):
    module, models = webui
    from modules import script_callbacks

    tabs = script_callbacks.callbacks["ui_tabs"][0]()
    assert len(tabs) == 1
    blocks, title, elem_id = tabs[0]
    assert (title, elem_id) == ("Model Doctor", "modeldoc") and isinstance(blocks, gr.Blocks)
    drv = Driver(blocks)
    model = blocks.blocks[drv.ids["modeldoc_model"]]
    choices = [c[0] if isinstance(c, (list, tuple)) else c for c in model.choices]
    assert any(re.fullmatch(re.escape(DAMAGED) + r" \[[0-9a-f]{10}\]", c) for c in choices), choices
    assert "VAE: sd-vae-fp32.safetensors" in choices
    # the right-click entry sends the dropdown's title; the tab resolves it like the WebUI does
    title_text = next(c for c in choices if c.startswith(DAMAGED))
    out = drv.click("modeldoc_js_inspect", modeldoc_js_value=title_text)
    assert "Damaged" in out["modeldoc_verdict"] and update_value(out["modeldoc_model"]) == title_text
    # the output folder defaults to the WebUI's checkpoint folder
    assert blocks.blocks[drv.ids["modeldoc_convert_out_folder"]].value == str(models / "Stable-diffusion")
    assert drv.js("modeldoc_convert_write") == "(...args) => modeldoc_start_job(18, ...args)"


def test_settings_section_sets_the_tab_defaults(webui):
    module, _ = webui
    from modules import script_callbacks, shared

    script_callbacks.callbacks["ui_settings"][0]()
    labels = shared.opts.data_labels
    assert {"modeldoc_precision", "modeldoc_prune", "modeldoc_fix_clip", "modeldoc_format", "modeldoc_verify",
            "modeldoc_dir_checkpoints", "modeldoc_dir_vae", "modeldoc_dir_components"} <= set(labels)
    assert all(info.section == ("modeldoc", "Model Doctor") for info in labels.values())
    assert labels["modeldoc_precision"].component is gr.Radio
    shared.opts.data["modeldoc_precision"] = "bf16"
    shared.opts.data["modeldoc_fix_clip"] = False
    blocks = script_callbacks.callbacks["ui_tabs"][0]()[0][0]
    drv = Driver(blocks)
    assert blocks.blocks[drv.ids["modeldoc_precision"]].value == "bf16"
    assert blocks.blocks[drv.ids["modeldoc_fix_clip"]].value is False


def test_routes_inspect_only_inside_the_model_folders(webui, tmp_path):
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    module, models = webui
    from modules import script_callbacks

    app = FastAPI()
    script_callbacks.callbacks["app_started"][0](None, app)
    client = TestClient(app)
    damaged = str(models / "Stable-diffusion" / DAMAGED)
    got = client.get("/modeldoc/inspect", params={"path": damaged})
    assert got.status_code == 200 and got.json()["architecture"] == "SD1"
    assert got.json()["clip_position_ids"][0]["wrong"] == [41, 76]
    got = client.post("/modeldoc/inspect", json={"name": DAMAGED})
    assert got.status_code == 200 and got.json()["path"] == damaged
    outside = tmp_path / "elsewhere"
    write_demo_sample(str(outside))
    outside = outside / DAMAGED
    assert client.get("/modeldoc/inspect", params={"path": str(outside)}).status_code == 403
    bad = models / "Stable-diffusion" / "bad.safetensors"
    bad.write_bytes(b"<html>not a model</html>")
    got = client.get("/modeldoc/inspect", params={"path": str(bad)})
    assert got.status_code == 400 and "\n" not in got.json()["detail"]
    listing = client.get("/modeldoc/models").json()
    assert any(c["path"] == damaged for c in listing["checkpoints"]) and listing["loaded"] is None
    assert client.post("/modeldoc/live-clip").json()["supported"] is False


class FakeModel(torch.nn.Module):
    """An AUTOMATIC1111 SD1 model as far as position_ids go, with the file's damage loaded."""

    def __init__(self, info):
        super().__init__()
        self.cond_stage_model = torch.nn.Module()
        self.cond_stage_model.transformer = torch.nn.Module()
        self.cond_stage_model.transformer.text_model = torch.nn.Module()
        self.cond_stage_model.transformer.text_model.embeddings = torch.nn.Module()
        ids = torch.arange(77).reshape(1, 77)
        ids[0, 76], ids[0, 41] = 75, 40
        self.cond_stage_model.transformer.text_model.embeddings.register_buffer("position_ids", ids)
        self.sd_checkpoint_info = info


def test_loaded_model_live_check_and_fix_in_memory(webui):
    module, models = webui
    from modules import script_callbacks, sd_models

    info = next(i for i in sd_models.checkpoints_list.values() if i.name == DAMAGED)
    model = FakeModel(info)
    sd_models.model_data.sd_model = model
    host = module.WebUIHost()
    assert host.loaded_checkpoint() == info.filename
    checked = host.live_clip(fix=False)
    assert checked.supported and checked.damaged and "shifted" in checked.message
    fixed = host.live_clip(fix=True)
    assert fixed.fixed == 1 and "reset 2 CLIP position(s)" in fixed.message
    assert torch.equal(model.cond_stage_model.transformer.text_model.embeddings.position_ids, torch.arange(77).reshape(1, 77))
    assert "correct" in host.live_clip(fix=False).message
    # the tab picks the loaded model by default, and its "Loaded model" tab runs the same checks
    blocks = script_callbacks.callbacks["ui_tabs"][0]()[0][0]
    drv = Driver(blocks)
    assert blocks.blocks[drv.ids["modeldoc_model"]].value == info.title
    assert "correct" in drv.click("modeldoc_live_check")["modeldoc_live_result"]
    # loading a checkpoint goes through the setting whose onchange reloads the weights
    from modules import shared

    assert host.load_checkpoint(info.filename).startswith("Loaded")
    assert shared.opts.changes[-1] == ("sd_model_checkpoint", info.title)


def test_jobs_use_the_queue_lock_progress_bar_and_interrupt_only_their_own(webui):
    module, _ = webui
    from modules import call_queue, shared
    from lib_modeldoc.ui.host import Session

    host = module.WebUIHost()
    session = Session()
    seen = {}

    def job(ctx, sess, value):
        seen["locked"] = call_queue.queue_lock.locked()
        ctx.progress(50, 100, "half way\nsecond line")
        seen["progress"] = (shared.state.job_count, shared.state.sampling_step, shared.state.sampling_steps,
                            shared.state.textinfo, shared.state.job)
        host.interrupt(sess)
        seen["interrupted"] = shared.state.interrupted and ctx.cancelled()
        return [value, "<p>done</p>"]

    handler = host.wrap_job(job, 2, 1)
    out = handler("task(abc)", session, "x")
    assert out[0] == "x" and out[1].startswith("<p>done</p>")
    assert seen["locked"] and seen["interrupted"]
    assert seen["progress"] == (1, 500, 1000, "half way", "task(abc)")
    # someone else's job is running: our interrupt button must not stop it
    shared.state.begin(job="task(other)")
    host.interrupt(Session())
    assert not shared.state.interrupted


def test_an_interrupt_while_queued_is_kept_until_the_job_starts(webui, tmp_path):
    """Session B presses a job button while A's job holds the queue, then Interrupt: when A's job
    ends, B's job stops before doing anything (issue 9, item 2). A later job of B runs in full."""
    import numpy as np

    from lib_modeldoc.samples import Spec, write_safetensors_sample

    module, _ = webui
    from modules import call_queue, script_callbacks, shared

    key = "model.diffusion_model.input_blocks.0.0.weight"
    small = write_safetensors_sample(str(tmp_path / "small.safetensors"), [Spec(key, "F16", (4,))],
                                     {key: np.ones(4, dtype=np.float16)})
    blocks = script_callbacks.callbacks["ui_tabs"][0]()[0][0]
    b = Driver(blocks)
    got = {}
    call_queue.queue_lock.acquire()  # session A's long job is running
    try:
        shared.state.begin(job="task(a)")
        queued = threading.Thread(target=lambda: got.update(
            b.click("modeldoc_hash", modeldoc_task_id="task(b1)", modeldoc_model=small)))
        queued.start()
        time.sleep(0.3)
        assert queued.is_alive()  # waiting for the queue
        b.click("modeldoc_hash_interrupt", modeldoc_task_id="task(b1)")
        assert not shared.state.interrupted  # A's job goes on
        shared.state.end()
    finally:
        call_queue.queue_lock.release()
    queued.join(10)
    assert "Interrupted before it started" in got["modeldoc_hash_result"]
    again = b.click("modeldoc_hash", modeldoc_task_id="task(b2)", modeldoc_model=small)["modeldoc_hash_result"]
    assert "SHA-256" in again and "Interrupted" not in again


def test_a_page_load_shows_the_settings_and_the_model_loaded_now(webui):
    """Settings → Model Doctor reach the tab on a page reload, without a restart (item 7), and the
    picker starts on the model loaded now, not the one loaded at start-up (item 11)."""
    module, models = webui
    from modules import script_callbacks, sd_models, shared

    script_callbacks.callbacks["ui_settings"][0]()
    blocks = script_callbacks.callbacks["ui_tabs"][0]()[0][0]  # built at start-up: nothing loaded, defaults
    drv = Driver(blocks)
    assert blocks.blocks[drv.ids["modeldoc_precision"]].value == "fp16"
    shared.opts.data.update(modeldoc_precision="bf16", modeldoc_format="ckpt", modeldoc_verify=False,
                            modeldoc_fix_clip=False, modeldoc_dir_checkpoints=str(models / "out"))
    info = next(i for i in sd_models.checkpoints_list.values() if i.name == DAMAGED)
    sd_models.model_data.sd_model = FakeModel(info)
    try:
        out = drv.load()
    finally:
        sd_models.model_data.sd_model = None
    assert update_value(out["modeldoc_precision"]) == "bf16"
    assert update_value(out["modeldoc_fix_clip"]) is False and update_value(out["modeldoc_build_fix_clip"]) is False
    assert {update_value(out[f"modeldoc_{p}_format"]) for p in ("convert", "export", "replace", "build")} == {"ckpt"}
    assert {update_value(out[f"modeldoc_{p}_verify"]) for p in ("convert", "export", "replace", "build")} == {False}
    assert update_value(out["modeldoc_convert_out_folder"]) == str(models / "out")
    assert update_value(out["modeldoc_model"]) == info.title


def test_a_written_file_joins_every_list_at_once(webui, tmp_path):
    """After a Write the picker and the other file lists hold the new file without ↻ (item 11)."""
    module, models = webui
    from modules import script_callbacks

    blocks = script_callbacks.callbacks["ui_tabs"][0]()[0][0]
    drv = Driver(blocks)
    out = drv.click("modeldoc_export_write", modeldoc_task_id="task(x)", modeldoc_model=DAMAGED,
                    modeldoc_export_component="vae", modeldoc_export_precision="fp16")
    assert "Wrote" in out["modeldoc_export_result"], out["modeldoc_export_result"]
    new = "VAE: damaged-merge-sd15-vae.safetensors"
    for elem_id in ("modeldoc_model", "modeldoc_compare_other", "modeldoc_replace_from", "modeldoc_build_vae"):
        assert new in out[elem_id]["choices"], elem_id
    assert update_value(out["modeldoc_model"]) == DAMAGED  # the pick stays


def test_hashes_go_into_the_webuis_cache_and_inspect_shows_them_while_fresh(webui):
    """Item 4 of "what users ask for": the WebUI's own hash cache, read and written, never stale."""
    module, models = webui
    from modules import hashes, script_callbacks, sd_models

    blocks = script_callbacks.callbacks["ui_tabs"][0]()[0][0]
    drv = Driver(blocks)
    path = str(models / "Stable-diffusion" / DAMAGED)
    out = drv.click("modeldoc_js_inspect", modeldoc_js_value=DAMAGED)
    assert "WebUI's hash cache" not in out["modeldoc_details"]  # nothing cached yet

    out = drv.click("modeldoc_hash", modeldoc_task_id="task(h)", modeldoc_model=DAMAGED)
    sha = hashes.calculate_sha256(path)
    assert sha in out["modeldoc_hash_result"]
    assert hashes.cache("hashes")[f"checkpoint/{DAMAGED}"] == {"mtime": os.path.getmtime(path), "sha256": sha}
    info = next(i for i in sd_models.checkpoints_list.values() if i.filename == path)
    assert info.sha256 == sha and info.title == f"{DAMAGED} [{sha[:10]}]"  # the WebUI shows the real hash now

    out = drv.click("modeldoc_js_inspect", modeldoc_js_value=info.title)
    assert f"<code>{sha}</code>" in out["modeldoc_details"] and "WebUI's hash cache" in out["modeldoc_details"]

    later = os.path.getmtime(path) + 5
    os.utime(path, (later, later))  # the file changed since: the entry is stale and never shown
    out = drv.click("modeldoc_js_inspect", modeldoc_js_value=info.title)
    assert sha not in out["modeldoc_details"]
    assert module.WebUIHashCache().lookup(path) is None


def test_hash_cache_ignores_files_the_webui_does_not_list(webui, tmp_path):
    module, _ = webui
    from modules import hashes

    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"x")
    cache = module.WebUIHashCache()
    cache.store(str(outside), "a" * 64)
    assert cache.lookup(str(outside)) is None and hashes.cache("hashes") == {}


def test_forge_says_what_it_does_with_clip_ids_and_offers_no_fix_in_memory(forge_webui):
    """Item 12: the verdict says Forge rebuilds the ids (so images there are unaffected), the
    Loaded model tab has no "Fix in memory"; AUTOMATIC1111's wording stays as it was."""
    module, models = forge_webui
    from modules import script_callbacks

    host = module.WebUIHost()
    assert host.name == "Forge"
    blocks = script_callbacks.callbacks["ui_tabs"][0]()[0][0]
    drv = Driver(blocks)
    verdict = drv.click("modeldoc_inspect", modeldoc_model=DAMAGED)["modeldoc_verdict"]
    assert "CLIP position_ids are shifted" in verdict
    assert "Forge rebuilds these ids when it loads CLIP, so images made here are not affected" in verdict
    assert "the WebUI reads these as int64" not in verdict
    assert blocks.blocks[drv.ids["modeldoc_live_fix"]].visible is False
    assert "nothing to fix here" in blocks.blocks[drv.ids["modeldoc_loaded_intro"]].value


def test_automatic1111_keeps_reading_clip_ids_and_the_fix_in_memory(webui):
    module, _ = webui
    from modules import script_callbacks

    blocks = script_callbacks.callbacks["ui_tabs"][0]()[0][0]
    drv = Driver(blocks)
    verdict = drv.click("modeldoc_inspect", modeldoc_model=DAMAGED)["modeldoc_verdict"]
    assert "the WebUI reads these as int64" in verdict and "rebuilds these ids" not in verdict
    assert blocks.blocks[drv.ids["modeldoc_live_fix"]].visible is not False


def test_forge_exports_parts_where_forge_lists_them(forge_webui):
    """Item 13: a text encoder to models/text_encoder, a VAE to models/VAE, a UNet to the checkpoint
    folder (Forge lists all three); AUTOMATIC1111 keeps models/modeldoc-parts (next test)."""
    module, models = forge_webui
    folders = module.WebUIHost().folders()
    assert folders.for_part("clip_l") == str(models / "text_encoder")
    assert folders.for_part("clip") == str(models / "text_encoder")
    assert folders.for_part("vae") == str(models / "VAE")
    assert folders.for_part("unet") == str(models / "Stable-diffusion")
    from modules import script_callbacks

    drv = Driver(script_callbacks.callbacks["ui_tabs"][0]()[0][0])
    out = drv.click("modeldoc_export_write", modeldoc_task_id="task(x)", modeldoc_model=DAMAGED,
                    modeldoc_export_component="clip_l", modeldoc_export_precision="fp16")
    assert "Wrote" in out["modeldoc_export_result"], out["modeldoc_export_result"]
    written = list((models / "text_encoder").iterdir())
    assert [p.suffix for p in written] == [".safetensors"]


def test_automatic1111_exports_parts_into_modeldoc_parts(webui):
    module, models = webui
    folders = module.WebUIHost().folders()
    assert folders.for_part("clip_l") == folders.for_part("unet") == str(models / "modeldoc-parts")
    assert folders.for_part("vae") == str(models / "VAE")


def test_the_webui_tab_has_no_heading_of_its_own_and_speaks_of_the_loaded_model(webui):
    from modules import script_callbacks

    blocks = script_callbacks.callbacks["ui_tabs"][0]()[0][0]
    drv = Driver(blocks)
    assert "modeldoc_heading" not in drv.ids  # the WebUI's tab button names it
    assert "With nothing picked, the loaded model's file is inspected." in blocks.blocks[drv.ids["modeldoc_intro"]].value
