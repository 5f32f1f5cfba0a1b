"""Component files in every shape the WebUI world has: prefixed or not, .pt / .ckpt / .safetensors.

The last tests use a real, full-size VAE (84 M values, written sparse, values planted in its
small tensors) under the real tables: a WebUI ``vae.pt``, the grey-image fix, and ``--bake-vae``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from components_support import (
    PREFIX, SD1_VAE, component_of, digests, planted, read_metadata, read_tensors, with_prefix, write_model,
)
from lib_modeldoc.checks.diagnose import inspect_model

# Unprefixed layouts: what a standalone file of each component is keyed as.
UNPREFIXED = {"unet": "", "vae": "", "clip_l": "text_model."}


def _save(path, tensors, kind):
    """safetensors; ``pt`` = torch zip with a ``state_dict`` (+ a ``loss.*`` tensor, as VAE
    training leaves it); ``ckpt`` = legacy torch pickle, a bare dict."""
    path = str(path)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    if kind == "safetensors":
        save_file(tensors, path)
    elif kind == "pt":
        torch.save({"state_dict": {**tensors, "loss.logvar": torch.zeros(())}, "global_step": 7}, path)
    else:
        torch.save(tensors, path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture(scope="module")
def sd1_pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sd1")
    base = write_model(folder / "base.safetensors", "SD1", seed="base")
    merge = write_model(folder / "merge.safetensors", "SD1", seed="merge")
    return base, merge, digests(base), digests(merge)


@pytest.mark.parametrize("component,slot", [("unet", "unet"), ("vae", "vae"), ("clip", "clip_l")])
def test_sd1_component_files_prefixed_or_not_in_any_format(tmp_path, trimmed_tables, sd1_pair, cli, component, slot):
    base, merge, b, m = sd1_pair
    prefix = PREFIX[("SD1", slot)]
    part = component_of(read_tensors(base), prefix)
    expected = {**m, **{k: v for k, v in b.items() if k.startswith(prefix)}}
    for layout, keyed in (("prefixed", prefix), ("unprefixed", UNPREFIXED[slot])):
        for kind in ("safetensors", "pt", "ckpt"):
            source = _save(tmp_path / f"{layout}.{kind}", with_prefix(keyed, part), kind)
            out = tmp_path / f"out-{layout}-{kind}.safetensors"
            rc, stdout, err = cli("replace", merge, "--component", component, "--from", source, "-o", out)
            assert (rc, err) == (0, ""), (layout, kind, err)
            assert digests(out) == expected, (layout, kind)


def test_sd2_and_sdxl_encoders_and_unets_as_their_own_tools_save_them(tmp_path, trimmed_tables, make_model, cli):
    sd2_base, sd2 = make_model("sd2-base.safetensors", "SD2"), make_model("sd2.safetensors", "SD2", seed="m2")
    xl_base, xl = make_model("xl-base.safetensors", "SDXL"), make_model("xl.safetensors", "SDXL", seed="mx")
    t2, tx = read_tensors(sd2_base), read_tensors(xl_base)
    cases = [
        # (target, --component, file, moved prefixes)
        (sd2, "clip", _save(tmp_path / "open_clip_pytorch_model.bin", component_of(t2, PREFIX[("SD2", "clip_h")]), "ckpt"),
         (PREFIX[("SD2", "clip_h")],)),
        (sd2, "unet", _save(tmp_path / "unet-sd2.pt", component_of(t2, PREFIX[("SD2", "unet")]), "pt"),
         (PREFIX[("SD2", "unet")],)),
        (xl, "clip_g", _save(tmp_path / "bigG.safetensors", component_of(tx, PREFIX[("SDXL", "clip_g")]), "safetensors"),
         (PREFIX[("SDXL", "clip_g")],)),
        (xl, "clip_l", _save(tmp_path / "clip_l.pt", with_prefix("text_model.", component_of(tx, PREFIX[("SDXL", "clip_l")])),
                             "pt"),
         (PREFIX[("SDXL", "clip_l")],)),
        (xl, "clip", _save(tmp_path / "xl-clip.ckpt", {k: v for k, v in tx.items() if k.startswith("conditioner.")}, "ckpt"),
         (PREFIX[("SDXL", "clip_l")], PREFIX[("SDXL", "clip_g")])),
        (xl, "unet", _save(tmp_path / "unet-xl.safetensors", component_of(tx, PREFIX[("SDXL", "unet")]), "safetensors"),
         (PREFIX[("SDXL", "unet")],)),
    ]
    known = {p: digests(p) for p in (sd2_base, sd2, xl_base, xl)}
    for i, (target, component, source, moved) in enumerate(cases):
        out = tmp_path / f"out{i}.safetensors"
        rc, stdout, err = cli("replace", target, "--component", component, "--from", source, "-o", out)
        assert (rc, err) == (0, ""), (source, err)
        tgt, src = known[target], known[sd2_base if target == sd2 else xl_base]
        assert digests(out) == {**tgt, **{k: v for k, v in src.items() if k.startswith(moved)}}, source


# -- real size ------------------------------------------------------------------------------------

PLANT = 1 << 16  # bytes: tensors up to this size get values, bigger ones stay sparse zeros


@pytest.fixture(scope="module")
def real_vae(tmp_path_factory):
    """(base SD1 with a full-size VAE, a WebUI ``vae.pt`` of another VAE, a merge, their VAE digests)."""
    folder = tmp_path_factory.mktemp("real")
    base = write_model(folder / "v1-5-pruned-emaonly.safetensors", "SD1", full=("vae",), seed="base", limit=PLANT)
    other = write_model(folder / "other.safetensors", "SD1", full=("vae",), seed="ft-mse", limit=PLANT,
                        components=("vae",))
    vae = component_of(read_tensors(other), SD1_VAE)
    vae_pt = folder / "vae-ft-mse-840000-ema-pruned.pt"
    torch.save({"state_dict": {**vae, "loss.logvar": torch.zeros(()), "loss.discriminator.main.0.weight": torch.ones(64, 3, 4, 4)},
                "global_step": 840001}, str(vae_pt))
    grey = {SD1_VAE + "decoder.conv_out.bias": np.full(3, np.nan, np.float16)}  # decodes to nothing
    merge = write_model(folder / "merge.safetensors", "SD1", seed="merge", values=grey,
                        metadata={"modelspec.title": "merge"})
    base_vae = {k: v for k, v in digests(base).items() if k.startswith(SD1_VAE)}
    pt_vae = digests(other)  # the VAE alone, at checkpoint keys
    assert len(base_vae) == 248 and planted(vae) >= 150  # a complete VAE, most tensors planted
    return str(base), str(vae_pt), str(merge), base_vae, pt_vae


def test_a_webui_vae_pt_replaces_the_vae(tmp_path, real_vae, cli):
    base, vae_pt, merge, base_vae, pt_vae = real_vae
    assert inspect_model(vae_pt).architecture == "VAE"
    rc, out, err = cli("replace", merge, "--component", "vae", "--from", vae_pt, "-o", tmp_path / "out.safetensors")
    assert (rc, err) == (0, ""), err
    result = digests(tmp_path / "out.safetensors")
    assert {k: v for k, v in result.items() if k.startswith(SD1_VAE)} == pt_vae
    assert not any(k.startswith("loss.") or "loss." in k for k in result)
    report = inspect_model(tmp_path / "out.safetensors")
    assert report.architecture == "SD1" and report.components["vae"].complete


def test_grey_image_merge_gets_the_base_vae_in_one_replace(tmp_path, real_vae, cli):
    base, vae_pt, merge, base_vae, pt_vae = real_vae
    rc, out, err = cli("replace", merge, "--component", "vae", "--from", base, "-o", tmp_path / "fixed.safetensors")
    assert (rc, err) == (0, ""), err
    result, m = digests(tmp_path / "fixed.safetensors"), digests(merge)
    assert {k: v for k, v in result.items() if k.startswith(SD1_VAE)} == base_vae
    assert {k: v for k, v in result.items() if not k.startswith(SD1_VAE)} == {
        k: v for k, v in m.items() if not k.startswith(SD1_VAE)}
    meta = read_metadata(tmp_path / "fixed.safetensors")
    assert meta["modelspec.title"] == "merge"
    assert json.loads(meta["modeldoc"])["changes"] == ["replaced vae from v1-5-pruned-emaonly.safetensors (SD1)"]


def test_bake_vae_from_a_pt(tmp_path, real_vae, cli):
    base, vae_pt, merge, base_vae, pt_vae = real_vae
    rc, out, err = cli("convert", merge, "--bake-vae", vae_pt, "-o", tmp_path / "baked.safetensors")
    assert (rc, err) == (0, ""), err
    assert "baked VAE from vae-ft-mse-840000-ema-pruned.pt (VAE)" in out
    result = digests(tmp_path / "baked.safetensors")
    assert {k: v for k, v in result.items() if k.startswith(SD1_VAE)} == pt_vae


def test_export_of_a_full_vae_identifies_as_vae(tmp_path, real_vae, cli):
    base, vae_pt, merge, base_vae, pt_vae = real_vae
    rc, out, err = cli("export", base, "--component", "vae", "-o", tmp_path / "vae.pt")
    assert (rc, err) == (0, ""), err
    report = inspect_model(tmp_path / "vae.pt")
    assert report.architecture == "VAE" and report.components["vae"].complete
    assert digests(tmp_path / "vae.pt") == {k[len(SD1_VAE):]: v for k, v in base_vae.items()}
