"""ModelSpec on write, markers a .ckpt needs, and the fp8 rule (norms, biases, embedders stay 16-bit)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from convert_support import read_ckpt, read_safetensors
from lib_modeldoc.operations.convert import ConvertOptions, plan_convert
from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.io.model import open_model
from lib_modeldoc.samples import write_sample


def test_v_prediction_in_metadata_only_becomes_a_marker_in_a_ckpt(slim_model, cli, tmp_path):
    src = slim_model("vpred.safetensors", "SDXL", metadata={"modelspec.prediction_type": "v"})
    assert "v_pred" not in read_safetensors(src)[0]
    out = tmp_path / "vpred.ckpt"
    rc, stdout, _ = cli("convert", src, "-o", out)
    assert rc == 0 and "added the 'v_pred' marker tensor" in stdout
    back = read_ckpt(out)
    assert back["v_pred"].shape == (0,) and back["v_pred"].dtype == torch.float32
    assert inspect_model(str(out)).has("prediction.v")  # the mark survives: not "healthy" eps any more


def test_ztsnr_from_kohya_metadata_becomes_a_marker_in_a_ckpt(slim_model, cli, tmp_path):
    src = slim_model("z.safetensors", "SD1", metadata={"ss_zero_terminal_snr": "True", "ss_base_model_version": "sd_v1_v"})
    out = tmp_path / "z.ckpt"
    assert cli("convert", src, "-o", out)[0] == 0
    assert {"v_pred", "ztsnr"} <= set(read_ckpt(out))


def test_no_marker_is_invented(slim_model, cli, tmp_path):
    out = tmp_path / "eps.ckpt"
    assert cli("convert", slim_model("eps.safetensors", "SDXL"), "-o", out)[0] == 0
    assert not {"v_pred", "ztsnr"} & set(read_ckpt(out))


@pytest.mark.parametrize("arch, expected", [
    ("SD1", {"modelspec.architecture": "stable-diffusion-v1", "modelspec.prediction_type": "epsilon"}),
    ("SDXL", {"modelspec.architecture": "stable-diffusion-xl-v1-base"}),
    ("SDXL-refiner", {"modelspec.architecture": "stable-diffusion-xl-v1-refiner"}),
    ("SD2", {}),  # 512-base and 768-v look the same: nothing is claimed
])
def test_modelspec_written_where_known(slim_model, cli, tmp_path, arch, expected):
    out = tmp_path / "out.safetensors"
    assert cli("convert", slim_model("m.safetensors", arch), "-o", out)[0] == 0
    metadata = read_safetensors(out)[1]
    spec = {k: v for k, v in metadata.items() if k.startswith("modelspec.") and k != "modelspec.sai_model_spec"}
    assert spec == expected
    assert ("modelspec.sai_model_spec" in metadata) == bool(expected)


def test_existing_modelspec_keys_are_kept(slim_model, cli, tmp_path):
    meta = {"modelspec.architecture": "stable-diffusion-xl-v1-base/custom", "modelspec.title": "Mine",
            "modelspec.sai_model_spec": "1.0.1", "modelspec.prediction_type": "v"}
    out = tmp_path / "out.safetensors"
    assert cli("convert", slim_model("m.safetensors", "SDXL", metadata=meta), "-o", out)[0] == 0
    metadata = read_safetensors(out)[1]
    assert {k: metadata[k] for k in meta} == meta


def test_unclip_gets_its_own_modelspec_id(tmp_path):
    path = write_sample(str(tmp_path / "u.safetensors"), "sd21-unclip-l")
    with open_model(path) as model:
        plan = plan_convert(model, ConvertOptions())
    assert plan.metadata["modelspec.architecture"] == "stable-diffusion-v2-unclip-l"


# -- fp8: norms, biases and embedders stay 16-bit ------------------------------------------------

def test_flux_fp8_plan_keeps_norms_biases_and_embedders_bf16(tmp_path):
    path = write_sample(str(tmp_path / "flux.safetensors"), "flux1-dev-transformer")
    with open_model(path) as model:
        plan = plan_convert(model, ConvertOptions(precision="fp8_e4m3fn", keep_junk=True))
    dtypes = {e.key: e.dtype for e in plan.entries}
    assert dtypes["double_blocks.0.img_attn.qkv.weight"] == "F8_E4M3"
    assert dtypes["single_blocks.37.linear2.weight"] == "F8_E4M3"
    for key in ("double_blocks.0.img_attn.qkv.bias", "double_blocks.0.img_attn.norm.key_norm.scale",
                "img_in.weight", "txt_in.weight", "time_in.in_layer.weight", "vector_in.out_layer.weight",
                "guidance_in.in_layer.weight", "final_layer.linear.weight", "final_layer.adaLN_modulation.1.weight"):
        assert dtypes[key] == "BF16", key
    fp8 = sum(1 for d in dtypes.values() if d == "F8_E4M3")
    assert 0 < fp8 < len(dtypes) and not {d for d in dtypes.values()} - {"F8_E4M3", "BF16"}
    assert any("in 16 bit, not fp8" in c for c in plan.changes)


def test_keep_junk_fp8_writes_flux_weights_fp8_and_the_rest_16bit(tmp_path, cli):
    """A tiny file with Flux key names: what is written, read back with safetensors itself."""
    src = tmp_path / "tiny-flux.safetensors"
    tensors = {
        "double_blocks.0.img_attn.qkv.weight": torch.ones(6, 4, dtype=torch.bfloat16),
        "double_blocks.0.img_attn.qkv.bias": torch.ones(6, dtype=torch.bfloat16),
        "double_blocks.0.img_attn.norm.query_norm.scale": torch.ones(2, dtype=torch.bfloat16),
        "img_in.weight": torch.ones(4, 8, dtype=torch.float32),
        "final_layer.linear.weight": torch.ones(8, 4, dtype=torch.bfloat16),
    }
    save_file(tensors, str(src))
    out = tmp_path / "fp8.safetensors"
    assert cli("convert", src, "-o", out, "--keep-junk", "--precision", "fp8_e4m3fn")[0] == 0
    back = read_safetensors(out)[0]
    assert back["double_blocks.0.img_attn.qkv.weight"].dtype == torch.float8_e4m3fn
    assert back["double_blocks.0.img_attn.qkv.bias"].dtype == torch.bfloat16
    assert back["double_blocks.0.img_attn.norm.query_norm.scale"].dtype == torch.bfloat16
    assert back["img_in.weight"].dtype == torch.float16  # an fp32 embedder goes to 16 bit, not fp8
    assert back["final_layer.linear.weight"].dtype == torch.bfloat16


def test_sdxl_fp8_keeps_unet_norms_and_biases_fp16(tmp_path):
    path = write_sample(str(tmp_path / "xl.safetensors"), "noobai-xl-vpred")
    with open_model(path) as model:
        plan = plan_convert(model, ConvertOptions(precision="fp8_e4m3fn"))
    dtypes = {e.key: e.dtype for e in plan.entries}
    unet = "model.diffusion_model."
    assert dtypes[unet + "input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight"] == "F8_E4M3"
    assert dtypes[unet + "input_blocks.4.1.transformer_blocks.0.norm1.weight"] == "F16"
    assert dtypes[unet + "input_blocks.1.0.in_layers.2.bias"] == "F16"
    assert dtypes[unet + "time_embed.0.weight"] == "F16"
    assert dtypes["v_pred"] == "F32"


@pytest.mark.parametrize("name, expected", [
    ("flux1-dev-transformer", "flux-1-dev"), ("flux1-schnell-transformer-fp8", "flux-1-schnell"),
    ("flux1-dev-checkpoint", "flux-1-dev"), ("sd3-transformer", None),
])
def test_flux_gets_its_modelspec_id(tmp_path, name, expected):
    path = write_sample(str(tmp_path / "f.safetensors"), name)
    with open_model(path) as model:
        plan = plan_convert(model, ConvertOptions(keep_junk=True, precision="keep"))
    assert plan.metadata.get("modelspec.architecture") == expected
