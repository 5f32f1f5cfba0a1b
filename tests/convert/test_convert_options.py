"""Every toggle of ``convert`` on an identified SD1 (real keys and shapes, small tensors only):
junk, EMA, per-part actions, buffers and markers, metadata, --dry-run, --json, --verify.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from convert_support import (
    CLIP_KEY, EMA_KEY, JUNK_KEY, SD1_POS, UNET, UNET_KEY, UNET_KEY2, VAE_KEY, VAE_KEY2, f32, listing,
    read_safetensors, slim_specs,
)
from lib_modeldoc.arch.families import KNOWN_BUFFERS
from lib_modeldoc.samples import Spec, broken_position_ids

MARKERS = ("v_pred", "ztsnr")
METADATA = {"sd_merge_recipe": '{"type": "webui", "multiplier": 0.5}', "modelspec.title": "Rich merge",
            "ss_zero_terminal_snr": "True"}
VALUES = {
    UNET_KEY: f32([5.0, 6.0, 7.0, 8.0]),
    UNET_KEY2: np.linspace(-3, 3, 1280, dtype=np.float32),
    EMA_KEY: f32([1.0, 2.0, 3.0, 4.0]),
    "model_ema.diffusion_modeltime_embed0bias": np.linspace(3, -3, 1280, dtype=np.float32),
    VAE_KEY: np.linspace(-1, 1, 128, dtype=np.float32),
    VAE_KEY2: np.arange(64, dtype=np.float32).reshape(8, 8, 1, 1) / 7,
    CLIP_KEY: np.linspace(0.5, 1.5, 768, dtype=np.float32),
    JUNK_KEY: np.ones(768, dtype=np.float32),
    SD1_POS: broken_position_ids(),
    "alphas_cumprod": np.linspace(0.9991, 0.0047, 1000),
}
EXTRA = (Spec(JUNK_KEY, "F32", (768,)), Spec("alphas_cumprod", "F64", (1000,)), Spec(SD1_POS, "F32", (1, 77)),
         *(Spec(m, "F32", (0,)) for m in MARKERS))


@pytest.fixture
def rich(slim_model):
    """A slim fp32 SD1 with EMA, junk, float64 buffer, v_pred/ztsnr markers, float position_ids."""
    return slim_model("rich.safetensors", dtype="F32", ema=True, extra=EXTRA, values=VALUES, metadata=METADATA)


def source_keys() -> set[str]:
    return {s.key for s in slim_specs(dtype="F32", ema=True)} | {s.key for s in EXTRA}


def is_ema(key: str) -> bool:
    return key.startswith("model_ema.diffusion_model")


def convert(cli, src, out, *options):
    rc, stdout, err = cli("convert", src, "-o", out, "--json", *options)
    assert (rc, err) == (0, ""), err
    result = json.loads(stdout)
    tensors, metadata = read_safetensors(out)
    return result, tensors, metadata


def test_defaults_prune_junk_and_ema_and_cast_to_fp16(rich, cli, tmp_path):
    result, out, metadata = convert(cli, rich, tmp_path / "out.safetensors")
    expected = {k for k in source_keys() if not is_ema(k) and k != JUNK_KEY}
    assert set(out) == expected
    assert out[UNET_KEY].dtype == torch.float16 and out[UNET_KEY].tolist() == [5.0, 6.0, 7.0, 8.0]
    assert torch.equal(out[VAE_KEY], torch.from_numpy(VALUES[VAE_KEY]).half())
    assert torch.equal(out[CLIP_KEY], torch.from_numpy(VALUES[CLIP_KEY]).half())
    floats = {k for k, v in out.items() if v.is_floating_point()}
    assert {k for k in floats if out[k].dtype != torch.float16} == {"alphas_cumprod", *MARKERS}
    assert out["alphas_cumprod"].dtype == torch.float32
    assert torch.equal(out["alphas_cumprod"], torch.from_numpy(VALUES["alphas_cumprod"]).float())
    assert result["dropped"]["junk"] == {"keys": 1, "bytes": 768 * 4}
    assert result["dropped"]["ema"]["keys"] == sum(1 for k in source_keys() if is_ema(k))
    assert result["keys"] == len(out)


def test_keep_junk_keeps_it_converted(rich, cli, tmp_path):
    _, out, _ = convert(cli, rich, tmp_path / "out.safetensors", "--keep-junk")
    assert out[JUNK_KEY].dtype == torch.float16 and torch.equal(out[JUNK_KEY], torch.ones(768, dtype=torch.float16))


def test_prune_none_keeps_ema_values(rich, cli, tmp_path):
    _, out, _ = convert(cli, rich, tmp_path / "out.safetensors", "--prune", "none")
    assert {k for k in source_keys() if is_ema(k)} <= set(out)
    assert out[EMA_KEY].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert out[UNET_KEY].tolist() == [5.0, 6.0, 7.0, 8.0]


def test_ema_only_makes_the_ema_weights_the_unet(rich, cli, tmp_path):
    result, out, metadata = convert(cli, rich, tmp_path / "out.safetensors", "--prune", "ema-only")
    assert not any(is_ema(k) for k in out)
    assert out[UNET_KEY].tolist() == [1.0, 2.0, 3.0, 4.0]  # the EMA values, not 5..8
    assert torch.equal(out[UNET_KEY2], torch.from_numpy(VALUES["model_ema.diffusion_modeltime_embed0bias"]).half())
    unet_keys = {k for k in source_keys() if k.startswith(UNET)}
    assert {k for k in out if k.startswith(UNET)} == unet_keys
    assert result["dropped"]["UNet replaced by its EMA"]["keys"] == len(unet_keys)
    assert result["renamed"] == len(unet_keys)


def test_ema_only_without_ema_is_refused(slim_model, cli, tmp_path):
    src = slim_model("no-ema.safetensors")
    out = tmp_path / "out.safetensors"
    rc, stdout, err = cli("convert", src, "-o", out, "--prune", "ema-only")
    assert (rc, stdout) == (2, "")
    assert err == f"modeldoc: error: {src}: “ema-only” needs EMA weights, and this file has none\n"
    assert listing(tmp_path) == ["no-ema.safetensors"]


# -- unidentified files ------------------------------------------------------------------------

@pytest.fixture
def unknown(tmp_path):
    path = tmp_path / "mystery.safetensors"
    save_file({"encoder.layer.0.weight": torch.ones(4, 4), "head.bias": torch.zeros(4), "steps": torch.arange(3)},
              str(path))
    return str(path)


def test_unknown_architecture_is_refused_without_keep_junk(unknown, cli, tmp_path):
    out = tmp_path / "out.safetensors"
    rc, stdout, err = cli("convert", unknown, "-o", out)
    assert (rc, stdout) == (2, "")
    assert err == (f"modeldoc: error: {unknown}: not a known architecture, so no tensor can be called junk; "
                   "pass --keep-junk to convert every tensor as it is\n")
    assert not out.exists() and listing(tmp_path) == ["mystery.safetensors"]


@pytest.mark.parametrize("flag", ["--keep-junk", "--force"])
def test_unknown_architecture_converts_every_tensor_with_keep_junk_or_force(unknown, cli, tmp_path, flag):
    _, out, _ = convert(cli, unknown, tmp_path / "out.safetensors", flag)
    assert sorted(out) == ["encoder.layer.0.weight", "head.bias", "steps"]
    assert out["encoder.layer.0.weight"].dtype == torch.float16 and out["steps"].dtype == torch.int64


def test_lora_is_not_pruned_blindly(tmp_path, cli):
    lora = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down_blocks_0_attn.lora_down.weight": torch.ones(4, 8),
               "lora_unet_down_blocks_0_attn.lora_up.weight": torch.ones(8, 4),
               "lora_unet_down_blocks_0_attn.alpha": torch.tensor(4.0)}, str(lora))
    rc, _, err = cli("convert", lora, "-o", tmp_path / "out.safetensors")
    assert rc == 2
    assert err == (f"modeldoc: error: {lora}: a LoRA / LyCORIS, so no tensor can be called junk; "
                   "pass --keep-junk to convert every tensor as it is\n")


# -- per-part actions --------------------------------------------------------------------------

GROUP_KEYS = {"unet": (UNET_KEY, EMA_KEY), "vae": (VAE_KEY, VAE_KEY2), "clip": (CLIP_KEY,), "other": (JUNK_KEY,)}


def group_of(key: str) -> str:
    if key.startswith((UNET, "model_ema.diffusion_model")):
        return "unet"
    if key.startswith("first_stage_model."):
        return "vae"
    if key.startswith("cond_stage_model."):
        return "clip"
    return "other"


@pytest.mark.parametrize("group", ["unet", "vae", "clip", "other"])
@pytest.mark.parametrize("action", ["convert", "copy", "delete"])
def test_part_actions(rich, cli, tmp_path, group, action):
    result, out, _ = convert(cli, rich, tmp_path / "out.safetensors", f"--{group}", action,
                             "--prune", "none", "--keep-junk")
    kept = {k for k in source_keys() if group_of(k) != group or k in KNOWN_BUFFERS} if action == "delete" \
        else source_keys()
    assert set(out) == kept
    for key in GROUP_KEYS[group]:
        if action == "delete":
            assert key not in out
            continue
        want = torch.from_numpy(VALUES[key])
        assert out[key].dtype == (torch.float16 if action == "convert" else torch.float32), key
        assert torch.equal(out[key], want.half() if action == "convert" else want), key
    # every other group still converted to fp16
    for other, keys in GROUP_KEYS.items():
        if other != group:
            assert all(out[k].dtype == torch.float16 for k in keys), other
    if action == "delete" and group != "other":
        assert result["dropped"][f"{group} deleted"]["keys"] == sum(1 for k in source_keys() if group_of(k) == group)


def test_markers_and_buffers_survive_deleting_everything(rich, cli, tmp_path):
    _, out, _ = convert(cli, rich, tmp_path / "out.safetensors",
                        "--unet", "delete", "--vae", "delete", "--clip", "delete", "--other", "delete", "--keep-junk")
    assert sorted(out) == sorted(["alphas_cumprod", *MARKERS])
    assert all(out[m].shape == (0,) and out[m].dtype == torch.float32 for m in MARKERS)


@pytest.mark.parametrize("prune", ["none", "no-ema", "ema-only"])
def test_markers_kept_whatever_the_prune_mode(rich, cli, tmp_path, prune):
    _, out, _ = convert(cli, rich, tmp_path / "out.safetensors", "--prune", prune, "--other", "delete")
    assert all(m in out for m in MARKERS)


# -- metadata ----------------------------------------------------------------------------------

def test_metadata_is_kept_with_provenance(rich, cli, tmp_path):
    _, _, metadata = convert(cli, rich, tmp_path / "out.safetensors", "--fix-clip")
    assert {k: metadata[k] for k in METADATA} == METADATA
    assert metadata["format"] == "pt"
    provenance = json.loads(metadata["modeldoc"])
    assert provenance["source"] == "rich.safetensors"
    assert set(provenance) >= {"version", "source", "changes"}
    changes = "\n".join(provenance["changes"])
    for expected in ("dropped junk", "dropped ema", "cast fp32 -> fp16", "cast fp64 -> fp32",
                     "fixed CLIP position_ids"):
        assert expected in changes, expected
    # ModelSpec keys the source lacked are added (v-prediction: the source has a v_pred marker).
    assert set(metadata) == {*METADATA, "format", "modeldoc", "modelspec.sai_model_spec", "modelspec.architecture",
                             "modelspec.prediction_type"}
    assert (metadata["modelspec.architecture"], metadata["modelspec.prediction_type"]) == ("stable-diffusion-v1", "v")


def test_strip_metadata_keeps_only_format(rich, cli, tmp_path):
    _, _, metadata = convert(cli, rich, tmp_path / "out.safetensors", "--strip-metadata")
    assert metadata == {"format": "pt"}


# -- dry run, JSON, verify ---------------------------------------------------------------------

def test_dry_run_prints_the_plan_and_writes_nothing(rich, cli, tmp_path):
    out = tmp_path / "out.safetensors"
    before = listing(tmp_path)
    rc, stdout, err = cli("convert", rich, "-o", out, "--dry-run")
    assert (rc, err) == (0, "")
    assert listing(tmp_path) == before
    lines = stdout.splitlines()
    assert lines[0] == f"Plan for {rich}"
    assert any(line.startswith("  drop junk: 1 tensor, ") for line in lines)  # plural agreement (advice.count)
    assert any(line.startswith("  drop ema: ") for line in lines)
    assert any(line.startswith("  cast fp32 -> fp16: ") for line in lines)
    assert lines[-1].startswith(f"(dry run: nothing written; {out} would be ")


def test_dry_run_json_predicts_the_exact_size(rich, cli, tmp_path):
    out = tmp_path / "out.safetensors"
    rc, stdout, _ = cli("convert", rich, "-o", out, "--dry-run", "--json")
    assert rc == 0 and not out.exists()
    planned = json.loads(stdout)
    assert planned["dry_run"] is True and planned["output"] == str(out)
    result, tensors, _ = convert(cli, rich, out)
    assert planned["size_bytes"] == result["size_bytes"] == out.stat().st_size
    assert planned["keys"] == result["keys"] == len(tensors)


def test_json_result_fields(rich, cli, tmp_path):
    out = tmp_path / "out.safetensors"
    result, tensors, _ = convert(cli, rich, out, "--verify")
    assert result["output"] == str(out)
    assert result["size_bytes"] == out.stat().st_size
    assert result["keys"] == len(tensors)
    assert result["format"] == "safetensors"
    assert result["verified"] is True
    assert result["source"] == rich
    assert result["source_size_bytes"] > result["size_bytes"]
    assert isinstance(result["changes"], list) and isinstance(result["warnings"], list)
    assert result["casts"]["fp32 -> fp16"] > 0
    assert set(result["actions"]) <= {"copy", "cast", "fix", "synthesize"}


def test_text_result(rich, cli, tmp_path):
    out = tmp_path / "out.safetensors"
    rc, stdout, err = cli("convert", rich, "-o", out, "--verify")
    assert (rc, err) == (0, "")
    first, *rest = stdout.splitlines()
    assert first.startswith(f"Wrote {out}: ") and first.endswith(", verified")
    assert "  - dropped junk (0.0 MB)" in rest


def test_bad_option_values_are_one_line_usage_errors(rich, cli, tmp_path):
    for argv in (("--precision", "fp4"), ("--prune", "all"), ("--unet", "drop"), ("--format", "gguf")):
        rc, stdout, err = cli("convert", rich, "-o", tmp_path / "o.safetensors", *argv)
        assert (rc, stdout) == (2, "")
        assert err.startswith("modeldoc: error: argument ") and err.count("\n") == 1, err
    assert listing(tmp_path) == ["rich.safetensors"]
