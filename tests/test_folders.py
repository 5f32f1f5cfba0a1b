"""Folder scans end on link loops and never open a FIFO: audit, the tab's listing, convert --batch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from lib_modeldoc.io.folders import walk_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX links and FIFOs")


@pytest.fixture
def looped(tmp_path, write_safetensors):
    """models/{a.safetensors, sub/b.safetensors}, links back up (two loops: os.walk goes exponential),
    a link to a sibling folder, a dangling link and a FIFO with a model suffix."""
    models = tmp_path / "models"
    (models / "sub").mkdir(parents=True)
    write_safetensors("models/a.safetensors", {"w": torch.ones(2)})
    write_safetensors("models/sub/b.safetensors", {"w": torch.zeros(3)})
    (models / "sub" / "up").symlink_to("..")
    (models / "sub" / "up2").symlink_to("../..")
    (models / "self").symlink_to(".")
    (models / "again").symlink_to("sub")
    (models / "gone.safetensors").symlink_to("nowhere")
    os.mkfifo(models / "pipe.safetensors")
    return models


def test_walk_enters_each_real_folder_once(looped):
    found = [os.path.relpath(p, looped) for p, _ in walk_files(str(looped))]
    assert sorted(f for f in found if f.endswith("b.safetensors")) == ["again/b.safetensors"] or \
        sorted(f for f in found if f.endswith("b.safetensors")) == ["sub/b.safetensors"]
    assert "a.safetensors" in found and "gone.safetensors" in found and "pipe.safetensors" in found
    assert len(found) < 10


def test_tab_listing_ends_and_lists_regular_files_only(looped):
    from lib_modeldoc.ui.standalone import _scan

    listed = sorted(rel for rel, _ in _scan(str(looped)))
    assert listed in (["a.safetensors", "again/b.safetensors"], ["a.safetensors", "sub/b.safetensors"])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lib_modeldoc", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_audit_ends_on_loops_and_reports_the_odd_entries(looped):
    done = _cli("audit", "--json", str(looped))
    assert done.returncode in (0, 2), done.stderr
    assert "internal error" not in done.stderr
    assert "a.safetensors" in done.stdout and "b.safetensors" in done.stdout
    assert "is a named pipe (FIFO)" in done.stdout + done.stderr


def test_convert_batch_ends_and_skips_what_is_not_a_file(looped, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    done = _cli("convert", "--batch", str(looped), "-o", str(out), "--force")
    assert "internal error" not in done.stderr
    assert "pipe.safetensors: is a named pipe (FIFO), not a regular file" in done.stderr
    written = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, files in os.walk(out) for f in files)
    assert written in (["a.safetensors", "again/b.safetensors"], ["a.safetensors", "sub/b.safetensors"])


def test_every_listing_names_the_same_model_files(looped):
    """The tab, audit / convert --batch and the VAE comparison list one set of model names: ``.sft``
    (Flux's ``ae.sft``) too, even when its bytes do not say safetensors (a truncated download)."""
    from lib_modeldoc.analysis.audit import find_model_files
    from lib_modeldoc.analysis.vae_test import vae_files
    from lib_modeldoc.ui.standalone import _scan

    (looped / "ae.sft").write_bytes(b"\x00" * 64)
    tab = [path for _, path in _scan(str(looped))]
    assert sorted(os.path.basename(p) for p in tab) == ["a.safetensors", "ae.sft", "b.safetensors"]
    assert vae_files(str(looped)) == tab
    # audit and convert --batch also keep the odd entries named as models, to report them
    assert set(tab) < set(find_model_files(looped))
    assert {os.path.basename(p) for p in set(find_model_files(looped)) - set(tab)} == {"gone.safetensors",
                                                                                          "pipe.safetensors"}


def test_convert_batch_reports_a_damaged_sft_file_the_tab_lists(tmp_path, write_safetensors):
    models = tmp_path / "models"
    models.mkdir()
    write_safetensors("models/a.safetensors", {"w": torch.ones(2)})
    (models / "ae.sft").write_bytes(b"\x00" * 64)
    out = tmp_path / "out"
    out.mkdir()
    done = _cli("convert", "--batch", str(models), "-o", str(out), "--force")
    assert "internal error" not in done.stderr
    assert "ae.sft" in done.stderr
    assert (out / "a.safetensors").is_file() and not (out / "ae.safetensors").exists()
