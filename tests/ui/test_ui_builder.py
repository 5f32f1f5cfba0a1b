"""The UI builder with gradio (3.41.2 here; CI also runs it under 4.40): layout, and every button's
real handler run through the event wiring the page uses."""

from __future__ import annotations

import os
import re
import threading
import time

import numpy as np
import pytest
from safetensors import safe_open
from toy_components import CLIP, checkpoint, save_safetensors, standalone_vae, toy_family, toy_values  # noqa: F401
from ui_helpers import Driver, update_value

gr = pytest.importorskip("gradio") if not os.environ.get("CI") else __import__("gradio")

from lib_modeldoc.ui.builder import build_ui  # noqa: E402
from lib_modeldoc.ui.host import ClipIds, LiveClip, Session  # noqa: E402
from lib_modeldoc.ui.standalone import FolderHost  # noqa: E402

DAMAGED = "damaged-merge-sd15.safetensors"


@pytest.fixture
def driver(library):
    host = FolderHost(library)
    return Driver(build_ui(host)), host


def test_layout_verdict_before_chart_before_details_and_actions(driver):
    drv, _ = driver
    for elem_id in ("modeldoc_model", "modeldoc_refresh", "modeldoc_inspect", "modeldoc_verdict", "modeldoc_chart",
                    "modeldoc_details", "modeldoc_metadata", "modeldoc_precision", "modeldoc_prune", "modeldoc_fix_clip",
                    "modeldoc_bake_vae", "modeldoc_convert_preview", "modeldoc_convert_write", "modeldoc_convert_interrupt",
                    "modeldoc_js_value", "modeldoc_js_inspect"):
        assert elem_id in drv.ids, elem_id
    order = [drv.ids[i] for i in ("modeldoc_model", "modeldoc_verdict", "modeldoc_chart", "modeldoc_details", "modeldoc_precision")]
    assert order == sorted(order)
    # standalone: no model in memory, so no "Loaded model" tab
    assert "modeldoc_live_check" not in drv.ids
    model = drv.blocks.blocks[drv.ids["modeldoc_model"]]
    choices = [c[0] if isinstance(c, (list, tuple)) else c for c in model.choices]
    assert choices == [DAMAGED, "sdxl-base-fp16.safetensors", "VAE: sd-vae-fp32.safetensors"]
    # defaults come from the settings section, never from the WebUI's ui-config.json
    assert all(getattr(b, "do_not_save_to_config", False) for b in drv.blocks.blocks.values())


def test_inspect_shows_verdict_chart_details_metadata(driver):
    drv, host = driver
    out = drv.click("modeldoc_inspect", modeldoc_model=DAMAGED)
    assert out["modeldoc_status"] == ""
    assert "Damaged — 1 error, 2 warnings" in out["modeldoc_verdict"]
    assert "modeldoc-seg-ema_unet" in out["modeldoc_chart"]
    assert "embedding_manager.*" in out["modeldoc_details"]
    assert out["modeldoc_metadata"]["sd_merge_recipe"]["interp_method"] == "Add difference"
    assert out["modeldoc_convert_out_name"] == "damaged-merge-sd15-fixed.safetensors"


def test_inspect_any_path_and_bad_input_is_one_line(driver, tmp_path):
    drv, host = driver
    vae = host.vaes()[0].path
    out = drv.click("modeldoc_inspect", modeldoc_model=vae)
    assert "VAE" in out["modeldoc_verdict"]
    missing = os.path.join(host.root, "nope.safetensors")  # inside the served folder: said plainly
    out = drv.click("modeldoc_inspect", modeldoc_model=missing)
    assert out["modeldoc_verdict"] == "" and "no such file" in out["modeldoc_status"] and "modeldoc-error" in out["modeldoc_status"]
    # outside it: refused in one line that does not tell whether the file exists
    outside = tmp_path / "there.safetensors"
    outside.write_bytes(open(vae, "rb").read(200_000))
    for path in (str(outside), str(tmp_path / "nope.safetensors"), "/etc/shadow", "../../../etc/passwd"):
        out = drv.click("modeldoc_inspect", modeldoc_model=path)
        assert out["modeldoc_verdict"] == "" and "modeldoc-error" in out["modeldoc_status"]
        assert "only files in the served model folder can be opened here" in out["modeldoc_status"], path
    out = drv.click("modeldoc_inspect", modeldoc_model="")
    assert "none loaded" in out["modeldoc_status"]


def test_the_right_click_bridge_inspects_a_title(driver):
    drv, _ = driver
    out = drv.click("modeldoc_js_inspect", modeldoc_js_value=DAMAGED)
    assert update_value(out["modeldoc_model"]) == DAMAGED
    assert "Damaged" in out["modeldoc_verdict"]


def test_preview_plan_shows_the_output_size_before_writing(driver, tmp_path):
    drv, host = driver
    folder = host.output_folders()[0]
    before = sorted(os.listdir(folder))
    out = drv.click("modeldoc_convert_preview", modeldoc_model=DAMAGED, modeldoc_convert_out_folder=folder,
                    modeldoc_convert_out_name="x")
    html = out["modeldoc_convert_result"]
    assert "8.20 GB → 2.13 GB" in html and "fixed CLIP position_ids" in html and "dropped ema" in html
    assert os.path.join(folder, "x.safetensors") in html
    assert sorted(os.listdir(folder)) == before
    outside = drv.click("modeldoc_convert_preview", modeldoc_model=DAMAGED, modeldoc_convert_out_folder=str(tmp_path),
                        modeldoc_convert_out_name="x")["modeldoc_convert_result"]
    assert "modeldoc-error" in outside and "writes only into the served model folders" in outside
    bad = drv.click("modeldoc_convert_preview", modeldoc_model="sdxl-base-fp16.safetensors", modeldoc_prune="ema-only",
                    modeldoc_convert_out_folder=folder)
    assert "modeldoc-msg modeldoc-error" in bad["modeldoc_convert_result"]
    assert "“ema-only” needs EMA weights" in bad["modeldoc_convert_result"]


def test_refresh_lists_new_files(driver, library):
    drv, _ = driver
    extra = os.path.join(library, "Stable-diffusion", "copy.safetensors")
    os.link(os.path.join(library, "Stable-diffusion", DAMAGED), extra)
    try:
        out = drv.click("modeldoc_refresh", modeldoc_model=DAMAGED)
        choices = [c[0] if isinstance(c, (list, tuple)) else c for c in out["modeldoc_model"]["choices"]]
        assert "copy.safetensors" in choices
    finally:
        os.remove(extra)


def test_write_converts_lists_and_offers_the_new_file(tmp_path, toy_family):
    values = toy_values()
    flat = checkpoint(values)
    flat["embedding_manager.junk_leftover.weight"] = np.ones((3,), np.float32)  # a named junk group: dropped
    flat[CLIP + "unclaimed.weight"] = np.ones((3,), np.float32)  # under the CLIP prefix: never junk, kept
    models = tmp_path / "models"
    models.mkdir()
    save_safetensors(models / "toy.safetensors", flat)
    host = FolderHost(str(models))
    drv = Driver(build_ui(host))
    assert "toy checkpoint" in drv.click("modeldoc_inspect", modeldoc_model="toy.safetensors")["modeldoc_verdict"]
    out = drv.click("modeldoc_convert_write", modeldoc_model="toy.safetensors", modeldoc_fix_clip=False)
    assert "Wrote" in out["modeldoc_convert_result"], out["modeldoc_convert_result"]
    written = models / "toy-fixed.safetensors"
    assert written.exists()
    with safe_open(str(written), "numpy") as f:
        assert f.get_tensor("model.diffusion_model.middle_block.0.weight").dtype == np.float16
        assert "embedding_manager.junk_leftover.weight" not in f.keys()
        assert CLIP + "unclaimed.weight" in f.keys()
    assert out["modeldoc_convert_load"]["visible"] is False  # the standalone host loads nothing
    assert out["modeldoc_convert_inspect_new"]["visible"] is True
    assert "Listed as “toy-fixed.safetensors”" in out["modeldoc_convert_result"]
    again = drv.click("modeldoc_convert_inspect_new")
    assert "toy-fixed.safetensors" in again["modeldoc_verdict"]
    # the output exists now: a second write refuses without "Overwrite", and says so in one line
    out = drv.click("modeldoc_convert_write", modeldoc_model="toy.safetensors", modeldoc_fix_clip=False)
    assert "modeldoc-error" in out["modeldoc_convert_result"] and "exists" in out["modeldoc_convert_result"]


def test_two_sessions_do_not_share_state(tmp_path, toy_family):
    models = tmp_path / "models"
    models.mkdir()
    save_safetensors(models / "toy.safetensors", checkpoint(toy_values()))
    drv = Driver(build_ui(FolderHost(str(models))))
    other = Driver(drv.blocks)
    wrote = drv.click("modeldoc_convert_write", modeldoc_model="toy.safetensors", modeldoc_fix_clip=False)
    assert "Wrote" in wrote["modeldoc_convert_result"], wrote["modeldoc_convert_result"]
    # what one session wrote is offered to that session only
    assert "toy-fixed.safetensors" in drv.click("modeldoc_convert_inspect_new")["modeldoc_verdict"]
    assert "No model picked" in other.click("modeldoc_convert_inspect_new")["modeldoc_status"]
    mine, theirs = next(iter(drv.state.values())), next(iter(other.state.values()))
    assert mine is not theirs and theirs.written is None


def test_standalone_jobs_report_progress_and_stop_on_interrupt(library):
    host = FolderHost(library)
    session = Session()
    seen = []

    def job(ctx, sess, *inputs):
        for step in range(200):
            if ctx.cancelled():
                return ["stopped at %d" % step]
            ctx.progress(step, 200, "working")
            time.sleep(0.01)
        return ["finished"]

    handler = host.wrap_job(job, 1, 0)
    threading.Timer(0.7, host.interrupt, [session]).start()
    for out in handler("", session):
        seen.append(out[0])
    assert any("modeldoc-progress" in str(s) for s in seen[:-1])
    assert seen[-1].startswith("stopped at")


class MemoryHost(FolderHost):
    """A folder host that pretends to hold a model in memory (the WebUI case)."""

    in_memory = True
    clip_ids = ClipIds.READ
    can_load_models = True

    def __init__(self, folder, loaded):
        super().__init__(folder)
        self.loaded = loaded
        self.fixed = False

    def loaded_checkpoint(self):
        return self.loaded

    def live_clip(self, *, fix):
        if fix:
            self.fixed = True
            return LiveClip(True, "reset 2 positions", {}, fixed=1)
        return LiveClip(True, "shifted at [41, 76]", {"x": (41, 76)})


def test_loaded_model_is_the_default_and_can_be_checked_and_fixed_in_memory(library):
    loaded = os.path.join(library, "Stable-diffusion", DAMAGED)
    host = MemoryHost(library, loaded)
    drv = Driver(build_ui(host))
    assert drv.blocks.blocks[drv.ids["modeldoc_model"]].value == DAMAGED
    out = drv.click("modeldoc_inspect", modeldoc_model="")  # nothing picked: the loaded model
    assert "Damaged" in out["modeldoc_verdict"] and update_value(out["modeldoc_model"]) == DAMAGED
    out = drv.click("modeldoc_inspect_loaded")
    assert "Damaged" in out["modeldoc_verdict"]
    assert "shifted" in drv.click("modeldoc_live_check")["modeldoc_live_result"]
    assert "reset 2 positions" in drv.click("modeldoc_live_fix")["modeldoc_live_result"] and host.fixed
    # the job starter (javascript/modeldoc.js) is told how many inputs to give back
    assert drv.js("modeldoc_convert_write") == "(...args) => modeldoc_start_job(18, ...args)"


@pytest.fixture
def toy_webui(tmp_path, toy_family):
    """A WebUI-layout folder with a toy checkpoint and a toy VAE (tiny, real files)."""
    values = toy_values()
    models = tmp_path / "models"
    for sub in ("Stable-diffusion", "VAE"):
        (models / sub).mkdir(parents=True)
    save_safetensors(models / "Stable-diffusion" / "toy.safetensors", checkpoint(values))
    other = toy_values(seed=1)
    save_safetensors(models / "VAE" / "other-vae.safetensors", standalone_vae(other))
    host = FolderHost(str(models))
    return Driver(build_ui(host)), host, models, other


def test_export_puts_a_vae_into_the_vae_folder(toy_webui):
    drv, host, models, _ = toy_webui
    out = drv.click("modeldoc_export_write", modeldoc_model="toy.safetensors", modeldoc_export_component="vae")
    assert "Wrote" in out["modeldoc_export_result"], out["modeldoc_export_result"]
    with safe_open(str(models / "VAE" / "toy-vae.safetensors"), "numpy") as f:
        assert "encoder.conv_in.weight" in f.keys()  # no checkpoint prefix
    assert "VAE: toy-vae.safetensors" in [c.label for c in host.vaes()]
    assert "Listed as “VAE: toy-vae.safetensors”" in out["modeldoc_export_result"]
    assert out["modeldoc_export_load"]["visible"] is False  # a VAE is not a checkpoint to load
    again = drv.click("modeldoc_export_write", modeldoc_model="toy.safetensors", modeldoc_export_component="vae")
    assert "already exists; tick “Overwrite an existing file” to replace it" in again["modeldoc_export_result"]


def test_replace_bakes_a_vae_from_the_vae_list(toy_webui):
    drv, host, models, other = toy_webui
    preview = drv.click("modeldoc_replace_preview", modeldoc_model="toy.safetensors",
                        modeldoc_replace_from="VAE: other-vae.safetensors")["modeldoc_replace_result"]
    assert "modeldoc-plan" in preview and "toy-new-vae.safetensors" in preview
    out = drv.click("modeldoc_replace_write", modeldoc_model="toy.safetensors",
                    modeldoc_replace_from="VAE: other-vae.safetensors")
    assert "Wrote" in out["modeldoc_replace_result"], out["modeldoc_replace_result"]
    with safe_open(str(models / "Stable-diffusion" / "toy-new-vae.safetensors"), "numpy") as f:
        baked = f.get_tensor("first_stage_model.encoder.conv_in.weight")
    np.testing.assert_array_equal(baked, other["vae"]["encoder.conv_in.weight"])
    missing = drv.click("modeldoc_replace_preview", modeldoc_model="toy.safetensors")["modeldoc_replace_result"]
    assert "pick the file to take the vae from" in missing


def test_build_previews_a_checkpoint_from_parts_and_refuses_misfits(library):
    host = FolderHost(library)
    drv = Driver(build_ui(host))
    out = drv.click("modeldoc_build_preview", modeldoc_build_arch="SD1", modeldoc_build_unet=DAMAGED,
                    modeldoc_build_vae="VAE: sd-vae-fp32.safetensors", modeldoc_build_clip=DAMAGED)
    html = out["modeldoc_build_result"]
    assert "modeldoc-plan" in html and "built-sd1.safetensors" in html and "vae from sd-vae-fp32.safetensors" in html
    assert "→" not in html.split("</div>")[0] and "saves" not in html  # a new file: its size only
    bad = drv.click("modeldoc_build_preview", modeldoc_build_arch="SDXL", modeldoc_build_unet=DAMAGED,
                    modeldoc_build_vae="VAE: sd-vae-fp32.safetensors",
                    modeldoc_build_clip="sdxl-base-fp16.safetensors")["modeldoc_build_result"]
    assert "modeldoc-error" in bad and "unet_sd1" in bad and "unet_sdxl" in bad


# --- know your files: scan, known components, hashes, compare --------------------------------------

def test_ticking_a_read_option_swaps_inspect_for_the_job_button(toy_webui):
    drv, *_ = toy_webui
    out = drv.click("modeldoc_scan", "change", modeldoc_scan=True)
    assert out["modeldoc_inspect"]["visible"] is False and out["modeldoc_inspect_deep"]["visible"] is True
    assert out["modeldoc_inspect_interrupt"]["visible"] is True
    out = drv.click("modeldoc_identify", "change", modeldoc_scan=False, modeldoc_identify=False)
    assert out["modeldoc_inspect"]["visible"] is True and out["modeldoc_inspect_deep"]["visible"] is False


def test_scan_finds_a_planted_nan_and_shows_the_scan_section(toy_webui):
    drv, host, models, _ = toy_webui
    values = toy_values()
    values["unet"][next(iter(values["unet"]))].flat[3] = np.nan
    bad = save_safetensors(models / "Stable-diffusion" / "nan.safetensors", checkpoint(values))
    out = drv.click("modeldoc_inspect_deep", modeldoc_model=str(bad), modeldoc_scan=True)
    assert out["modeldoc_status"] == "" and out["modeldoc_inspect_progress"] == ""
    assert "NaN or infinite values" in out["modeldoc_verdict"] and "Damaged" in out["modeldoc_verdict"]
    details = out["modeldoc_details"]
    assert "values.nonfinite" in details and "Values scan" in details and "Offending tensors" in details
    assert "NaN/Inf" in details and "Known components" not in details
    clean = drv.click("modeldoc_inspect_deep", modeldoc_model="toy.safetensors", modeldoc_scan=True)
    assert "No NaN, Inf, all-zero or huge weights." in clean["modeldoc_details"]


def test_identify_shows_the_toolkit_metric_and_fingerprints(toy_webui):
    drv, *_ = toy_webui
    out = drv.click("modeldoc_inspect_deep", modeldoc_model="toy.safetensors", modeldoc_identify=True)
    assert "Model-toolkit metric (UNET/VAE/CLIP)" in out["modeldoc_verdict"]
    details = out["modeldoc_details"]
    assert "Known components" in details and "fingerprint (SHA-256 of fp16 values)" in details
    assert "Values scan" not in details


def test_an_interrupted_read_stops_with_one_line(toy_webui):
    from lib_modeldoc.errors import Cancelled
    from lib_modeldoc.ui import actions

    class Stopped:
        def progress(self, done, total, message):
            raise AssertionError("no progress after an interrupt")

        def cancelled(self):
            return True

    drv, host, *_ = toy_webui
    with pytest.raises(Cancelled, match="hashing: interrupted"):
        actions.hashes(host.checkpoints()[0].path, Stopped())
    with pytest.raises(Cancelled):
        actions.inspect_file(host.checkpoints()[0].path, scan=True, progress=actions.job_progress(Stopped(), "inspect"))


def test_an_interrupted_write_stops_through_its_progress_and_leaves_nothing(toy_webui):
    """The tab stops a write the way it stops a read: the job's progress raises ``Cancelled``."""
    from lib_modeldoc.errors import Cancelled
    from lib_modeldoc.ui import actions

    class StopsMidway:
        def __init__(self):
            self.calls = 0

        def progress(self, done, total, message):
            pass

        def cancelled(self):
            self.calls += 1
            return self.calls >= 3

    _, host, models, _ = toy_webui
    source = str(models / "Stable-diffusion" / "toy.safetensors")
    request = actions.ConvertRequest(source, verify=False)
    job = StopsMidway()
    with pytest.raises(Cancelled, match=f"^{re.escape(request.output)}: interrupted; nothing was written$"):
        actions.run(request, job, host)
    assert job.calls == 3
    assert sorted(p.name for p in (models / "Stable-diffusion").iterdir()) == ["toy.safetensors"]


def test_hashes_of_the_picked_file_with_civitai_forms(toy_webui):
    import hashlib

    drv, host, models, _ = toy_webui
    out = drv.click("modeldoc_hash", modeldoc_model="toy.safetensors")["modeldoc_hash_result"]
    sha = hashlib.sha256((models / "Stable-diffusion" / "toy.safetensors").read_bytes()).hexdigest()
    assert f'data-sha256="{sha}"' in out and sha.upper() in out and sha[:10] in out
    for label in ("SHA-256", "AutoV1", "AutoV2", "AutoV3", "CRC32", "as Civitai shows it"):
        assert label in out
    assert "none loaded" in drv.click("modeldoc_hash", modeldoc_model="")["modeldoc_hash_result"]


def test_hashes_show_blake3_only_when_it_was_computed(toy_webui, monkeypatch):
    """Issue 9.16: no "BLAKE3 — blake3 not installed" row; the row appears when the package computes it."""
    import hashlib
    import sys
    import types

    drv, _, models, _ = toy_webui
    monkeypatch.setitem(sys.modules, "blake3", None)  # the package absent
    out = drv.click("modeldoc_hash", modeldoc_model="toy.safetensors")["modeldoc_hash_result"]
    assert "BLAKE3" not in out and "not installed" not in out and "SHA-256" in out
    # a stand-in with blake3's interface (blake3.blake3() -> update/hexdigest), 32-byte digest
    fake = types.ModuleType("blake3")
    fake.blake3 = lambda: hashlib.blake2s()
    monkeypatch.setitem(sys.modules, "blake3", fake)
    out = drv.click("modeldoc_hash", modeldoc_model="toy.safetensors")["modeldoc_hash_result"]
    digest = hashlib.blake2s((models / "Stable-diffusion" / "toy.safetensors").read_bytes()).hexdigest()
    assert "BLAKE3" in out and digest in out


def test_compare_shows_a_table_per_component_and_blocks_collapsed(toy_webui):
    drv, host, models, other = toy_webui
    values = toy_values()
    values["vae"] = other["vae"]
    save_safetensors(models / "Stable-diffusion" / "toy-other-vae.safetensors", checkpoint(values))
    host.refresh()
    out = drv.click("modeldoc_compare", modeldoc_model="toy.safetensors",
                    modeldoc_compare_other="toy-other-vae.safetensors")["modeldoc_compare_result"]
    assert 'data-identical="false"' in out and "Per component" in out
    assert "<td>UNet</td><td>identical</td>" in out and "<td>VAE</td><td>different</td>" in out
    assert "<details><summary>VAE:" in out
    same = drv.click("modeldoc_compare", modeldoc_model="toy.safetensors",
                     modeldoc_compare_other="VAE: other-vae.safetensors")["modeldoc_compare_result"]
    assert "Only in A" in same
    assert "pick the second model" in drv.click("modeldoc_compare", modeldoc_model="toy.safetensors")["modeldoc_compare_result"]
    assert "different second model" in drv.click("modeldoc_compare", modeldoc_model="toy.safetensors",
                                                 modeldoc_compare_other="toy.safetensors")["modeldoc_compare_result"]
