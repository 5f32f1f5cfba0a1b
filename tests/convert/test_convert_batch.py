"""convert --batch DIR -o OUTDIR: every model file, failures reported without stopping."""

from __future__ import annotations

import json
import os

import pytest
import torch

from convert_support import UNET_KEY, listing, read_safetensors, sha256, slim_specs
from lib_modeldoc.errors import ModelReadError
from lib_modeldoc.model import open_model


@pytest.fixture
def batch(tmp_path, slim_model):
    """models/: a slim SD1 .safetensors, the same model as a zip .ckpt, a truncated file, a text file."""
    models = tmp_path / "models"
    models.mkdir()
    good = slim_model(os.path.join("models", "alpha.safetensors"))
    state = {s.key: torch.zeros(s.shape, dtype=torch.float16) for s in slim_specs()}
    state[UNET_KEY] = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float16)
    torch.save({"state_dict": state, "global_step": 10}, str(models / "beta.ckpt"))
    damaged = models / "gamma.safetensors"
    damaged.write_bytes(open(good, "rb").read()[:-1000])
    (models / "readme.txt").write_text("not a model")
    out = tmp_path / "out"
    out.mkdir()
    return models, out


def damage_message(path) -> str:
    with pytest.raises(ModelReadError) as caught:
        open_model(path)
    return str(caught.value)


def test_batch_continues_past_a_damaged_file(batch, cli):
    models, out = batch
    digests = {name: sha256(models / name) for name in listing(models)}
    rc, stdout, err = cli("convert", "--batch", models, "-o", out)
    assert rc == 2
    damaged = models / "gamma.safetensors"
    assert err == f"modeldoc: error: {damage_message(damaged)}\n"
    lines = stdout.splitlines()
    assert lines[0].startswith(f"{models / 'alpha.safetensors'}: wrote {out / 'alpha.safetensors'} (")
    assert lines[1].startswith(f"{models / 'beta.ckpt'}: wrote {out / 'beta.safetensors'} (")
    assert lines[-1] == f"Batch: 2 converted, 1 failed, of 3 model files in {models}"
    assert listing(out) == ["alpha.safetensors", "beta.safetensors"]  # no temporary file, nothing for gamma
    assert read_safetensors(out / "beta.safetensors")[0][UNET_KEY].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert {name: sha256(models / name) for name in listing(models)} == digests


def test_batch_json(batch, cli):
    models, out = batch
    rc, stdout, _ = cli("convert", "--batch", models, "-o", out, "--json", "--format", "ckpt")
    assert rc == 2
    result = json.loads(stdout)
    assert [r["output"] for r in result["converted"]] == [str(out / "alpha.ckpt"), str(out / "beta.ckpt")]
    for r in result["converted"]:
        assert r["size_bytes"] == os.path.getsize(r["output"]) and r["keys"] > 0 and r["format"] == "ckpt"
    damaged = str(models / "gamma.safetensors")
    assert result["failed"] == [{"source": damaged, "error": damage_message(damaged)}]
    assert listing(out) == ["alpha.ckpt", "beta.ckpt"]


def test_batch_of_good_files_exits_0(batch, cli):
    models, out = batch
    os.remove(models / "gamma.safetensors")
    rc, stdout, err = cli("convert", "--batch", models, "-o", out)
    assert (rc, err) == (0, "")
    assert stdout.splitlines()[-1] == f"Batch: 2 converted, 0 failed, of 2 model files in {models}"


def test_batch_dry_run_writes_nothing(batch, cli):
    models, out = batch
    rc, stdout, _ = cli("convert", "--batch", models, "-o", out, "--dry-run")
    assert rc == 2
    assert f"{models / 'alpha.safetensors'}: would write {out / 'alpha.safetensors'} (" in stdout
    assert listing(out) == []


def test_batch_existing_outputs_are_failures_not_overwritten(batch, cli):
    models, out = batch
    (out / "alpha.safetensors").write_bytes(b"keep me")
    rc, stdout, err = cli("convert", "--batch", models, "-o", out)
    assert rc == 2
    assert f"modeldoc: error: {out / 'alpha.safetensors'}: already exists; pass --overwrite to replace it\n" in err
    assert stdout.splitlines()[-1] == f"Batch: 1 converted, 2 failed, of 3 model files in {models}"
    assert (out / "alpha.safetensors").read_bytes() == b"keep me"


def test_batch_folders_must_exist(batch, cli, tmp_path):
    models, out = batch
    rc, _, err = cli("convert", "--batch", models, "-o", tmp_path / "nowhere")
    assert (rc, err) == (2, f"modeldoc: error: {tmp_path / 'nowhere'}: output folder does not exist\n")
    rc, _, err = cli("convert", "--batch", tmp_path / "none", "-o", out)
    assert (rc, err) == (2, f"modeldoc: error: {tmp_path / 'none'}: not a folder\n")


def test_batch_into_its_own_folder_never_touches_a_source(batch, cli):
    models, _ = batch
    digests = {name: sha256(models / name) for name in listing(models)}
    rc, stdout, err = cli("convert", "--batch", models, "-o", models)
    assert rc == 2
    alpha = models / "alpha.safetensors"
    assert f"modeldoc: error: {alpha}: output is the same file as the source {alpha}; choose another name\n" in err
    assert stdout.splitlines()[-1] == f"Batch: 1 converted, 2 failed, of 3 model files in {models}"
    assert {name: sha256(models / name) for name in digests} == digests
    assert listing(models) == sorted([*digests, "beta.safetensors"])  # the .ckpt's conversion, nothing else
