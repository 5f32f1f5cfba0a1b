"""build: a checkpoint from exported parts equals the original, tensor for tensor."""

from __future__ import annotations

import json

import pytest

from components_support import SD1_VAE, XL_CLIP_G, digests, listing, names_arch, read_metadata
from lib_modeldoc.checks.diagnose import inspect_model


def _export(cli, source, component, out):
    rc, stdout, err = cli("export", source, "--component", component, "-o", out)
    assert (rc, err) == (0, ""), err
    return out


def test_sd1_from_its_exported_parts(tmp_path, trimmed_tables, make_model, cli):
    original = make_model("original.safetensors", "SD1")
    parts = {c: _export(cli, original, c, tmp_path / f"{c}.safetensors") for c in ("unet", "vae", "clip")}
    rc, out, err = cli("build", "--arch", "SD1", "--unet", parts["unet"], "--vae", parts["vae"], "--clip", parts["clip"],
                       "-o", tmp_path / "built.safetensors")
    assert (rc, err) == (0, ""), err
    assert digests(tmp_path / "built.safetensors") == digests(original)
    report = inspect_model(tmp_path / "built.safetensors")
    assert report.architecture == "SD1"
    assert {n: c.complete for n, c in report.components.items()} == {"unet": True, "vae": True, "clip_l": True}
    assert "unet.safetensors" in read_metadata(tmp_path / "built.safetensors")["modeldoc"]


@pytest.mark.parametrize("clip_parts", ["clip", "clip_l+clip_g"])
def test_sdxl_from_its_exported_parts(tmp_path, trimmed_tables, make_model, cli, clip_parts):
    original = make_model("original.safetensors", "SDXL")
    unet = _export(cli, original, "unet", tmp_path / "unet.safetensors")
    vae = _export(cli, original, "vae", tmp_path / "vae.safetensors")
    argv = ["build", "--arch", "SDXL", "--unet", unet, "--vae", vae, "-o", tmp_path / "built.safetensors"]
    if clip_parts == "clip":  # one CLIP-SDXL file holding both encoders
        argv += ["--clip", _export(cli, original, "clip", tmp_path / "clip.safetensors")]
    else:
        argv += ["--clip", _export(cli, original, "clip_l", tmp_path / "clip_l.safetensors"),
                 "--clip-g", _export(cli, original, "clip_g", tmp_path / "clip_g.safetensors")]
    rc, out, err = cli(*argv)
    assert (rc, err) == (0, ""), err
    assert digests(tmp_path / "built.safetensors") == digests(original)
    assert inspect_model(tmp_path / "built.safetensors").architecture == "SDXL"


def test_sd2_from_its_exported_parts(tmp_path, trimmed_tables, make_model, cli):
    original = make_model("original.safetensors", "SD2")
    parts = {c: _export(cli, original, c, tmp_path / f"{c}.safetensors") for c in ("unet", "vae", "clip")}
    rc, out, err = cli("build", "--arch", "SD2", "--unet", parts["unet"], "--vae", parts["vae"], "--clip", parts["clip"],
                       "-o", tmp_path / "built.safetensors")
    assert (rc, err) == (0, ""), err
    assert digests(tmp_path / "built.safetensors") == digests(original)


def test_parts_from_files_with_the_same_header_come_from_the_right_file(tmp_path, trimmed_tables, make_model, cli):
    """Two merges saved by one tool have identical headers; the VAE must still come from --vae."""
    a = make_model("a.safetensors", "SD1", seed="merge a")
    b = make_model("b.safetensors", "SD1", seed="merge b")
    rc, out, err = cli("build", "--arch", "SD1", "--unet", a, "--vae", b, "--clip", a, "-o", tmp_path / "ab.safetensors")
    assert (rc, err) == (0, ""), err
    built, da, db = digests(tmp_path / "ab.safetensors"), digests(a), digests(b)
    assert {k: built[k] for k in built if k.startswith(SD1_VAE)} == {k: db[k] for k in db if k.startswith(SD1_VAE)}
    assert {k: built[k] for k in built if not k.startswith(SD1_VAE)} == {k: da[k] for k in da if not k.startswith(SD1_VAE)}


def test_a_missing_part_is_an_error(tmp_path, trimmed_tables, make_model, cli):
    original = make_model("original.safetensors", "SD1")
    before = listing(tmp_path)
    rc, out, err = cli("build", "--arch", "SD1", "--unet", original, "--clip", original, "-o", tmp_path / "built.safetensors")
    assert rc == 2 and out == ""
    assert err == "modeldoc: error: no vae given for SD1; pass --vae FILE, or pass --allow-missing\n"
    assert listing(tmp_path) == before


def test_allow_missing_builds_and_warns_that_the_webui_keeps_the_previous_part(tmp_path, trimmed_tables, make_model, cli):
    original = make_model("original.safetensors", "SD1")
    rc, out, err = cli("build", "--arch", "SD1", "--unet", original, "--clip", original, "--allow-missing",
                       "-o", tmp_path / "built.safetensors")
    assert (rc, err) == (0, "")
    assert "warning: no vae given for SD1: the WebUI keeps the previous model's vae when it loads this file" in out
    built, orig = digests(tmp_path / "built.safetensors"), digests(original)
    assert built == {k: v for k, v in orig.items() if not k.startswith(SD1_VAE)}
    report = inspect_model(tmp_path / "built.safetensors")
    assert report.architecture == "SD1" and not report.components["vae"].present


def test_sdxl_clip_without_clip_g(tmp_path, trimmed_tables, make_model, cli):
    """--clip holding CLIP-L only leaves SDXL's clip_g missing: an error naming both sides, or a
    warning with --allow-missing."""
    original = make_model("original.safetensors", "SDXL")
    clip_l = _export(cli, original, "clip_l", tmp_path / "clip_l.safetensors")
    argv = ["build", "--arch", "SDXL", "--unet", original, "--vae", original, "--clip", clip_l,
            "-o", tmp_path / "built.safetensors"]
    rc, out, err = cli(*argv)
    assert rc == 2 and err.count("\n") == 1 and "--clip-g" in err
    assert names_arch(err, "CLIP-SD1") and names_arch(err, "SDXL")
    assert not (tmp_path / "built.safetensors").exists()

    rc, out, err = cli(*argv, "--allow-missing")
    assert (rc, err) == (0, ""), err
    assert "warning: no clip_g given for SDXL: the WebUI keeps the previous model's clip_g" in out
    built, orig = digests(tmp_path / "built.safetensors"), digests(original)
    assert built == {k: v for k, v in orig.items() if not k.startswith(XL_CLIP_G)}


def test_nothing_to_build(tmp_path, cli):
    rc, out, err = cli("build", "--arch", "SD1", "--allow-missing", "-o", tmp_path / "built.safetensors")
    assert rc == 2 and err.startswith("modeldoc: error: nothing to build") and err.count("\n") == 1
    assert listing(tmp_path) == []


def test_dry_run_writes_nothing(tmp_path, trimmed_tables, make_model, cli):
    original = make_model("original.safetensors", "SD1")
    before = listing(tmp_path)
    argv = ("build", "--arch", "SD1", "--unet", original, "--vae", original, "--clip", original,
            "-o", tmp_path / "built.safetensors", "--dry-run")
    rc, out, err = cli(*argv)
    assert (rc, err) == (0, "") and "nothing written" in out
    rc, out, err = cli(*argv, "--json")
    assert rc == 0 and json.loads(out)["dry_run"] is True and json.loads(out)["keys"] == len(digests(original))
    assert listing(tmp_path) == before
