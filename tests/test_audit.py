"""audit: one row per model file, duplicate files and components, damaged files listed, never fatal."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from lib_modeldoc.analysis.audit import audit_folder, find_model_files
from lib_modeldoc.cli import main
from lib_modeldoc.commands.audit_cmd import render_audit
from toy_components import save_safetensors
from vae_samples import write_sparse_vae, write_vae_pt


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A model folder as users keep them: copies, one VAE in three forms, junk, a damaged file."""
    root = tmp_path_factory.mktemp("models")
    (root / "VAE").mkdir()
    (root / "Stable-diffusion" / "old").mkdir(parents=True)
    (root / ".cache").mkdir()
    write_vae_pt(root / "VAE" / "anime.vae.pt")  # float32 small tensors, torch pickle
    write_sparse_vae(root / "VAE" / "anime-fp16.safetensors", dtype="F16")
    write_sparse_vae(root / "VAE" / "other.vae.safetensors", dtype="F16", seed=1)  # another VAE
    emb = {"emb_params": np.random.default_rng(3).standard_normal((2, 768)).astype(np.float32)}
    save_safetensors(root / "Stable-diffusion" / "style.safetensors", emb)
    shutil.copyfile(root / "Stable-diffusion" / "style.safetensors", root / "Stable-diffusion" / "old" / "style.safetensors")
    save_safetensors(root / "Stable-diffusion" / "noext", {"emb_params": np.zeros((1, 768), np.float32)})
    with open(root / "Stable-diffusion" / "broken.safetensors", "wb") as f:
        f.write(b"\x40\x00\x00\x00\x00\x00\x00\x00{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}")
    (root / "Stable-diffusion" / "notes.txt").write_text("not a model\n")
    (root / "Stable-diffusion" / "preview.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    shutil.copyfile(root / "Stable-diffusion" / "style.safetensors", root / ".cache" / "hidden.safetensors")
    return root


def test_finds_model_files_by_suffix_or_bytes(library):
    found = [os.path.relpath(p, library) for p in find_model_files(library)]
    assert found == [
        "Stable-diffusion/broken.safetensors", "Stable-diffusion/noext", "Stable-diffusion/style.safetensors",
        "Stable-diffusion/old/style.safetensors", "VAE/anime-fp16.safetensors", "VAE/anime.vae.pt",
        "VAE/other.vae.safetensors",
    ]


@pytest.fixture(scope="module")
def audited(library):
    return audit_folder(library, workers=2)


def test_rows_duplicates_and_errors(library, audited):
    result = audited
    rel = {os.path.relpath(r.path, library): r for r in result.files}
    assert set(rel) == {"Stable-diffusion/noext", "Stable-diffusion/style.safetensors",
                        "Stable-diffusion/old/style.safetensors", "VAE/anime-fp16.safetensors",
                        "VAE/anime.vae.pt", "VAE/other.vae.safetensors"}
    assert rel["VAE/anime.vae.pt"].architecture == "VAE" and rel["VAE/anime.vae.pt"].format == "ckpt"
    assert rel["Stable-diffusion/style.safetensors"].architecture == "Embedding"
    assert rel["VAE/anime.vae.pt"].size_bytes == os.path.getsize(library / "VAE" / "anime.vae.pt")
    files = [d for d in result.duplicates if d.kind == "file"]
    components = [d for d in result.duplicates if d.kind == "component"]
    assert [[os.path.relpath(p, library) for p in d.paths] for d in files] == [
        ["Stable-diffusion/old/style.safetensors", "Stable-diffusion/style.safetensors"]]
    with open(library / "Stable-diffusion" / "style.safetensors", "rb") as f:
        assert files[0].digest == hashlib.sha256(f.read()).hexdigest()
    assert [(d.component, [os.path.relpath(p, library) for p in d.paths]) for d in components] == [
        ("vae", ["VAE/anime-fp16.safetensors", "VAE/anime.vae.pt"])]
    assert [os.path.relpath(e.path, library) for e in result.errors] == ["Stable-diffusion/broken.safetensors"]
    assert "\n" not in result.errors[0].message and "broken.safetensors" in result.errors[0].message


def test_cli_json_csv_hashes_and_exit_0(library, tmp_path, capsys):
    out_csv = tmp_path / "audit.csv"
    assert main(["audit", str(library), "--json", "--csv", str(out_csv), "--hashes"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"files", "duplicates", "errors"}
    row = data["files"][0]
    assert set(row) >= {"path", "architecture", "size_bytes", "pruned_size_bytes", "findings"}
    assert all(isinstance(f, str) for r in data["files"] for f in r["findings"])
    assert {d["kind"] for d in data["duplicates"]} == {"file", "component"}
    assert [d["component"] for d in data["duplicates"] if d["kind"] == "component"] == ["vae"]
    assert len(data["errors"]) == 1 and set(data["errors"][0]) == {"path", "message"}
    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7
    broken = [r for r in rows if r["path"].endswith("broken.safetensors")][0]
    assert broken["error"] and not broken["architecture"]
    first = [r for r in rows if r["path"].endswith("old/style.safetensors")][0]
    assert first["duplicate_of"] == ""  # the first path of the group (sorted) is the one kept
    original = [r for r in rows if r["path"].endswith("Stable-diffusion/style.safetensors")
                and "/old/" not in r["path"]][0]
    assert original["duplicate_of"].endswith("old/style.safetensors")
    by_path = {os.path.relpath(r["path"], library): r for r in data["files"]}
    with open(library / "VAE" / "anime.vae.pt", "rb") as f:
        assert by_path["VAE/anime.vae.pt"]["hashes"]["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert by_path["VAE/anime.vae.pt"]["hashes"]["autov3"] is None
    assert rows[0]["sha256"]


def test_text_report(audited):
    text = render_audit(audited)
    assert "6 model files" in text and "1 unreadable" in text
    assert "identical files" in text and "same vae" in text and "Unreadable:" in text


def test_not_a_folder_is_exit_2(tmp_path, capsys):
    assert main(["audit", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("modeldoc: error: ") and err.count("\n") == 1


def test_links_are_followed_once_and_loops_end(tmp_path):
    save_safetensors(tmp_path / "a.safetensors", {"emb_params": np.zeros((1, 768), np.float32)})
    os.symlink(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    os.symlink(tmp_path, tmp_path / "loop")
    (tmp_path / "cache.pkl").write_bytes(b"\x80\x04N.")  # a pickle, but not a torch file
    assert find_model_files(tmp_path) == [str(tmp_path / "a.safetensors")]
