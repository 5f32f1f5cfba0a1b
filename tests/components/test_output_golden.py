"""Every file convert, replace, export and build write, pinned byte for byte (SHA-256).

The round-trip tests check values; this pins everything else a refactor could move: key order,
dtypes, data offsets, metadata order and the provenance record. Only the version inside the
``modeldoc`` record is masked. Inputs are trimmed-table models with fixed values (the
``make_model`` fixture). ``MODELDOC_UPDATE_GOLDEN=1`` rewrites the pinned digests after a change
that is meant to alter output; say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from lib_modeldoc._version import __version__
from lib_modeldoc.samples import Spec

GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "golden" / "outputs.json"
UPDATE = bool(os.environ.get("MODELDOC_UPDATE_GOLDEN"))
CLIP = "cond_stage_model.transformer.text_model."
NAI = "cond_stage_model.transformer."

# name -> argv; {src:NAME} is an input file, {out} this run's output, {res:NAME} an earlier output.
RUNS: dict[str, tuple[str, ...]] = {
    "convert-default.safetensors": ("convert", "{src:sd1}", "-o", "{out}"),
    "convert-keep-all.safetensors": ("convert", "{src:sd1}", "-o", "{out}", "--precision", "keep", "--prune", "none",
                                     "--keep-junk"),
    "convert-ema-only.safetensors": ("convert", "{src:sd1}", "-o", "{out}", "--prune", "ema-only"),
    "convert-fp8.safetensors": ("convert", "{src:sd1}", "-o", "{out}", "--precision", "fp8_e4m3fn"),
    "convert-xl-fp8.safetensors": ("convert", "{src:sdxl}", "-o", "{out}", "--precision", "fp8_e5m2"),
    "convert-bf16-drop-unknown.safetensors": ("convert", "{src:sd1}", "-o", "{out}", "--precision", "bf16",
                                              "--drop-unknown"),
    "convert-parts.safetensors": ("convert", "{src:sd1}", "-o", "{out}", "--vae", "copy", "--clip", "delete",
                                  "--other", "delete"),
    "convert.ckpt": ("convert", "{src:sd1}", "-o", "{out}"),
    "convert-strip.safetensors": ("convert", "{src:sd1}", "-o", "{out}", "--strip-metadata"),
    "convert-float-ids.safetensors": ("convert", "{src:sd1-float-ids}", "-o", "{out}"),
    "convert-fix-clip.safetensors": ("convert", "{src:sd1-float-ids}", "-o", "{out}", "--fix-clip"),
    "convert-nai.safetensors": ("convert", "{src:sd1-nai}", "-o", "{out}"),
    "convert-bake.safetensors": ("convert", "{src:sd1}", "-o", "{out}", "--bake-vae", "{src:sd1-b}"),
    "convert-xl-bake-fp8.safetensors": ("convert", "{src:sdxl}", "-o", "{out}", "--bake-vae", "{src:sdxl-b}",
                                        "--precision", "fp8_e4m3fn"),
    "convert-sd2.ckpt": ("convert", "{src:sd2}", "-o", "{out}"),
    "convert-flux-fp8.safetensors": ("convert", "{src:flux}", "-o", "{out}", "--precision", "fp8_e4m3fn", "--force"),
    "replace-vae.safetensors": ("replace", "{src:sd1}", "--component", "vae", "--from", "{src:sd1-b}", "-o", "{out}"),
    "replace-vae-fp16.safetensors": ("replace", "{src:sd1}", "--component", "vae", "--from", "{src:sd1-b}", "-o", "{out}",
                                     "--precision", "fp16"),
    "replace-xl-clip.safetensors": ("replace", "{src:sdxl}", "--component", "clip", "--from", "{src:sdxl-b}", "-o",
                                    "{out}"),
    "replace-unet.ckpt": ("replace", "{src:sd1}", "--component", "unet", "--from", "{src:sd1-b}", "-o", "{out}"),
    "replace-vae-of-nai.safetensors": ("replace", "{src:sd1-nai}", "--component", "vae", "--from", "{src:sd1}", "-o",
                                       "{out}"),
    "replace-clip-from-nai.safetensors": ("replace", "{src:sd1}", "--component", "clip", "--from", "{src:sd1-nai}",
                                          "-o", "{out}", "--precision", "bf16"),
    "replace-xl-vae-fp8.safetensors": ("replace", "{src:sdxl}", "--component", "vae", "--from", "{src:sdxl-b}", "-o",
                                       "{out}", "--precision", "fp8_e4m3fn"),
    "export-vae.safetensors": ("export", "{src:sd1}", "--component", "vae", "-o", "{out}"),
    "export-unet.safetensors": ("export", "{src:sd1}", "--component", "unet", "-o", "{out}"),
    "export-ema.safetensors": ("export", "{src:sd1}", "--component", "ema-unet", "-o", "{out}"),
    "export-clip.safetensors": ("export", "{src:sd1}", "--component", "clip", "-o", "{out}"),
    "export-clip-of-nai.safetensors": ("export", "{src:sd1-nai}", "--component", "clip", "-o", "{out}"),
    "export-fix-clip.safetensors": ("export", "{src:sd1-float-ids}", "--component", "clip", "-o", "{out}", "--fix-clip"),
    "export-xl-clip.safetensors": ("export", "{src:sdxl}", "--component", "clip", "-o", "{out}"),
    "export-xl-clip-l.ckpt": ("export", "{src:sdxl}", "--component", "clip_l", "-o", "{out}"),
    "export-xl-clip-g.safetensors": ("export", "{src:sdxl}", "--component", "clip_g", "-o", "{out}"),
    "export-sd2-clip-bf16.safetensors": ("export", "{src:sd2}", "--component", "clip", "-o", "{out}", "--precision",
                                         "bf16"),
    "export-xl-unet-fp8.safetensors": ("export", "{src:sdxl}", "--component", "unet", "-o", "{out}", "--precision",
                                       "fp8_e4m3fn"),
    "export-flux-transformer-fp8.safetensors": ("export", "{src:flux}", "--component", "transformer", "-o", "{out}",
                                                "--precision", "fp8_e4m3fn"),
    "build-sd1.safetensors": ("build", "--arch", "SD1", "--unet", "{res:export-unet.safetensors}", "--vae",
                              "{res:export-vae.safetensors}", "--clip", "{res:export-clip.safetensors}", "-o", "{out}"),
    "build-sd1-fix-clip.safetensors": ("build", "--arch", "SD1", "--unet", "{src:sd1-float-ids}", "--vae",
                                       "{src:sd1-float-ids}", "--clip", "{src:sd1-float-ids}", "-o", "{out}",
                                       "--fix-clip", "--precision", "fp16"),
    "build-sd1-missing-vae.ckpt": ("build", "--arch", "SD1", "--unet", "{src:sd1-float-ids}", "--clip",
                                   "{src:sd1-float-ids}", "-o", "{out}", "--allow-missing"),
    "build-xl.safetensors": ("build", "--arch", "SDXL", "--unet", "{src:sdxl}", "--vae", "{src:sdxl-b}", "--clip",
                             "{res:export-xl-clip-l.ckpt}", "--clip-g", "{res:export-xl-clip-g.safetensors}", "-o",
                             "{out}"),
    "build-flux-fp8.safetensors": ("build", "--arch", "Flux", "--unet", "{src:flux}", "--clip", "{src:flux}", "--t5xxl",
                                   "{src:flux}", "--vae", "{src:flux}", "-o", "{out}", "--precision", "fp8_e5m2"),
}


@pytest.fixture
def sources(tmp_path, trimmed_tables, make_model):
    folder = tmp_path / "src"
    folder.mkdir()
    junk = [Spec("embedding_manager.embedder.transformer.text_model.x", "F32", (4, 4)), Spec("betas", "F32", (1000,)),
            Spec("some_unknown.weight", "F32", (3,)), Spec("model.diffusion_model.extra.weight", "F32", (2,))]
    ids = np.array([[i - (0.0001 if i in (3, 40) else 0) for i in range(77)]], dtype=np.float32)
    paths = {
        "sd1": make_model("src/sd1.safetensors", "SD1", dtype="F32", ema=True, extra=junk, metadata={"foo": "bar"}),
        "sd1-b": make_model("src/sd1-b.safetensors", "SD1", seed="b"),
        "sd1-float-ids": make_model("src/sd1-float-ids.safetensors", "SD1", dtype="F32", seed="p",
                                    extra=[Spec(CLIP + "embeddings.position_ids", "F32", (1, 77))],
                                    values={CLIP + "embeddings.position_ids": ids}),
        "sd2": make_model("src/sd2.safetensors", "SD2", dtype="F32"),
        "sdxl": make_model("src/sdxl.safetensors", "SDXL", dtype="F32"),
        "sdxl-b": make_model("src/sdxl-b.safetensors", "SDXL", seed="xb"),
    }
    nai = {k.replace(CLIP, NAI): v for k, v in load_file(paths["sd1-b"]).items()}
    paths["sd1-nai"] = str(folder / "sd1-nai.safetensors")
    save_file(nai, paths["sd1-nai"], metadata={"format": "pt"})
    rng = np.random.default_rng(1)
    flux = {k: rng.standard_normal(shape).astype(np.float32) for k, shape in {
        "model.diffusion_model.double_blocks.0.img_attn.qkv.weight": (8, 4),
        "model.diffusion_model.double_blocks.0.img_attn.norm.query_norm.scale": (4,),
        "model.diffusion_model.single_blocks.0.linear1.weight": (6, 4),
        "text_encoders.clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight": (4, 4),
        "text_encoders.t5xxl.transformer.encoder.block.0.layer.0.SelfAttention.q.weight": (4, 4),
        "first_stage_model.decoder.conv_in.weight": (4, 4, 3, 3),
    }.items()}
    f64 = "model.diffusion_model.single_blocks.0.linear1.weight"  # float64 is always narrowed
    flux[f64] = flux[f64].astype(np.float64)
    paths["flux"] = str(folder / "flux.safetensors")
    save_file(flux, paths["flux"], metadata={"format": "pt"})
    return {k: str(v) for k, v in paths.items()}


def _digest(path: pathlib.Path) -> str:
    data = path.read_bytes().replace(f'\\"version\\": \\"{__version__}\\"'.encode(), b'\\"version\\": \\"<v>\\"')
    return hashlib.sha256(data).hexdigest()


def test_outputs_are_byte_identical_to_their_pinned_digests(tmp_path, sources, cli):
    out = tmp_path / "out"
    out.mkdir()

    def arg(a: str) -> str:
        if a == "{out}":
            return str(out / name)
        if a.startswith("{src:"):
            return sources[a[5:-1]]
        if a.startswith("{res:"):
            return str(out / a[5:-1])
        return a

    digests = {}
    for name, argv in RUNS.items():
        rc, _, err = cli(*[arg(a) for a in argv])
        assert (rc, err) == (0, ""), (name, err)
        digests[name] = _digest(out / name)
    if UPDATE:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n", encoding="utf-8", newline="\n")
        return
    assert GOLDEN.exists(), f"no golden file {GOLDEN}: run with MODELDOC_UPDATE_GOLDEN=1 once"
    pinned = json.loads(GOLDEN.read_text(encoding="utf-8"))
    changed = sorted(n for n in RUNS if digests[n] != pinned.get(n))
    assert not changed, f"outputs changed: {', '.join(changed)}"
