"""SD3 / Flux: export the separate files Forge and ComfyUI load, and build them back into one file.

Real key names and shapes, slimmed to the small tensors (a real Flux file is 23 GB).
"""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from lib_modeldoc.cli import main
from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.samples import flux_checkpoint_specs, sd3_checkpoint_specs, write_safetensors_sample

LIMIT = 160_000  # bytes: keeps norms, biases, the VAE's conv_in / conv_out


def slim(specs):
    keep = ("decoder.conv_in.weight", "encoder.conv_out.weight")
    return [s for s in specs if s.nbytes <= LIMIT or s.key.endswith(keep)]


def read(path):
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


@pytest.fixture
def flux(tmp_path):
    specs = slim(flux_checkpoint_specs())
    values = {s.key: torch.arange(77).reshape(1, 77).numpy() for s in specs if s.key.endswith("position_ids")}
    return write_safetensors_sample(str(tmp_path / "flux-aio.safetensors"), specs, values), specs


PARTS = {"transformer": ("Flux-transformer", "model.diffusion_model."),
         "clip_l": ("CLIP-SD1", "text_encoders.clip_l.transformer."),
         "t5xxl": ("T5XXL", "text_encoders.t5xxl.transformer."),
         "vae": ("VAE", "first_stage_model.")}


def test_export_every_part_and_build_back(flux, tmp_path, capsys):
    path, specs = flux
    assert inspect_model(path).architecture == "Flux"
    files = {}
    for part, (arch, prefix) in PARTS.items():
        out = tmp_path / f"{part}.safetensors"
        assert main(["export", path, "--component", part, "-o", str(out)]) == 0
        tensors, _ = read(out)
        expected = {s.key[len(prefix):] for s in specs if s.key.startswith(prefix)}
        assert set(tensors) == expected and expected, part
        assert all(t.dtype == torch.bfloat16 for k, t in tensors.items() if not k.endswith("position_ids")), part  # kept
        assert inspect_model(str(out)).architecture == arch, part
        files[part] = out
    out = tmp_path / "rebuilt.safetensors"
    assert main(["build", "--arch", "Flux", "--unet", str(files["transformer"]), "--clip", str(files["clip_l"]),
                 "--t5xxl", str(files["t5xxl"]), "--vae", str(files["vae"]), "-o", str(out)]) == 0
    rebuilt, _ = read(out)
    original, _ = read(path)
    assert set(rebuilt) == set(original)
    assert all(torch.equal(rebuilt[k], original[k]) for k in original)
    assert inspect_model(str(out)).architecture == "Flux"


def test_export_to_fp8_keeps_norms_and_biases(flux, tmp_path):
    path, _ = flux
    out = tmp_path / "t.safetensors"
    assert main(["export", path, "--component", "transformer", "--precision", "fp8_e4m3fn", "-o", str(out)]) == 0
    tensors, _ = read(out)
    assert tensors["double_blocks.0.img_attn.norm.key_norm.scale"].dtype == torch.bfloat16
    assert tensors["double_blocks.0.img_attn.qkv.bias"].dtype == torch.bfloat16


def test_build_refuses_a_part_of_another_model(flux, tmp_path, capsys):
    path, _ = flux
    sd_vae = tmp_path / "sd-vae.safetensors"
    from lib_modeldoc.samples import family_specs
    write_safetensors_sample(str(sd_vae), slim(family_specs("VAE")))
    t = tmp_path / "t.safetensors"
    assert main(["export", path, "--component", "transformer", "-o", str(t)]) == 0
    capsys.readouterr()
    rc = main(["build", "--arch", "Flux", "--unet", str(t), "--vae", str(sd_vae), "--allow-missing",
               "-o", str(tmp_path / "x.safetensors")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("modeldoc: error:") and "holds no vae for a Flux model" in err
    assert not (tmp_path / "x.safetensors").exists()


def test_sd3_clip_g_and_missing_parts(tmp_path, capsys):
    specs = slim(sd3_checkpoint_specs())
    path = write_safetensors_sample(str(tmp_path / "sd3.safetensors"), specs)
    out = tmp_path / "clip_g.safetensors"
    assert main(["export", path, "--component", "clip_g", "-o", str(out)]) == 0
    assert all(k.startswith(("text_model.", "text_projection")) for k in read(out)[0])
    assert inspect_model(str(out)).architecture == "CLIP-SDXL"  # bigG in transformers names
    capsys.readouterr()
    assert main(["export", path, "--component", "clip_h", "-o", str(tmp_path / "y.safetensors")]) == 2
    t = tmp_path / "t.safetensors"
    assert main(["export", path, "--component", "transformer", "-o", str(t)]) == 0
    capsys.readouterr()
    assert main(["build", "--arch", "SD3", "--unet", str(t), "-o", str(tmp_path / "z.safetensors")]) == 2
    assert "no clip_l given for SD3" in capsys.readouterr().err
    assert main(["build", "--arch", "SD3", "--unet", str(t), "--allow-missing", "-o", str(tmp_path / "z.safetensors")]) == 0
    assert inspect_model(str(tmp_path / "z.safetensors")).architecture == "SD3"
