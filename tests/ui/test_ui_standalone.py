"""``python -m lib_modeldoc serve``: prints its URL, keeps serving, opens on a sample library."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest
from ui_helpers import free_port

from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.samples import write_demo_sample
from lib_modeldoc.ui.standalone import FolderHost, write_sample_library

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _serve(args, env=None, wait=90.0):
    """Start ``serve``; returns (process, first line) once it prints its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "lib_modeldoc", "serve", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + wait
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("Model Doctor is running on "):
            return proc, line.rstrip()
    proc.kill()
    proc.wait(10)
    pytest.fail("serve did not print its URL:\n" + "\n".join(lines))


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def test_serve_prints_the_url_keeps_running_and_opens_on_the_sample_library(tmp_path):
    port = free_port()
    env = dict(os.environ, TMPDIR=str(tmp_path), GRADIO_ANALYTICS_ENABLED="False")
    proc, line = _serve(["--port", str(port)], env=env)
    try:
        library = tmp_path / "modeldoc-samples" / "library"
        assert line == f"Model Doctor is running on http://127.0.0.1:{port}/ (models: {library}); press Ctrl+C to stop"
        time.sleep(0.5)
        assert proc.poll() is None  # still serving
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as page:
            assert page.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=20) as config:
            assert b"modeldoc_verdict" in config.read()
        assert sorted(os.listdir(library / "Stable-diffusion")) == ["damaged-merge-sd15.safetensors",
                                                                    "sdxl-base-fp16.safetensors"]
    finally:
        _stop(proc)


def test_serve_a_models_folder(tmp_path):
    write_demo_sample(str(tmp_path))
    port = free_port()
    proc, line = _serve(["--models", str(tmp_path), "--port", str(port), "--host", "127.0.0.1"])
    try:
        assert f"http://127.0.0.1:{port}/" in line and str(tmp_path) in line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=20) as config:
            assert b"damaged-merge-sd15.safetensors" in config.read()
    finally:
        _stop(proc)


def test_serve_a_missing_folder_is_one_line_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lib_modeldoc", "serve", "--models", str(tmp_path / "nope")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == f"modeldoc: error: {tmp_path / 'nope'}: not a folder (--models takes a folder of model files)\n"


def test_sample_library_is_real_size_sparse_and_identified(tmp_path):
    folder = write_sample_library(str(tmp_path))
    found = {}
    for sub in ("Stable-diffusion", "VAE"):
        for name in os.listdir(os.path.join(folder, sub)):
            path = os.path.join(folder, sub, name)
            found[name] = inspect_model(path).architecture
            assert os.stat(path).st_blocks * 512 < 2_000_000  # sparse: a few hundred KB on disk
    assert found == {"damaged-merge-sd15.safetensors": "SD1", "sdxl-base-fp16.safetensors": "SDXL",
                     "sd-vae-fp32.safetensors": "VAE"}


def test_folder_host_lists_webui_layout_and_flat_folders(tmp_path):
    host = FolderHost(write_sample_library(str(tmp_path / "webui")))
    assert [c.label for c in host.checkpoints()] == ["damaged-merge-sd15.safetensors", "sdxl-base-fp16.safetensors"]
    assert [c.label for c in host.vaes()] == ["VAE: sd-vae-fp32.safetensors"]
    assert host.folders().vae.endswith("VAE") and host.resolve("sdxl-base-fp16.safetensors").endswith(
        os.path.join("Stable-diffusion", "sdxl-base-fp16.safetensors"))
    flat = tmp_path / "flat"
    flat.mkdir()
    write_demo_sample(str(flat))
    (flat / "model.vae.safetensors").write_bytes(b"")
    (flat / "notes.txt").write_text("x")
    host = FolderHost(str(flat))
    assert [c.label for c in host.checkpoints()] == ["damaged-merge-sd15.safetensors"]
    assert [c.label for c in host.vaes()] == ["VAE: model.vae.safetensors"]
    assert host.loaded_checkpoint() is None and not host.live_clip(fix=False).supported


def test_sample_library_opens_on_the_damaged_merge(monkeypatch, tmp_path):
    import lib_modeldoc.ui.standalone as standalone

    monkeypatch.setattr(standalone, "default_library", lambda: str(tmp_path / "library"))
    blocks, host = standalone.build_standalone(None)
    assert host.start_model == str(tmp_path / "library" / "Stable-diffusion" / "damaged-merge-sd15.safetensors")
    picker = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "modeldoc_model")
    assert picker.value and "damaged-merge-sd15" in picker.value
    assert inspect_model(host.start_model).has("clip.position_ids.offset")
    # A user's own folder opens with nothing picked.
    _, own = standalone.build_standalone(str(tmp_path / "library"))
    assert own.start_model is None
