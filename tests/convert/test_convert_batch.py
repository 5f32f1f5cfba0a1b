"""convert --batch DIR -o OUTDIR: every checkpoint (subfolders too), failures reported without stopping, resumable."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch

from file_digest import sha256_of
from convert_support import UNET_KEY, listing, read_safetensors, slim_specs
from lib_modeldoc.errors import ModelReadError
from lib_modeldoc.io.model import open_model


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
    digests = {name: sha256_of(models / name) for name in listing(models)}
    rc, stdout, err = cli("convert", "--batch", models, "-o", out)
    assert rc == 2
    damaged = models / "gamma.safetensors"
    assert err == f"modeldoc: error: {damage_message(damaged)}\n"
    lines = stdout.splitlines()
    assert lines[0].startswith(f"{models / 'alpha.safetensors'}: wrote {out / 'alpha.safetensors'} (")
    assert lines[1].startswith(f"{models / 'beta.ckpt'}: wrote {out / 'beta.safetensors'} (")
    assert lines[-1] == f"Batch: 2 converted, 0 skipped, 1 failed, of 3 model files in {models}"
    assert listing(out) == ["alpha.safetensors", "beta.safetensors"]  # no temporary file, nothing for gamma
    assert read_safetensors(out / "beta.safetensors")[0][UNET_KEY].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert {name: sha256_of(models / name) for name in listing(models)} == digests


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
    assert stdout.splitlines()[-1] == f"Batch: 2 converted, 0 skipped, 0 failed, of 2 model files in {models}"


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
    assert stdout.splitlines()[-1] == f"Batch: 1 converted, 0 skipped, 2 failed, of 3 model files in {models}"
    assert (out / "alpha.safetensors").read_bytes() == b"keep me"


def test_batch_creates_the_output_folder_and_needs_its_source(batch, cli, tmp_path):
    models, out = batch
    os.remove(models / "gamma.safetensors")
    rc, _, err = cli("convert", "--batch", models, "-o", tmp_path / "new" / "deep")
    assert (rc, err) == (0, "")
    assert listing(tmp_path / "new" / "deep") == ["alpha.safetensors", "beta.safetensors"]
    rc, _, err = cli("convert", "--batch", tmp_path / "none", "-o", out)
    assert (rc, err) == (2, f"modeldoc: error: {tmp_path / 'none'}: not a folder\n")
    (tmp_path / "file").write_text("x")
    rc, _, err = cli("convert", "--batch", models, "-o", tmp_path / "file")
    assert rc == 2 and "the batch output must be a folder" in err


def test_batch_into_its_own_folder_never_touches_a_source(batch, cli):
    models, _ = batch
    digests = {name: sha256_of(models / name) for name in listing(models)}
    rc, stdout, err = cli("convert", "--batch", models, "-o", models)
    assert rc == 2
    alpha = models / "alpha.safetensors"
    assert f"modeldoc: error: {alpha}: is a source of this batch; choose another output folder\n" in err
    assert stdout.splitlines()[-1] == f"Batch: 1 converted, 0 skipped, 2 failed, of 3 model files in {models}"
    assert {name: sha256_of(models / name) for name in digests} == digests
    assert listing(models) == sorted([*digests, "beta.safetensors"])  # the .ckpt's conversion, nothing else


def test_same_stem_ckpt_and_safetensors_never_destroy_a_source(tmp_path, slim_model, cli):
    """The issue's case: m.ckpt and m.safetensors in D, ``-o D --force --overwrite``."""
    d = tmp_path / "models"
    d.mkdir()
    slim_model(os.path.join("models", "m.safetensors"))
    state = {s.key: torch.zeros(s.shape, dtype=torch.float16) for s in slim_specs()}
    torch.save({"state_dict": state}, str(d / "m.ckpt"))
    digests = {name: sha256_of(d / name) for name in listing(d)}
    rc, _, err = cli("convert", "--batch", d, "-o", d, "--force", "--overwrite")
    assert rc == 2 and err.count("modeldoc: error:") == 2
    assert {name: sha256_of(d / name) for name in listing(d)} == digests


def test_batch_walks_subfolders_keeps_layout_and_skips_parts(tmp_path, slim_model, sparse_model, cli):
    models = tmp_path / "models"
    (models / "XL" / "deep").mkdir(parents=True)
    slim_model(os.path.join("models", "top.safetensors"))
    slim_model(os.path.join("models", "XL", "deep", "inner.safetensors"))
    prefix = "first_stage_model."
    sparse_model(os.path.join("models", "XL", "a.vae.safetensors"),  # a VAE file: no checkpoint prefix
                 [dataclasses.replace(s, key=s.key[len(prefix):]) for s in slim_specs() if s.key.startswith(prefix)])
    lora = models / "lora.safetensors"
    from safetensors.torch import save_file
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 320),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(320, 4),
               "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": torch.tensor(4.0)}, str(lora))
    out = tmp_path / "out"
    rc, stdout, err = cli("convert", "--batch", models, "-o", out)
    assert (rc, err) == (0, ""), err
    assert listing(out) == ["XL", "top.safetensors"]
    assert listing(out / "XL") == ["deep"] and listing(out / "XL" / "deep") == ["inner.safetensors"]
    assert f"{lora}: skipped (LoRA: not a checkpoint)" in stdout
    assert "a.vae.safetensors: skipped (VAE: not a checkpoint)" in stdout
    assert stdout.splitlines()[-1] == f"Batch: 2 converted, 2 skipped, 0 failed, of 4 model files in {models}"


def test_batch_resumes(batch, cli):
    models, out = batch
    os.remove(models / "gamma.safetensors")
    assert cli("convert", "--batch", models, "-o", out)[0] == 0
    written = {name: (sha256_of(out / name), os.stat(out / name).st_mtime_ns) for name in listing(out)}
    os.remove(out / "beta.safetensors")  # as if the first run had been stopped there
    rc, stdout, err = cli("convert", "--batch", models, "-o", out, "--json")
    assert (rc, err) == (0, "")
    result = json.loads(stdout)
    assert result["skipped"] == [{"source": str(models / "alpha.safetensors"), "reason": "already converted"}]
    assert [r["output"] for r in result["converted"]] == [str(out / "beta.safetensors")]
    assert (sha256_of(out / "alpha.safetensors"), os.stat(out / "alpha.safetensors").st_mtime_ns) == written["alpha.safetensors"]
    rc, stdout, _ = cli("convert", "--batch", models, "-o", out, "--overwrite")
    assert rc == 0 and stdout.splitlines()[-1].startswith("Batch: 2 converted, 0 skipped")


def test_batch_does_not_walk_an_output_folder_inside_it(batch, cli):
    models, _ = batch
    os.remove(models / "gamma.safetensors")
    inner = models / "converted"
    assert cli("convert", "--batch", models, "-o", inner)[0] == 0
    rc, stdout, _ = cli("convert", "--batch", models, "-o", inner)
    assert rc == 0 and stdout.splitlines()[-1] == f"Batch: 0 converted, 2 skipped, 0 failed, of 2 model files in {models}"
    assert listing(inner) == ["alpha.safetensors", "beta.safetensors"]


def test_batch_carries_sidecars(batch, cli):
    models, out = batch
    os.remove(models / "gamma.safetensors")
    (models / "alpha.yaml").write_text("model: {}")
    (models / "beta.preview.png").write_bytes(b"\x89PNG")
    assert cli("convert", "--batch", models, "-o", out)[0] == 0
    assert (out / "alpha.yaml").read_text() == "model: {}"
    assert (out / "beta.preview.png").read_bytes() == b"\x89PNG"
