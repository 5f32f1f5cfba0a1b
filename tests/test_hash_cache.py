"""The WebUI's hash cache: fresh entries reused, stale ones never, written in the WebUI's format."""

from __future__ import annotations

import hashlib
import json
import os
import zlib

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


class _Job:
    def progress(self, done, total, message):
        pass

    def cancelled(self):
        return False


def _safetensors(path, payload: bytes) -> str:
    header = json.dumps({"w": {"dtype": "U8", "shape": [len(payload)], "data_offsets": [0, len(payload)]}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + payload)
    return str(path)


def test_compute_hashes_takes_a_fresh_webui_sha256_and_still_computes_autov3(tmp_path):
    """The tab's "Compute hashes" with the WebUI's cache: one SHA-256 stream, said where it came from."""
    from lib_modeldoc.ui import actions

    ckpt_dir = tmp_path / "Stable-diffusion"
    ckpt_dir.mkdir()
    model = _safetensors(ckpt_dir / "m.safetensors", bytes(range(256)) * 40)
    data = open(model, "rb").read()
    start = 8 + int.from_bytes(data[:8], "little")
    cache = JsonHashCache(str(tmp_path / "cache.json"), lambda p: checkpoint_title(p, str(ckpt_dir)))

    first = actions.hashes(model, _Job(), cache)  # nothing cached: computed, and given to the WebUI
    sha = hashlib.sha256(data).hexdigest()
    assert f'data-sha256="{sha}"' in first and "hash cache" not in first
    assert cache.lookup(model) == sha
    autov3 = hashlib.sha256(data[start:]).hexdigest()[:12]
    assert autov3 in first

    stored = json.loads(open(tmp_path / "cache.json").read())
    stored["hashes"][checkpoint_title(model, str(ckpt_dir))]["sha256"] = "ef" * 32  # what the WebUI says now
    open(tmp_path / "cache.json", "w").write(json.dumps(stored))
    again = actions.hashes(model, _Job(), cache)
    assert 'data-sha256="' + "ef" * 32 + '"' in again and "from the WebUI's hash cache" in again
    assert autov3 in again and f"{zlib.crc32(data):08x}" in again

    os.utime(model, (os.path.getmtime(model) + 100,) * 2)  # changed since: the cache is not used
    fresh = actions.hashes(model, _Job(), cache)
    assert f'data-sha256="{sha}"' in fresh and "hash cache" not in fresh
