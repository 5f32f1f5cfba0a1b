"""The WebUI's hash cache: fresh entries reused, stale ones never, written in the WebUI's format."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from lib_modeldoc.analysis.hash_cache import JsonHashCache, checkpoint_title, is_fresh


@pytest.fixture
def library(tmp_path):
    ckpt_dir = tmp_path / "models" / "Stable-diffusion"
    (ckpt_dir / "XL").mkdir(parents=True)
    model = ckpt_dir / "XL" / "m.safetensors"
    model.write_bytes(b"model bytes")
    sha = hashlib.sha256(b"model bytes").hexdigest()
    return ckpt_dir, str(model), sha


def test_titles_are_the_webuis(library, tmp_path):
    ckpt_dir, model, _ = library
    assert checkpoint_title(model, str(ckpt_dir)) == f"checkpoint/XL{os.sep}m.safetensors"
    assert checkpoint_title(str(tmp_path / "elsewhere.safetensors"), str(ckpt_dir)) is None


def test_a_webui_written_entry_is_reused_only_while_fresh(library, tmp_path):
    ckpt_dir, model, sha = library
    cache_file = tmp_path / "cache.json"
    mtime = os.path.getmtime(model)
    cache_file.write_text(json.dumps({"hashes": {f"checkpoint/XL{os.sep}m.safetensors": {"mtime": mtime, "sha256": sha}},
                                      "safetensors-metadata": {"x": 1}}))
    cache = JsonHashCache(str(cache_file), lambda p: checkpoint_title(p, str(ckpt_dir)))
    assert cache.lookup(model) == sha
    os.utime(model, (mtime + 10, mtime + 10))  # the file changed after the entry was made
    assert cache.lookup(model) is None


def test_store_keeps_other_sections_and_is_read_back(library, tmp_path):
    ckpt_dir, model, sha = library
    cache_file = tmp_path / "cache.json"
    cache_file.write_text(json.dumps({"hashes": {"checkpoint/other.ckpt": {"mtime": 1.0, "sha256": "a" * 64}},
                                      "hashes-addnet": {"lora/x": {"mtime": 1.0, "sha256": "b" * 64}}}))
    cache = JsonHashCache(str(cache_file), lambda p: checkpoint_title(p, str(ckpt_dir)))
    cache.store(model, sha)
    data = json.loads(cache_file.read_text())
    assert data["hashes"][f"checkpoint/XL{os.sep}m.safetensors"] == {"mtime": os.path.getmtime(model), "sha256": sha}
    assert data["hashes"]["checkpoint/other.ckpt"]["sha256"] == "a" * 64 and "hashes-addnet" in data
    assert cache.lookup(model) == sha
    assert [n for n in os.listdir(tmp_path) if n.startswith("cache.json-")] == []


def test_unreadable_cache_is_never_overwritten(library, tmp_path):
    ckpt_dir, model, sha = library
    cache_file = tmp_path / "cache.json"
    cache_file.write_text("{broken")
    cache = JsonHashCache(str(cache_file), lambda p: checkpoint_title(p, str(ckpt_dir)))
    assert cache.lookup(model) is None
    cache.store(model, sha)
    assert cache_file.read_text() == "{broken"


def test_store_creates_the_file_and_ignores_paths_without_a_title(library, tmp_path):
    ckpt_dir, model, sha = library
    cache_file = tmp_path / "cache.json"
    cache = JsonHashCache(str(cache_file), lambda p: checkpoint_title(p, str(ckpt_dir)))
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"x")
    cache.store(str(outside), sha)
    assert not cache_file.exists()
    cache.store(model, "not a hash")
    assert not cache_file.exists()
    cache.store(model, sha)
    assert cache.lookup(model) == sha


@pytest.mark.parametrize("entry", [None, [], {"sha256": "A" * 64, "mtime": 9e12}, {"sha256": "a" * 64},
                                   {"sha256": "a" * 63, "mtime": 9e12}, {"sha256": "a" * 64, "mtime": "1"}])
def test_malformed_entries_are_ignored(library, entry):
    _, model, _ = library
    assert is_fresh(entry, model) is None
