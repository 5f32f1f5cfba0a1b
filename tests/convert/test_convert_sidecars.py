"""Sidecar files (.yaml, previews, .json, .civitai.info) follow a model to its converted name."""

from __future__ import annotations

import json
import os

from convert_support import listing
from lib_modeldoc.samples import family_specs
from lib_modeldoc.operations.sidecars import SIDECAR_SUFFIXES, carry_sidecars, find_sidecars

CARD = {"description": "my model", "activation text": "mxstyle", "notes": ""}


def add_sidecars(model: str) -> dict[str, bytes]:
    stem = os.path.splitext(model)[0]
    files = {".yaml": b"model:\n  target: x\n", ".preview.png": b"\x89PNG preview", ".json": json.dumps(CARD).encode(),
             ".civitai.info": b'{"id": 1}'}
    for suffix, data in files.items():
        with open(stem + suffix, "wb") as f:
            f.write(data)
    return files


def test_suffixes_cover_what_the_webui_reads():
    for suffix in (".yaml", ".preview.png", ".png", ".jpg", ".preview.webp", ".json", ".civitai.info"):
        assert suffix in SIDECAR_SUFFIXES


def test_convert_carries_every_sidecar(slim_model, tmp_path, cli):
    src = slim_model("merge.ckpt.safetensors")
    files = add_sidecars(src)
    out = tmp_path / "out" / "fixed.safetensors"
    out.parent.mkdir()
    rc, stdout, err = cli("convert", src, "-o", out)
    assert rc == 0, err
    for suffix, data in files.items():
        assert (tmp_path / "out" / f"fixed{suffix}").read_bytes() == data
        assert f"copied merge.ckpt{suffix} -> fixed{suffix}" in stdout
    rc, stdout, _ = cli("convert", src, "-o", tmp_path / "out" / "again.safetensors", "--json")
    assert sorted(os.path.basename(s["target"]) for s in json.loads(stdout)["sidecars"]) == sorted(
        f"again{suffix}" for suffix in files)


def test_no_sidecars_and_dry_run_copy_nothing(slim_model, tmp_path, cli):
    src = slim_model("m.safetensors")
    add_sidecars(src)
    out = tmp_path / "o"
    out.mkdir()
    assert cli("convert", src, "-o", out / "a.safetensors", "--no-sidecars")[0] == 0
    assert cli("convert", src, "-o", out / "b.safetensors", "--dry-run")[0] == 0
    assert listing(out) == ["a.safetensors"]


def test_existing_sidecar_is_kept_unless_overwrite(slim_model, tmp_path, cli):
    src = slim_model("m.safetensors")
    add_sidecars(src)
    out = tmp_path / "o"
    out.mkdir()
    (out / "a.json").write_text("mine")
    rc, stdout, _ = cli("convert", src, "-o", out / "a.safetensors")
    assert rc == 0 and (out / "a.json").read_text() == "mine"
    assert "a.json: kept the existing file" in stdout
    assert cli("convert", src, "-o", out / "a.safetensors", "--overwrite")[0] == 0
    assert json.loads((out / "a.json").read_text()) == CARD


def test_same_name_in_same_folder_keeps_the_sidecars_as_they_are(slim_model, tmp_path, cli):
    src = slim_model("m.safetensors")
    files = add_sidecars(src)
    ckpt = tmp_path / "m.ckpt"
    assert cli("convert", src, "-o", ckpt)[0] == 0  # m.ckpt shares m.yaml, m.json ... with m.safetensors
    assert sorted(find_sidecars(ckpt)) == sorted(str(tmp_path / f"m{suffix}") for suffix in files)
    assert carry_sidecars(src, ckpt) == []


def test_replace_carries_the_targets_sidecars(slim_model, tmp_path, cli):
    target = slim_model("target.safetensors")
    donor = slim_model("donor.safetensors", extra=family_specs("SD1", components=["vae"]))  # a whole VAE
    add_sidecars(target)
    (tmp_path / "donor.yaml").write_text("donor")
    rc, _, err = cli("replace", target, "--component", "vae", "--from", donor, "-o", tmp_path / "new.safetensors")
    assert rc == 0, err
    assert (tmp_path / "new.yaml").read_bytes() == b"model:\n  target: x\n"
    assert (tmp_path / "new.civitai.info").exists()


def test_export_carries_nothing(slim_model, tmp_path, cli):
    src = slim_model("m.safetensors")
    add_sidecars(src)
    out = tmp_path / "parts"
    out.mkdir()
    assert cli("export", src, "--component", "vae", "-o", out / "m.vae.safetensors")[0] == 0
    assert listing(out) == ["m.vae.safetensors"]
