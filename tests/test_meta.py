"""``meta``: view and edit safetensors metadata; tensors byte-identical, AutoV3 unchanged, sources safe."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct

import pytest
import torch
from safetensors import safe_open
from file_digest import sha256_of
from safetensors.torch import save_file

from lib_modeldoc.errors import OutputError, PlanError
from lib_modeldoc.operations.meta import MergeInput, MetadataEdit, edit_metadata, read_metadata, resolve_merge_inputs





def data_section(path) -> bytes:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        f.seek(8 + n)
        return f.read()


def autov1(path) -> str:
    with open(path, "rb") as f:
        f.seek(0x100000)
        return hashlib.sha256(f.read(0x10000)).hexdigest()[:8]


@pytest.fixture
def model(tmp_path):
    """A small real safetensors model with a merge recipe naming a file of the user's."""

    def write(name="merge.safetensors", metadata=None, seed=0):
        g = torch.Generator().manual_seed(seed)
        tensors = {"model.diffusion_model.out.2.weight": torch.randn(4, 320, 3, 3, generator=g),
                   "b": torch.arange(7, dtype=torch.int64), "c": torch.randn(3, generator=g).half()}
        path = tmp_path / name
        save_file(tensors, str(path), metadata=metadata)
        return str(path)

    return write


def test_view_decodes_fields_and_merge_recipe(model, cli):
    sha = "ab" * 32
    recipe = {"type": "webui", "primary_model_hash": sha, "secondary_model_hash": None,
              "interp_method": "Weighted sum", "multiplier": 0.3}
    models = {sha: {"name": "base-v1.safetensors", "legacy_hash": "1234abcd", "sd_merge_recipe": None}}
    path = model(metadata={"modelspec.title": "Mix", "modelspec.author": "Ann", "other": "x",
                           "sd_merge_recipe": json.dumps(recipe), "sd_merge_models": json.dumps(models)})
    view = read_metadata(path)
    assert view.fields == {"title": "Mix", "author": "Ann"}
    assert view.merge_recipe["interp_method"] == "Weighted sum"
    assert [(m.sha256, m.name, m.legacy_hash) for m in view.merge_models] == [(sha, "base-v1.safetensors", "1234abcd")]

    code, out, err = cli("meta", path)
    assert code == 0 and not err
    assert "  title   Mix\n  author  Ann" in out
    assert f"primary_model_hash: {sha[:10]} (base-v1.safetensors)" in out
    code, out, _ = cli("meta", path, "--json")
    data = json.loads(out)
    assert data["metadata"]["other"] == "x" and data["merge_models"][0]["name"] == "base-v1.safetensors"


def test_damaged_recipe_is_shown_raw_not_fatal(model, cli):
    path = model(metadata={"sd_merge_recipe": "{not json", "sd_merge_models": "[" * 100_000})
    view = read_metadata(path)
    assert view.merge_recipe is None and set(view.undecodable) == {"sd_merge_recipe", "sd_merge_models"}
    code, out, _ = cli("meta", path)
    assert code == 0 and "Not valid JSON" in out


def test_edit_copies_tensors_byte_for_byte_and_keeps_autov3(model, tmp_path, cli):
    src = model(metadata={"modelspec.title": "Old", "junk": "1"})
    before = sha256_of(src)
    out = str(tmp_path / "out.safetensors")
    code, text, err = cli("meta", src, "--title", "新しい", "--set", "modelspec.license=CC0", "--delete", "junk", "-o", out)
    assert code == 0, err
    assert sha256_of(src) == before  # the source is untouched
    assert data_section(out) == data_section(src)
    with safe_open(out, "pt") as f:
        assert f.metadata() == {"modelspec.title": "新しい", "modelspec.license": "CC0"}
        with safe_open(src, "pt") as g:
            for key in g.keys():
                assert torch.equal(f.get_tensor(key), g.get_tensor(key))
    autov3 = hashlib.sha256(data_section(src)).hexdigest()[:12]
    assert f"AutoV3  {autov3}" in text
    assert f"AutoV2  {before[:10]} -> {sha256_of(out)[:10]}" in text
    code, text, _ = cli("hash", out, "--json")
    assert json.loads(text)["autov3"] == autov3


def test_hashes_of_a_copy_in_many_blocks_are_the_files(model, tmp_path, monkeypatch):
    """The three hashes run in worker threads over a ring of blocks: with 1000-byte blocks (47 of them,
    more than the ring holds) every byte still reaches each hash once, in order."""
    from lib_modeldoc.operations import meta as meta_module

    monkeypatch.setattr(meta_module, "_COPY_CHUNK", 1000)  # not a divisor of the data size either
    src = model(metadata={"a": "b"})
    done = []
    result = edit_metadata(src, tmp_path / "o.safetensors", MetadataEdit(set={"k": "v"}),
                           progress=lambda d, t, m: done.append((d, t)))
    assert len(done) > 4 and done[-1][0] == done[-1][1] == len(data_section(src))
    assert result.sha256_before == sha256_of(src) and result.sha256_after == sha256_of(result.output)
    assert result.autov3 == hashlib.sha256(data_section(src)).hexdigest()
    assert data_section(result.output) == data_section(src)


def test_result_reports_hashes_and_header_is_aligned(model, tmp_path):
    src = model(metadata={"a": "b"})
    result = edit_metadata(src, tmp_path / "o.safetensors", MetadataEdit(set={"k": "v" * 13}))
    assert result.sha256_before == sha256_of(src) and result.sha256_after == sha256_of(result.output)
    assert result.autov3 == hashlib.sha256(data_section(src)).hexdigest()
    with open(result.output, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
    assert n % 8 == 0 and os.path.getsize(result.output) == result.size_bytes


def test_removing_all_metadata_drops_the_metadata_block(model, tmp_path):
    src = model(metadata={"only": "one"})
    out = edit_metadata(src, tmp_path / "o.safetensors", MetadataEdit(delete=("only",))).output
    with open(out, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        assert b"__metadata__" not in f.read(n)
    assert read_metadata(out).metadata == {}


def test_in_place_only_with_the_flag(model, cli):
    src = model(metadata={"modelspec.title": "Old"})
    before = sha256_of(src)
    code, _, err = cli("meta", src, "--title", "New", "-o", src)
    assert code == 2 and err.startswith("modeldoc: error:") and "same file as the source" in err
    code, _, err = cli("meta", src, "--title", "New", "-o", src, "--overwrite")
    assert code == 2 and sha256_of(src) == before
    code, _, err = cli("meta", src, "--title", "New", "--in-place")
    assert code == 0, err
    assert read_metadata(src).fields == {"title": "New"}
    assert [n for n in os.listdir(os.path.dirname(src)) if n.endswith(".partial")] == []


def test_existing_output_needs_overwrite(model, tmp_path, cli):
    src = model()
    other = model("other.safetensors", seed=1)
    before = sha256_of(other)
    code, _, err = cli("meta", src, "--title", "T", "-o", other)
    assert code == 2 and "already exists" in err and sha256_of(other) == before
    assert cli("meta", src, "--title", "T", "-o", other, "--overwrite")[0] == 0
    assert read_metadata(other).fields == {"title": "T"}


@pytest.mark.parametrize("argv, message", [
    (["--set", "novalue"], "KEY=VALUE"),
    (["--delete", "absent", "-o", "{out}"], "no key 'absent'"),
    (["--title", "x"], "-o OUT, or --in-place"),
    (["-o", "{out}"], "nothing to change"),
])
def test_usage_mistakes_are_one_line(model, tmp_path, cli, argv, message):
    src = model()
    out = str(tmp_path / "o.safetensors")
    code, _, err = cli("meta", src, *[a.replace("{out}", out) for a in argv])
    assert code == 2 and message in err and err.count("\n") == 1
    assert not os.path.exists(out)


def test_ckpt_has_no_metadata_to_edit(tmp_path, cli):
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, str(path))
    code, _, err = cli("meta", path)
    assert code == 2 and "convert it to .safetensors first" in err


def test_from_json_replaces_then_sets(model, tmp_path, cli):
    src = model(metadata={"gone": "1"})
    raw = tmp_path / "m.json"
    raw.write_text(json.dumps({"kept": "2", "ss_tag_frequency": "{}"}), encoding="utf-8")
    out = tmp_path / "o.safetensors"
    assert cli("meta", src, "--from-json", raw, "--set", "x=3", "-o", out)[0] == 0
    assert read_metadata(out).metadata == {"kept": "2", "ss_tag_frequency": "{}", "x": "3"}
    raw.write_text(json.dumps({"n": 5}), encoding="utf-8")
    code, _, err = cli("meta", src, "--from-json", raw, "-o", tmp_path / "p.safetensors")
    assert code == 2 and "JSON object of strings" in err


def test_lone_surrogate_value_is_refused(model, tmp_path):
    with pytest.raises(PlanError):
        edit_metadata(model(), tmp_path / "o.safetensors", MetadataEdit(set={"k": "\udcff"}))
    assert not os.path.exists(tmp_path / "o.safetensors")


def test_output_folder_missing_is_refused(model, tmp_path):
    with pytest.raises(OutputError):
        edit_metadata(model(), tmp_path / "no" / "o.safetensors", MetadataEdit(set={"k": "v"}))


def big_model(tmp_path, name, seed):
    """Over 1.1 MiB, so its AutoV1 window holds real bytes."""
    g = torch.Generator().manual_seed(seed)
    path = tmp_path / name
    save_file({"w": torch.randn(400_000, generator=g)}, str(path))
    return str(path)


def test_merge_inputs_resolve_by_autov1_then_sha256(tmp_path, cli, model):
    lib = tmp_path / "models"
    lib.mkdir()
    a = big_model(lib, "a.safetensors", 1)
    b = big_model(lib, "b.safetensors", 2)
    big_model(lib, "c.safetensors", 3)
    missing = "cd" * 32
    inputs = [MergeInput(sha256_of(a), "A", autov1(a)), MergeInput(sha256_of(b), "B", autov1(b)),
              MergeInput(missing, "gone", "00000000"),
              MergeInput(sha256_of(b)[:-1] + "0", "same AutoV1, other file", autov1(b))]
    resolved = resolve_merge_inputs(inputs, [os.path.join(lib, n) for n in sorted(os.listdir(lib))])
    assert [r.found for r in resolved] == [a, b, None, None]

    models = {m.sha256: {"name": m.name, "legacy_hash": m.legacy_hash, "sd_merge_recipe": None} for m in inputs}
    merged = model(metadata={"sd_merge_models": json.dumps(models)})
    code, out, _ = cli("meta", merged, "--models", lib, "--json")
    found = {m["name"]: m["found"] for m in json.loads(out)["merge_models"]}
    assert found == {"A": a, "B": b, "gone": None, "same AutoV1, other file": None}


def test_merge_inputs_take_a_cached_sha256_without_reading_the_file(tmp_path, monkeypatch):
    """The tab passes the WebUI's hash cache: a candidate it knows is matched by that SHA-256 alone
    (the journey in a real WebUI took 44-50 s hashing 2 GB candidates the WebUI had already hashed),
    and an input without a legacy hash is found too."""
    from lib_modeldoc.operations import meta as meta_module

    lib = tmp_path / "models"
    lib.mkdir()
    a = big_model(lib, "a.safetensors", 1)
    b = big_model(lib, "b.safetensors", 2)
    digest_a, digest_b = sha256_of(a), sha256_of(b)
    inputs = [MergeInput(digest_a, "A", autov1(a)), MergeInput(digest_b, "B, no legacy hash", "")]
    candidates = [a, b]
    assert [r.found for r in resolve_merge_inputs(inputs, candidates)] == [a, None]

    def no_full_read(path):
        raise AssertionError(f"{path} hashed in full although its SHA-256 was cached")

    monkeypatch.setattr(meta_module, "_sha256_file", no_full_read)
    cache = {a: digest_a, b: digest_b}
    resolved = resolve_merge_inputs(inputs, candidates, known_sha256=cache.get)
    assert [r.found for r in resolved] == [a, b]


def test_merge_inputs_stop_searching_once_every_input_is_found(tmp_path, monkeypatch):
    """A real WebUI folder holds converted copies of a model whose AutoV1 matches the recipe's: once
    the input is found (here through the cache), no further copy is hashed in full."""
    from lib_modeldoc.operations import meta as meta_module

    lib = tmp_path / "models"
    lib.mkdir()
    original = big_model(lib, "a.safetensors", 1)
    copy = str(lib / "a-copy.safetensors")
    shutil.copyfile(original, copy)
    inputs = [MergeInput(sha256_of(original), "A", autov1(original))]

    def no_full_read(path):
        raise AssertionError(f"{path} hashed in full after every input was found")

    monkeypatch.setattr(meta_module, "_sha256_file", no_full_read)
    resolved = resolve_merge_inputs(inputs, [original, copy], known_sha256={original: sha256_of(original)}.get)
    assert [r.found for r in resolved] == [original]
