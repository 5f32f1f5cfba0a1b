"""--bake-vae from a standalone .pt (unprefixed, with ``loss.*`` training keys), a prefixed
.safetensors and a full checkpoint: the output's VAE holds the baked values, complete.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from convert_support import UNET_KEY, VAE_KEY, f32, listing, read_safetensors, slim_specs
from lib_modeldoc.samples import Spec, family_specs

VAE_PREFIX = "first_stage_model."
PLANTED = {  # table key -> values of the VAE to bake
    "encoder.conv_in.bias": np.linspace(-2, 2, 128, dtype=np.float32),
    "decoder.conv_out.bias": f32([0.25, -0.5, 1.0]),
    "quant_conv.weight": (np.arange(64, dtype=np.float32) / 64).reshape(8, 8, 1, 1),
}
LOSS = {"loss.logvar": torch.tensor(0.0), "loss.discriminator.main.0.weight": torch.ones(64, 3, 4, 4),
        "loss.perceptual_loss.net.slice1.0.weight": torch.ones(64, 3, 3, 3)}


def vae_specs(dtype: str = "F16", prefix: str = "") -> list[Spec]:
    return [Spec(prefix + s.key, dtype, s.shape) for s in family_specs("VAE")]


def planted(dtype, prefix: str = "") -> dict[str, np.ndarray]:
    return {prefix + k: v.astype(dtype) for k, v in PLANTED.items()}


@pytest.fixture
def target(slim_model):
    """The model to bake into: a slim SD1 whose own (incomplete) VAE holds other values."""
    return slim_model("target.safetensors", values={VAE_KEY: np.full(128, 9, dtype=np.float16),
                                                    UNET_KEY: np.array([1, 2, 3, 4], dtype=np.float16)})


@pytest.fixture
def vae_pt(tmp_path):
    """A WebUI-style VAE .pt: unprefixed keys under state_dict, plus loss.* and global_step."""
    state = {s.key: torch.zeros(s.shape, dtype=torch.float16) for s in vae_specs()}
    for key, value in planted(np.float16).items():
        state[key] = torch.from_numpy(value)
    state.update(LOSS)
    path = tmp_path / "vae-ft-mse.vae.pt"
    torch.save({"state_dict": state, "global_step": 840001}, str(path))
    return str(path)


@pytest.fixture
def vae_prefixed(sparse_model):
    return sparse_model("vae-prefixed.safetensors", vae_specs("F32", VAE_PREFIX), planted(np.float32, VAE_PREFIX))


@pytest.fixture
def vae_checkpoint(sparse_model):
    specs = [s for s in slim_specs() if not s.key.startswith(VAE_PREFIX)] + vae_specs("F16", VAE_PREFIX)
    return sparse_model("donor-sd1.safetensors", specs, planted(np.float16, VAE_PREFIX))


def bake(cli, target, vae, out, *options):
    rc, stdout, err = cli("convert", target, "-o", out, "--bake-vae", vae, "--json", *options)
    assert (rc, err) == (0, ""), err
    return json.loads(stdout), *read_safetensors(out)


def check_baked(tensors, dtype):
    vae = {k for k in tensors if k.startswith(VAE_PREFIX)}
    assert vae == {s.key for s in vae_specs(prefix=VAE_PREFIX)}  # complete, nothing of the old VAE left
    assert not any("loss" in k for k in tensors)
    for key, value in planted(np.float32, VAE_PREFIX).items():
        assert tensors[key].dtype == dtype, key
        assert torch.equal(tensors[key], torch.from_numpy(value).to(dtype)), key
    assert torch.count_nonzero(tensors[VAE_PREFIX + "decoder.conv_in.bias"]) == 0
    assert tensors[UNET_KEY].tolist() == [1, 2, 3, 4]  # the rest of the model untouched


def test_bake_from_a_standalone_pt_ignores_loss_keys(target, vae_pt, cli, tmp_path):
    result, tensors, metadata = bake(cli, target, vae_pt, tmp_path / "out.safetensors", "--vae", "copy")
    check_baked(tensors, torch.float16)
    assert "baked VAE from vae-ft-mse.vae.pt (VAE)" in result["changes"]
    assert "baked VAE from vae-ft-mse.vae.pt (VAE)" in json.loads(metadata["modeldoc"])["changes"]


def test_bake_from_a_prefixed_safetensors_converts_it(target, vae_prefixed, cli, tmp_path):
    _, tensors, _ = bake(cli, target, vae_prefixed, tmp_path / "out.safetensors")
    check_baked(tensors, torch.float16)  # fp32 VAE cast to the fp16 default


def test_bake_from_a_prefixed_safetensors_copied_keeps_fp32(target, vae_prefixed, cli, tmp_path):
    _, tensors, _ = bake(cli, target, vae_prefixed, tmp_path / "out.safetensors", "--vae", "copy")
    check_baked(tensors, torch.float32)


def test_bake_from_a_full_checkpoint_takes_only_its_vae(target, vae_checkpoint, cli, tmp_path):
    result, tensors, _ = bake(cli, target, vae_checkpoint, tmp_path / "out.safetensors", "--vae", "copy")
    check_baked(tensors, torch.float16)
    assert "baked VAE from donor-sd1.safetensors (SD1)" in result["changes"]
    assert result["dropped"]["vae replaced"]["keys"] == sum(1 for s in slim_specs() if s.key.startswith(VAE_PREFIX))


def test_bake_from_a_file_without_a_complete_vae_is_refused(target, slim_model, cli, tmp_path):
    donor = slim_model("slim-donor.safetensors")
    out = tmp_path / "out.safetensors"
    rc, stdout, err = cli("convert", target, "-o", out, "--bake-vae", donor)
    assert (rc, stdout) == (2, "")
    assert err == f"modeldoc: error: {donor}: the vae of this SD1 VAE to bake is incomplete; refusing to use it\n"
    assert not out.exists()


def test_bake_from_an_unknown_file_is_refused(target, cli, tmp_path):
    donor = tmp_path / "notes.safetensors"
    save_file({"x": torch.ones(2)}, str(donor))
    out = tmp_path / "out.safetensors"
    rc, _, err = cli("convert", target, "-o", out, "--bake-vae", donor)
    assert rc == 2
    assert err == f"modeldoc: error: {donor}: VAE to bake is unknown and holds no vae\n"
    assert not out.exists()


def test_bake_and_delete_the_vae_contradict(target, vae_prefixed, cli, tmp_path):
    before = listing(tmp_path)
    out = tmp_path / "out.safetensors"
    rc, _, err = cli("convert", target, "-o", out, "--bake-vae", vae_prefixed, "--vae", "delete")
    assert rc == 2
    assert err == ("modeldoc: error: the VAE is to be replaced and deleted at once; "
                   "leave out --vae delete (--vae copy keeps the new VAE as it is)\n")
    assert listing(tmp_path) == before


def test_missing_vae_file(target, cli, tmp_path):
    missing = tmp_path / "nope.pt"
    rc, _, err = cli("convert", target, "-o", tmp_path / "out.safetensors", "--bake-vae", missing)
    assert rc == 2
    assert err == f"modeldoc: error: {missing}: no such file\n"


def test_a_vae_pt_converts_to_a_webui_safetensors_vae(vae_pt, cli, tmp_path):
    """The .pt's training leftovers (loss.*) are junk of an identified VAE: dropped."""
    out = tmp_path / "vae.safetensors"
    rc, stdout, _ = cli("convert", vae_pt, "-o", out, "--json")
    assert rc == 0
    result = json.loads(stdout)
    assert result["dropped"]["junk"]["keys"] == len(LOSS)
    assert set(result["dropped"]) == {"junk"}  # global_step is a number, not a tensor
    tensors, _ = read_safetensors(out)
    assert set(tensors) == {s.key for s in vae_specs()}
    for key, value in planted(np.float16).items():
        assert torch.equal(tensors[key], torch.from_numpy(value)), key
