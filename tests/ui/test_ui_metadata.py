"""The tab's metadata editor through the real event wiring (gradio 3.41 here, 4.40 in CI): load, edit,
save as a new file or in place, the merge recipe's models resolved to the user's checkpoints; the
loaded model never replaced; only safetensors. Real files: AutoV3 (the data section's hash) stays,
AutoV2 changes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
import torch
from safetensors.torch import save_file
from file_digest import autov3_of, sha256_of
from ui_helpers import Driver

gr = pytest.importorskip("gradio") if not os.environ.get("CI") else __import__("gradio")

from lib_modeldoc.operations.meta import read_metadata  # noqa: E402
from lib_modeldoc.ui.builder import build_ui  # noqa: E402
from lib_modeldoc.ui.host import ClipIds  # noqa: E402
from lib_modeldoc.ui.standalone import FolderHost  # noqa: E402






def write_model(path, metadata=None, seed=0) -> str:
    g = torch.Generator().manual_seed(seed)
    # over 1 MiB + 64 KiB, so AutoV1 (a 64 KiB read at 1 MiB) tells files apart
    tensors = {"model.diffusion_model.out.2.weight": torch.randn(4, 320, 3, 3, generator=g),
               "model.diffusion_model.big.weight": torch.randn(300_000, generator=g), "b": torch.arange(7)}
    save_file(tensors, str(path), metadata=metadata)
    return str(path)


def autov1(path) -> str:
    with open(path, "rb") as f:
        f.seek(0x100000)
        return hashlib.sha256(f.read(0x10000)).hexdigest()[:8]


class LoadedHost(FolderHost):
    """A host with a model in memory (as the WebUI), served from a folder."""

    in_memory = True
    clip_ids = ClipIds.READ
    loaded: str | None = None

    def loaded_checkpoint(self):
        return self.loaded


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "models"
    (root / "Stable-diffusion").mkdir(parents=True)
    parent_a = write_model(root / "Stable-diffusion" / "parent-a.safetensors", seed=1)
    parent_b_sha = "ab" * 32  # a model the user does not have
    recipe = {"type": "webui", "primary_model_hash": sha256_of(parent_a), "secondary_model_hash": parent_b_sha,
              "tertiary_model_hash": None, "interp_method": "Weighted sum", "multiplier": 0.3}
    models = {sha256_of(parent_a): {"name": "parentA.safetensors", "legacy_hash": autov1(parent_a)},
              parent_b_sha: {"name": "lost.safetensors", "legacy_hash": "deadbeef"}}
    write_model(root / "Stable-diffusion" / "merge.safetensors", seed=2, metadata={
        "modelspec.title": "Mix", "modelspec.author": "Ann", "sd_merge_recipe": json.dumps(recipe),
        "sd_merge_models": json.dumps(models), "ss_note": "kept"})
    torch.save({"state_dict": {"a": torch.zeros(2)}}, root / "Stable-diffusion" / "old.ckpt")
    return root


@pytest.fixture
def driver(folder):
    host = LoadedHost(str(folder))
    return Driver(build_ui(host)), host


def merge_path(folder) -> str:
    return str(folder / "Stable-diffusion" / "merge.safetensors")


def test_load_shows_fields_other_keys_and_the_recipe_with_the_users_model(driver, folder):
    drv, host = driver
    out = drv.click("modeldoc_meta_load", modeldoc_model=merge_path(folder))
    assert "Loaded 5 metadata keys of merge.safetensors" in out["modeldoc_meta_status"]
    assert out["modeldoc_meta_title"] == "Mix" and out["modeldoc_meta_author"] == "Ann"
    assert out["modeldoc_meta_license"] == "" and out["modeldoc_meta_description"] == ""
    other = json.loads(out["modeldoc_meta_other"])
    assert set(other) == {"sd_merge_recipe", "sd_merge_models", "ss_note"}  # the fields are not repeated here
    recipe = out["modeldoc_meta_recipe"]
    assert "Weighted sum" in recipe and "0.3" in recipe
    # parent A resolved to the user's file, by hash; the other named as recorded and not found
    label = next(c.label for c in host.checkpoints() if c.path.endswith("parent-a.safetensors"))
    assert f"parentA.safetensors ({sha256_of(os.path.join(folder, 'Stable-diffusion', 'parent-a.safetensors'))[:10]}) → {label}" in recipe
    assert "lost.safetensors" in recipe and "not among your checkpoints" in recipe
    assert out["modeldoc_meta_out_name"] == "merge-meta.safetensors"


class DictHashCache:
    """The WebUI's hash cache as the tab sees it (lookup/store), holding what the WebUI hashed."""

    def __init__(self, known):
        self.known = dict(known)

    def lookup(self, path):
        return self.known.get(path)

    def store(self, path, sha256):
        self.known[path] = sha256


def test_the_recipe_takes_the_webuis_cached_hashes_and_reads_no_file_in_full(folder, monkeypatch):
    """A real WebUI spent 44-50 s hashing 2 GB checkpoints it had already hashed; with the cache the
    candidates are not read, and an input recorded without a legacy hash is found as well."""
    from lib_modeldoc.operations import meta as meta_module

    parent_a = str(folder / "Stable-diffusion" / "parent-a.safetensors")
    models = {sha256_of(parent_a): {"name": "parentA.safetensors"}}  # no legacy_hash: AutoV1 cannot find it
    source = write_model(folder / "Stable-diffusion" / "merge2.safetensors", seed=3,
                         metadata={"sd_merge_models": json.dumps(models)})
    host = LoadedHost(str(folder))
    host.hash_cache = DictHashCache({c.path: sha256_of(c.path) for c in host.checkpoints()})

    def no_full_read(path):
        raise AssertionError(f"{path} hashed in full although the WebUI's cache has it")

    monkeypatch.setattr(meta_module, "_sha256_file", no_full_read)
    out = Driver(build_ui(host)).click("modeldoc_meta_load", modeldoc_model=source)
    label = next(c.label for c in host.checkpoints() if c.path.endswith("parent-a.safetensors"))
    assert f'<td class="modeldoc-ok">{label}</td>' in out["modeldoc_meta_recipe"], out["modeldoc_meta_recipe"]


def test_save_as_new_file_keeps_autov3_changes_autov2_and_never_overwrites(driver, folder):
    drv, host = driver
    source = merge_path(folder)
    before_sha, before_v3 = sha256_of(source), autov3_of(source)
    loaded = drv.click("modeldoc_meta_load", modeldoc_model=source)
    other = json.loads(loaded["modeldoc_meta_other"])
    del other["ss_note"]  # removing a key: take it out of Other keys
    other["my_key"] = "mine"
    given = dict(modeldoc_model=source, modeldoc_meta_title="New title", modeldoc_meta_author="",  # "" removes it
                 modeldoc_meta_license="CC-BY-4.0", modeldoc_meta_other=json.dumps(other),
                 modeldoc_meta_out_name="edited")
    out = drv.click("modeldoc_meta_save", **given)
    result = out["modeldoc_meta_result"]
    new = folder / "Stable-diffusion" / "edited.safetensors"
    assert new.is_file(), result
    assert sha256_of(source) == before_sha  # the source untouched
    assert autov3_of(new) == before_v3 and sha256_of(new) != before_sha
    assert f"AutoV2 {before_sha[:10]} → {sha256_of(new)[:10]}" in result
    assert f"AutoV3 {before_v3[:12]} unchanged" in result
    meta = read_metadata(str(new)).metadata
    assert meta["modelspec.title"] == "New title" and meta["modelspec.license"] == "CC-BY-4.0"
    assert "modelspec.author" not in meta and "ss_note" not in meta and meta["my_key"] == "mine"
    assert json.loads(meta["sd_merge_recipe"])["interp_method"] == "Weighted sum"
    # the same name again: refused, the existing file untouched
    kept = sha256_of(new)
    again = drv.click("modeldoc_meta_save", **{**given, "modeldoc_meta_title": "Other"})["modeldoc_meta_result"]
    assert "modeldoc-error" in again and "already exists" in again
    assert sha256_of(new) == kept


def test_in_place_replaces_the_file_but_never_the_loaded_model(driver, folder):
    drv, host = driver
    source = merge_path(folder)
    before_sha, before_v3 = sha256_of(source), autov3_of(source)
    drv.click("modeldoc_meta_load", modeldoc_model=source)
    host.loaded = source
    refused = drv.click("modeldoc_meta_save", modeldoc_model=source, modeldoc_meta_title="X",
                        modeldoc_meta_in_place=True)["modeldoc_meta_result"]
    assert "modeldoc-error" in refused and "has loaded" in refused and "never replaced in place" in refused
    assert sha256_of(source) == before_sha
    # a hard link to the loaded file is the same file
    alias = folder / "Stable-diffusion" / "alias.safetensors"
    os.link(source, alias)
    drv.click("modeldoc_meta_load", modeldoc_model=str(alias))
    refused = drv.click("modeldoc_meta_save", modeldoc_model=str(alias), modeldoc_meta_title="X",
                        modeldoc_meta_in_place=True)["modeldoc_meta_result"]
    assert "has loaded" in refused and sha256_of(source) == before_sha
    os.unlink(alias)
    host.loaded = None
    drv.click("modeldoc_meta_load", modeldoc_model=source)
    done = drv.click("modeldoc_meta_save", modeldoc_model=source, modeldoc_meta_title="In place",
                     modeldoc_meta_in_place=True)["modeldoc_meta_result"]
    assert "Replaced" in done, done
    assert read_metadata(source).fields["title"] == "In place"
    assert autov3_of(source) == before_v3 and sha256_of(source) != before_sha
    assert not [n for n in os.listdir(folder / "Stable-diffusion") if n.endswith(".partial")]


def test_save_needs_this_files_metadata_loaded_first(driver, folder):
    drv, _ = driver
    source = merge_path(folder)
    before = sha256_of(source)
    out = drv.click("modeldoc_meta_save", modeldoc_model=source, modeldoc_meta_title="X")["modeldoc_meta_result"]
    assert "Load metadata" in out and "modeldoc-error" in out
    drv.click("modeldoc_meta_load", modeldoc_model=str(folder / "Stable-diffusion" / "parent-a.safetensors"))
    out = drv.click("modeldoc_meta_save", modeldoc_model=source, modeldoc_meta_title="X")["modeldoc_meta_result"]
    assert "Load metadata" in out  # the form holds another file's metadata
    assert sha256_of(source) == before and sorted(os.listdir(folder / "Stable-diffusion")) == [
        "merge.safetensors", "old.ckpt", "parent-a.safetensors"]


def test_bad_json_and_other_formats_are_one_line_and_write_nothing(driver, folder):
    drv, _ = driver
    source = merge_path(folder)
    drv.click("modeldoc_meta_load", modeldoc_model=source)
    for text, expected in (("{not json", "not a JSON object"), ("[1]", "not a JSON object"),
                           ('{"a": 1}', "must be text")):
        out = drv.click("modeldoc_meta_save", modeldoc_model=source, modeldoc_meta_other=text)["modeldoc_meta_result"]
        assert "modeldoc-error" in out and expected in out, out
    ckpt = drv.click("modeldoc_meta_load", modeldoc_model=str(folder / "Stable-diffusion" / "old.ckpt"))
    status = ckpt["modeldoc_meta_status"]
    assert "modeldoc-error" in status and "only safetensors files hold metadata" in status
    assert sorted(os.listdir(folder / "Stable-diffusion")) == ["merge.safetensors", "old.ckpt", "parent-a.safetensors"]


def test_a_file_without_metadata_gets_its_first_keys(driver, folder):
    drv, _ = driver
    plain = folder / "Stable-diffusion" / "plain.safetensors"
    shutil.copy(folder / "Stable-diffusion" / "parent-a.safetensors", plain)
    out = drv.click("modeldoc_meta_load", modeldoc_model=str(plain))
    assert "has no metadata yet" in out["modeldoc_meta_status"] and out["modeldoc_meta_other"] == "{}"
    drv.click("modeldoc_meta_save", modeldoc_model=str(plain), modeldoc_meta_title="First",
              modeldoc_meta_trigger_phrase="tok", modeldoc_meta_description="Line one\n  line two\n",
              modeldoc_meta_license="   ")  # blank: no key
    assert read_metadata(str(folder / "Stable-diffusion" / "plain-meta.safetensors")).fields == {
        "title": "First", "trigger_phrase": "tok", "description": "Line one\n  line two\n"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are a POSIX thing")
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    """Opening a FIFO for reading blocks until something writes to it: the tab's job would hang."""
    import threading

    from lib_modeldoc.errors import ModelReadError
    from lib_modeldoc.ui.metadata import require_safetensors

    pipe = tmp_path / "pipe.safetensors"
    os.mkfifo(pipe)
    outcome: list[BaseException | None] = []

    def check() -> None:
        try:
            require_safetensors(str(pipe))
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome.append(exc)

    worker = threading.Thread(target=check, daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # release the blocked open so the thread can end
        with open(pipe, "wb"):
            pass
        worker.join(5)
        pytest.fail("require_safetensors waited on the named pipe")
    assert isinstance(outcome[0], ModelReadError) and "named pipe" in str(outcome[0])
