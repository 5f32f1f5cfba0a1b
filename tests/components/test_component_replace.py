"""replace: everything but the replaced part is copied as it is, metadata included."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from file_digest import sha256_of
from components_support import (
    EMA, POSITION_IDS, SD1_CLIP, SD1_UNET, SD1_VAE, Spec, digests, listing, read_metadata, read_tensors,
)
from lib_modeldoc.samples import broken_position_ids

JUNK = "embedding_manager.embedder.transformer.text_model.final_layer_norm.weight"
METADATA = {
    "modelspec.title": "Grey Merge v3",
    "sd_merge_recipe": json.dumps({"type": "webui", "interp_method": "Add difference", "multiplier": 0.7}),
    "ss_training_comment": "ünïcode kept",
}


@pytest.fixture
def messy_target(make_model):
    """An SD1 merge in fp32 with what merges carry: EMA, junk, float position_ids, fp64 and int
    buffers, a bf16 and an fp16 tensor among the fp32 ones, and metadata."""
    return make_model(
        "merge.safetensors", "SD1", dtype="F32", ema=True, metadata=METADATA,
        extra=[
            Spec(JUNK, "F16", (768,)), Spec(SD1_CLIP + POSITION_IDS, "F32", (1, 77)),
            Spec("alphas_cumprod", "F64", (1000,)), Spec("model_ema.decay", "F32", ()),
            Spec("model_ema.num_updates", "I32", ()), Spec(SD1_UNET + "out.2.bias", "BF16", (4,)),
            Spec(SD1_UNET + "time_embed.0.bias", "F16", (1280,)),
        ],
        values={SD1_CLIP + POSITION_IDS: broken_position_ids()},
    )


@pytest.mark.parametrize("component,prefix", [("vae", SD1_VAE), ("unet", SD1_UNET), ("clip", SD1_CLIP)])
def test_the_rest_of_the_target_is_byte_identical(tmp_path, trimmed_tables, make_model, messy_target, cli,
                                                   component, prefix):
    source = make_model("base.safetensors", "SD1", seed="base model")
    target_hash = sha256_of(messy_target)
    rc, out, err = cli("replace", messy_target, "--component", component, "--from", source,
                       "-o", tmp_path / "out.safetensors")
    assert (rc, err) == (0, ""), err
    assert sha256_of(messy_target) == target_hash

    result, tgt, src = digests(tmp_path / "out.safetensors"), digests(messy_target), digests(source)
    kept = {k for k in tgt if not k.startswith(prefix)}
    assert {k: result[k] for k in kept} == {k: tgt[k] for k in kept}  # dtype, shape and bytes
    assert {JUNK, EMA + "out2bias", "alphas_cumprod", "model_ema.num_updates"} <= kept
    assert {k: result[k] for k in result if k not in kept} == {k: v for k, v in src.items() if k.startswith(prefix)}
    if component != "clip":  # the float position_ids stay exactly as they were
        pos = read_tensors(tmp_path / "out.safetensors")[SD1_CLIP + POSITION_IDS]
        assert pos.dtype == torch.float32 and np.array_equal(pos.numpy(), broken_position_ids())

    meta = read_metadata(tmp_path / "out.safetensors")
    provenance = json.loads(meta.pop("modeldoc"))
    assert meta == {**METADATA, "format": "pt"}
    assert provenance["source"] == "merge.safetensors"
    assert provenance["changes"] == [f"replaced {'clip_l' if component == 'clip' else component} "
                                     f"from base.safetensors (SD1)"]


def test_grey_merge_gets_the_base_vae_in_one_command(tmp_path, trimmed_tables, make_model, cli):
    """The everyday case: a merge whose VAE decodes grey (averaged to nothing) gets the base's VAE."""
    base = make_model("v1-5-pruned-emaonly.safetensors", "SD1", seed="base")
    merge = make_model("merge.safetensors", "SD1", seed="merge",
                       values={SD1_VAE + "decoder.conv_out.bias": np.zeros(3, np.float16)})
    rc, out, err = cli("replace", merge, "--component", "vae", "--from", base, "-o", tmp_path / "fixed.safetensors")
    assert (rc, err) == (0, "")
    assert "replaced vae from v1-5-pruned-emaonly.safetensors (SD1)" in out
    fixed, b, m = digests(tmp_path / "fixed.safetensors"), digests(base), digests(merge)
    assert fixed == {**m, **{k: v for k, v in b.items() if k.startswith(SD1_VAE)}}


def test_replace_copies_a_nai_layout_clip_as_it_is_and_says_nothing_of_renaming(
        tmp_path, trimmed_tables, make_model, write_ckpt, cli):
    model = read_tensors(make_model("m.safetensors", "SD1"))
    nai = {k.replace("transformer.text_model.", "transformer."): v for k, v in model.items()}
    target = write_ckpt("nai.ckpt", {"state_dict": nai, "global_step": 470000})
    source = make_model("base.safetensors", "SD1", seed="base")
    rc, out, err = cli("replace", target, "--component", "vae", "--from", source, "-o", tmp_path / "out.safetensors")
    assert (rc, err) == (0, "")
    result = read_tensors(tmp_path / "out.safetensors")
    assert {k for k in result if k.startswith("cond_stage_model.")} == {k for k in nai if k.startswith("cond_stage_model.")}
    assert "renamed" not in out and "renamed" not in read_metadata(tmp_path / "out.safetensors")["modeldoc"]


def test_replacing_the_unet_of_sdxl_says_nothing_about_its_untouched_vae(tmp_path, trimmed_tables, make_model, cli):
    target = make_model("target.safetensors", "SDXL")
    source = make_model("source.safetensors", "SDXL", seed="other")
    rc, out, err = cli("replace", target, "--component", "unet", "--from", source, "-o", tmp_path / "out.safetensors")
    assert (rc, err) == (0, "")
    assert "warning" not in out


def test_an_fp16_vae_put_into_sdxl_is_warned_about_without_convert_options(tmp_path, trimmed_tables, make_model, cli):
    target = make_model("target.safetensors", "SDXL", dtype="F32")
    source = make_model("source.safetensors", "SD1")
    rc, out, err = cli("replace", target, "--component", "vae", "--from", source, "-o", tmp_path / "out.safetensors")
    assert (rc, err) == (0, "")
    assert "overflows in fp16" in out and "--vae" not in out  # replace has no --vae option


def test_precision_applies_to_the_new_part_only(tmp_path, trimmed_tables, make_model, messy_target, cli):
    source = make_model("base.safetensors", "SD1", dtype="F32", seed="base")
    rc, out, err = cli("replace", messy_target, "--component", "vae", "--from", source, "--precision", "fp16",
                       "-o", tmp_path / "out.safetensors")
    assert (rc, err) == (0, "")
    result, tgt = read_tensors(tmp_path / "out.safetensors"), digests(messy_target)
    assert {str(t.dtype) for k, t in result.items() if k.startswith(SD1_VAE)} == {"torch.float16"}
    assert digests(tmp_path / "out.safetensors", [k for k in tgt if not k.startswith(SD1_VAE)]) == {
        k: v for k, v in tgt.items() if not k.startswith(SD1_VAE)}


def test_ckpt_output_keeps_every_tensor(tmp_path, trimmed_tables, make_model, messy_target, cli):
    source = make_model("base.safetensors", "SD1", seed="base")
    rc, out, err = cli("replace", messy_target, "--component", "clip", "--from", source, "-o", tmp_path / "out.ckpt")
    assert rc == 0, err
    assert "metadata" in out  # a .ckpt cannot carry it: said, not silently lost
    result, tgt, src = digests(tmp_path / "out.ckpt"), digests(messy_target), digests(source)
    assert result == {**{k: v for k, v in tgt.items() if not k.startswith(SD1_CLIP)},
                      **{k: v for k, v in src.items() if k.startswith(SD1_CLIP)}}


@pytest.mark.parametrize("command", ["replace", "export"])
def test_dry_run_writes_nothing(tmp_path, trimmed_tables, make_model, cli, command):
    model = make_model("model.safetensors", "SD1")
    before = listing(tmp_path)
    argv = (("replace", model, "--component", "vae", "--from", model) if command == "replace"
            else ("export", model, "--component", "vae"))
    rc, out, err = cli(*argv, "-o", tmp_path / "out.safetensors", "--dry-run")
    assert (rc, err) == (0, "") and "dry run: nothing written" in out
    rc, out, err = cli(*argv, "-o", tmp_path / "out.safetensors", "--dry-run", "--json")
    assert rc == 0 and json.loads(out)["dry_run"] is True
    assert listing(tmp_path) == before


def test_json_result_and_verify(tmp_path, trimmed_tables, make_model, cli):
    model = make_model("model.safetensors", "SD1")
    base = make_model("base.safetensors", "SD1", seed="base")
    rc, out, err = cli("replace", model, "--component", "unet", "--from", base, "-o", tmp_path / "out.safetensors",
                       "--json", "--verify")
    assert (rc, err) == (0, "")
    result = json.loads(out)
    assert result["output"] == str(tmp_path / "out.safetensors") and result["verified"] is True
    assert result["keys"] == len(digests(model))


def test_existing_output_is_refused_without_overwrite(tmp_path, trimmed_tables, make_model, cli):
    model = make_model("model.safetensors", "SD1")
    (tmp_path / "out.safetensors").write_bytes(b"keep me")
    rc, out, err = cli("replace", model, "--component", "vae", "--from", model, "-o", tmp_path / "out.safetensors")
    assert rc == 2 and "--overwrite" in err
    assert (tmp_path / "out.safetensors").read_bytes() == b"keep me"
    rc, out, err = cli("replace", model, "--component", "vae", "--from", model, "-o", tmp_path / "out.safetensors",
                       "--overwrite")
    assert rc == 0 and digests(tmp_path / "out.safetensors") == digests(model)


def test_replace_needs_a_checkpoint_target(tmp_path, trimmed_tables, make_model, cli):
    model = make_model("model.safetensors", "SD1")
    assert cli("export", model, "--component", "vae", "-o", tmp_path / "vae.safetensors")[0] == 0
    rc, out, err = cli("replace", tmp_path / "vae.safetensors", "--component", "vae", "--from", model,
                       "-o", tmp_path / "out.safetensors")
    assert rc == 2 and "checkpoint" in err and "VAE" in err and err.count("\n") == 1
