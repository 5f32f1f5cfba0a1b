"""The tab's "Test the VAE" box: the same job as ``inspect --vae-test``, with the decoded image shown."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest
from ui_helpers import Driver

gr = pytest.importorskip("gradio") if not os.environ.get("CI") else __import__("gradio")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "vae"))
from vae_support import tiny_state, write_vae  # noqa: E402

from lib_modeldoc.ui.builder import build_ui  # noqa: E402
from lib_modeldoc.ui.standalone import FolderHost  # noqa: E402

HOT = "decoder.up.1.block.0.conv1"


@pytest.fixture
def vae_webui(tmp_path, monkeypatch):
    from lib_modeldoc.ui import actions

    monkeypatch.setattr(actions, "VAE_TEST_SIZE", 32)  # tiny VAEs, small image: CI has two cores
    models = tmp_path / "models"
    for sub in ("Stable-diffusion", "VAE"):
        (models / sub).mkdir(parents=True)
    state = tiny_state()
    hot = dict(state, **{f"{HOT}.weight": state[f"{HOT}.weight"] * 1e5, f"{HOT}.bias": state[f"{HOT}.bias"] * 1e5})
    path = write_vae(models / "Stable-diffusion" / "hot.safetensors", hot, prefix="first_stage_model.")
    write_vae(models / "VAE" / "fine.safetensors", state)
    return Driver(build_ui(FolderHost(str(models)))), path


def test_ticking_test_the_vae_makes_inspect_a_job(vae_webui):
    drv, _ = vae_webui
    out = drv.click("modeldoc_vae_test", "change", modeldoc_vae_test=True)
    assert out["modeldoc_inspect"]["visible"] is False and out["modeldoc_inspect_deep"]["visible"] is True


def test_the_vae_test_names_the_overflowing_layer_shows_the_images_and_what_passes(vae_webui):
    drv, path = vae_webui
    out = drv.click("modeldoc_inspect_deep", modeldoc_model=path, modeldoc_vae_test=True)
    assert out["modeldoc_status"] == "", out["modeldoc_status"]
    assert "overflows in fp16" in out["modeldoc_verdict"] and HOT in out["modeldoc_verdict"]
    details = out["modeldoc_details"]
    assert "vae.fp16_overflow" in details and "VAE test (SD VAE, 32x32" in details
    assert 'src="data:image/png;base64,' in details
    assert "fine.safetensors: PSNR" in details and "passes" in details  # the VAE folder, compared
    assert "To use one of the VAEs that pass (fine.safetensors)" in details and "Bake in a VAE" in details


def test_the_vae_test_runs_on_the_hosts_device(tmp_path):
    from lib_modeldoc.ui import actions

    host = FolderHost(str(tmp_path))
    assert actions.vae_test_options(host).device == "cpu"  # the standalone server: the CPU
    host.compute_device = lambda: "cuda:0"  # what a WebUI on a GPU reports
    options = actions.vae_test_options(host)
    assert options.device == "cuda:0" and options.size == actions.VAE_TEST_SIZE
