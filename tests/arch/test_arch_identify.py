"""Identification of real-shape files on disk (sparse: real headers, no weight bytes written).

Every architecture id of the CLI contract is produced by at least one file here, and damaged
or padded files keep their family ("SDXL, with findings", never "unknown").
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from lib_modeldoc.arch.tables import table
from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.samples import Spec, family_specs

CONTRACT_ARCHITECTURES = {
    "SD1", "SD1-inpaint", "SD1-pix2pix", "SD2", "SD2-inpaint", "SD2-depth", "SDXL", "SDXL-inpaint",
    "SDXL-refiner", "SD3", "Flux", "VAE", "UNET-SD1", "UNET-SD2", "UNET-SDXL", "CLIP-SD1", "CLIP-SD2",
    "CLIP-SDXL", "ControlNet", "LoRA", "Embedding", "unknown",
    # added by issue 12
    "SD2-unCLIP", "AltDiffusion", "ControlNet-SD2", "ControlNet-SDXL", "T2I-Adapter", "IP-Adapter",
    "SD3-transformer", "Flux-transformer", "T5XXL",
}
SD1_POS = "cond_stage_model.transformer.text_model.embeddings.position_ids"
XL_POS = "conditioner.embedders.0.transformer.text_model.embeddings.position_ids"


def good_ids(specs: list[Spec]) -> dict[str, np.ndarray]:
    """Correct int64 position_ids for every position_ids tensor in ``specs`` (sparse files hold zeros)."""
    return {s.key: np.arange(77, dtype=np.int64).reshape(1, 77) for s in specs if s.key.endswith("position_ids")}


def ids_of(report) -> set[str]:
    return {f.id for f in report.findings}


def inspect_specs(sparse_model, name, specs, metadata=None):
    return inspect_model(sparse_model(name, specs, good_ids(specs), metadata))


# Key samples of the families recognised by pattern ------------------------------------------

def lora_sd1_specs(rank: int = 8) -> list[Spec]:
    specs = []
    for table_id in ("lora_unet_sd1_a", "lora_clip_sd1_a"):
        for key, shape in table(table_id).shapes.items():
            specs.append(Spec(key, "F16" if shape else "F32", tuple(rank if d == -1 else d for d in shape)))
    return specs


def lora_sdxl_specs(rank: int = 4) -> list[Spec]:
    specs = []
    modules = [
        ("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", 640, 640),
        ("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 2048, 640),
        ("lora_unet_middle_block_1_transformer_blocks_0_attn1_to_out_0", 1280, 1280),
        ("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768),
        ("lora_te2_text_model_encoder_layers_0_mlp_fc1", 1280, 5120),
    ]
    for module, fan_in, fan_out in modules:
        specs += [
            Spec(f"{module}.lora_down.weight", "F16", (rank, fan_in)),
            Spec(f"{module}.lora_up.weight", "F16", (fan_out, rank)),
            Spec(f"{module}.alpha", "F16", ()),
        ]
    return specs


def sd3_specs(prefix: str = "model.diffusion_model.") -> list[Spec]:
    hidden, depth = 1536, 24
    specs = [
        Spec(prefix + "x_embedder.proj.weight", "F16", (hidden, 16, 2, 2)),
        Spec(prefix + "x_embedder.proj.bias", "F16", (hidden,)),
        Spec(prefix + "pos_embed", "F16", (1, 36864, hidden)),
        Spec(prefix + "context_embedder.weight", "F16", (hidden, 4096)),
        Spec(prefix + "y_embedder.mlp.0.weight", "F16", (hidden, 2048)),
        Spec(prefix + "t_embedder.mlp.0.weight", "F16", (hidden, 256)),
        Spec(prefix + "final_layer.linear.weight", "F16", (64, hidden)),
    ]
    for i in range(depth):
        for block in ("x_block", "context_block"):
            base = f"{prefix}joint_blocks.{i}.{block}."
            specs += [
                Spec(base + "adaLN_modulation.1.weight", "F16", (6 * hidden, hidden)),
                Spec(base + "adaLN_modulation.1.bias", "F16", (6 * hidden,)),
                Spec(base + "attn.qkv.weight", "F16", (3 * hidden, hidden)),
                Spec(base + "attn.proj.weight", "F16", (hidden, hidden)),
                Spec(base + "mlp.fc1.weight", "F16", (4 * hidden, hidden)),
                Spec(base + "mlp.fc2.weight", "F16", (hidden, 4 * hidden)),
            ]
    specs += [Spec("text_encoders.clip_l.transformer.text_model." + k, "F16", s)
              for k, s in table("clip_l").shapes.items() if not k.endswith("position_ids")]
    specs += [
        Spec("first_stage_model.decoder.conv_in.weight", "F16", (512, 16, 3, 3)),
        Spec("first_stage_model.encoder.conv_out.weight", "F16", (32, 512, 3, 3)),
    ]
    return specs


def flux_specs(prefix: str = "") -> list[Spec]:
    hidden = 3072
    specs = [
        Spec(prefix + "img_in.weight", "BF16", (hidden, 64)),
        Spec(prefix + "txt_in.weight", "BF16", (hidden, 4096)),
        Spec(prefix + "vector_in.in_layer.weight", "BF16", (hidden, 768)),
        Spec(prefix + "time_in.in_layer.weight", "BF16", (hidden, 256)),
        Spec(prefix + "guidance_in.in_layer.weight", "BF16", (hidden, 256)),
        Spec(prefix + "final_layer.linear.weight", "BF16", (64, hidden)),
    ]
    for i in range(19):
        for stream in ("img", "txt"):
            base = f"{prefix}double_blocks.{i}.{stream}_"
            specs += [
                Spec(base + "attn.norm.key_norm.scale", "BF16", (128,)),
                Spec(base + "attn.norm.query_norm.scale", "BF16", (128,)),
                Spec(base + "attn.qkv.weight", "BF16", (3 * hidden, hidden)),
                Spec(base + "attn.proj.weight", "BF16", (hidden, hidden)),
                Spec(base + "mlp.0.weight", "BF16", (4 * hidden, hidden)),
                Spec(base + "mod.lin.weight", "BF16", (6 * hidden, hidden)),
            ]
    for i in range(38):
        base = f"{prefix}single_blocks.{i}."
        specs += [
            Spec(base + "linear1.weight", "BF16", (21504, hidden)),
            Spec(base + "linear2.weight", "BF16", (hidden, 15360)),
            Spec(base + "norm.key_norm.scale", "BF16", (128,)),
            Spec(base + "modulation.lin.weight", "BF16", (3 * hidden, hidden)),
        ]
    return specs


# Every contract architecture from a real-shape file -----------------------------------------

FULL = ["SD1", "SD1-inpaint", "SD1-pix2pix", "SD2", "SD2-inpaint", "SD2-depth", "SDXL", "SDXL-inpaint",
        "SDXL-refiner", "VAE", "UNET-SD1", "UNET-SD2", "UNET-SDXL", "CLIP-SD1", "CLIP-SD2", "CLIP-SDXL",
        "ControlNet"]


@pytest.mark.parametrize("arch", FULL)
def test_family_sample_identifies_exactly(sparse_model, arch):
    specs = family_specs(arch)
    report = inspect_specs(sparse_model, f"{arch}.safetensors", specs)
    assert report.architecture == arch, report.evidence
    assert report.junk.keys == 0 and report.junk.bytes == 0
    assert report.size_bytes > sum(s.nbytes for s in specs)
    assert all(c.present and c.complete for c in report.components.values())
    assert not ids_of(report) & {"component.missing", "component.incomplete", "arch.unknown", "junk"}


@pytest.mark.parametrize(("arch", "components"), [
    ("SD1", {"unet": 686, "vae": 248, "clip_l": 197}),
    ("SD2", {"unet": 686, "vae": 248, "clip_h": 294}),
    ("SDXL", {"unet": 1680, "vae": 248, "clip_l": 197, "clip_g": 390}),
    ("SDXL-refiner", {"unet": 1220, "vae": 248, "clip_g": 390}),
])
def test_checkpoint_components_follow_the_contract_names(sparse_model, arch, components):
    specs = family_specs(arch)
    report = inspect_specs(sparse_model, "m.safetensors", specs)
    assert {k: v.keys for k, v in report.components.items()} == components
    by_key = {s.key: s.nbytes for s in specs}
    assert sum(c.bytes for c in report.components.values()) == sum(by_key.values())


def test_full_size_sdxl_sample_has_the_real_size(sparse_model):
    specs = family_specs("SDXL", dtype="F16")
    report = inspect_specs(sparse_model, "xl.safetensors", specs, metadata={"format": "pt"})
    # An fp16 SDXL base checkpoint is ~6.9 GB: the shapes are real even though the file is sparse.
    assert 6_800_000_000 < report.size_bytes < 7_000_000_000
    # A clean fp16 file prunes to itself, plus the provenance note convert adds to the metadata.
    assert 0 <= report.pruned_size_bytes - report.size_bytes < 1024


@pytest.mark.parametrize("maker", [lora_sd1_specs, lora_sdxl_specs], ids=["kohya-sd1", "kohya-sdxl"])
def test_kohya_lora_is_lora(sparse_model, maker):
    report = inspect_specs(sparse_model, "lora.safetensors", maker())
    assert report.architecture == "LoRA"
    assert report.junk.to_dict() == {"keys": 0, "bytes": 0, "groups": []}
    assert "arch.inspect_only" in ids_of(report)


@pytest.mark.parametrize("module", [
    "lora_unet_double_blocks_{i}_img_attn_qkv",  # kohya Flux
    "diffusion_model.double_blocks.{i}.img_attn.qkv",  # ComfyUI Flux
    "double_blocks.{i}.img_attn.qkv",  # bare PEFT names: still a LoRA, not a Flux model
    "joint_blocks.{i}.x_block.attn.qkv",  # bare SD3 names
])
def test_lora_patching_newer_models_is_lora(sparse_model, module):
    specs = []
    for i in range(19):
        name = module.format(i=i)
        kohya = name.startswith("lora_")
        down, up = (".lora_down.weight", ".lora_up.weight") if kohya else (".lora_A.weight", ".lora_B.weight")
        specs += [Spec(name + down, "BF16", (16, 3072)), Spec(name + up, "BF16", (9216, 16))]
    assert inspect_specs(sparse_model, "flux-lora.safetensors", specs).architecture == "LoRA"


@pytest.mark.parametrize(("specs", "arch"), [
    ([Spec("emb_params", "F32", (4, 768))], "Embedding"),
    ([Spec("clip_l", "F16", (2, 768)), Spec("clip_g", "F16", (2, 1280))], "Embedding"),
])
def test_safetensors_embedding_is_embedding(sparse_model, specs, arch):
    assert inspect_specs(sparse_model, "emb.safetensors", specs).architecture == arch


def test_pt_embedding_with_string_to_param_is_embedding(write_ckpt):
    torch = pytest.importorskip("torch")
    path = write_ckpt("style.pt", {
        "string_to_token": {"*": 265},
        "string_to_param": {"*": torch.zeros(3, 768)},
        "name": "style", "step": 1500, "sd_checkpoint": "abcdef12", "sd_checkpoint_name": "v1-5",
    })
    report = inspect_model(path)
    assert report.format == "ckpt"
    assert report.architecture == "Embedding"
    assert report.junk.keys == 0


@pytest.mark.parametrize(("maker", "arch"), [
    (lambda: sd3_specs(), "SD3"),
    (lambda: sd3_specs(prefix=""), "SD3-transformer"),
    (lambda: flux_specs(), "Flux-transformer"),
    (lambda: flux_specs(prefix="model.diffusion_model."), "Flux"),
], ids=["sd3", "sd3-bare", "flux", "flux-prefixed"])
def test_newer_models_are_recognised_by_their_keys(sparse_model, maker, arch):
    report = inspect_specs(sparse_model, "new.safetensors", maker())
    assert report.architecture == arch
    assert "arch.inspect_only" in ids_of(report)
    assert report.junk.keys == 0


def test_every_contract_architecture_is_covered_here():
    from lib_modeldoc.samples import SAMPLES

    covered = set(FULL) | {"LoRA", "Embedding", "SD3", "Flux", "unknown"} | {s.architecture for s in SAMPLES.values()}
    assert covered == CONTRACT_ARCHITECTURES


# Partial, damaged and padded files keep their family ----------------------------------------

def test_sdxl_without_position_ids_is_healthy_sdxl(sparse_model):
    """model-toolkit #39 (Juggernaut XL): position_ids absent is normal, not broken or unknown."""
    specs = [s for s in family_specs("SDXL") if s.key != XL_POS]
    report = inspect_specs(sparse_model, "juggernaut.safetensors", specs)
    assert report.architecture == "SDXL"
    assert report.components["clip_l"].complete and report.components["clip_l"].keys == 196
    assert report.clip_position_ids == ()
    assert not [f for f in report.findings if f.severity.value in ("error", "warning")]


def test_juggernaut_xl_with_float_ids_is_sdxl_not_a_broken_vae(sparse_model):
    """model-toolkit #39: called "VAE-v1-BROKEN, 6.31 GB of junk, pruned to 159 MB"; it is SDXL."""
    specs = [Spec(s.key, "F32", s.shape) if s.key == XL_POS else s for s in family_specs("SDXL")]
    values = np.arange(77, dtype=np.float32).reshape(1, 77)
    values[0, 76] = 75.9975
    report = inspect_model(sparse_model("juggernautXL_v5.safetensors", specs, {XL_POS: values}))
    assert report.architecture == "SDXL"
    assert report.junk.keys == 0
    assert all(c.complete for c in report.components.values())
    assert report.pruned_size_bytes > 0.99 * report.size_bytes
    assert [(p.key, p.wrong) for p in report.clip_position_ids] == [(XL_POS, (76,))]


def test_sdxl_with_twenty_unet_keys_missing_is_incomplete_sdxl(sparse_model):
    specs = family_specs("SDXL")
    unet = [s.key for s in specs if s.key.startswith("model.diffusion_model.")]
    dropped = set(unet[100:120])
    report = inspect_specs(sparse_model, "cut.safetensors", [s for s in specs if s.key not in dropped])
    assert report.architecture == "SDXL"
    assert not report.components["unet"].complete
    assert report.components["unet"].keys == len(unet) - 20
    incomplete = [f for f in report.findings if f.id == "component.incomplete"]
    assert len(incomplete) == 1 and incomplete[0].severity.value == "error"
    assert "20 of 1680 keys missing" in incomplete[0].message
    assert set(incomplete[0].keys) <= dropped and incomplete[0].keys


def test_sd1_without_clip_is_sd1_with_clip_missing(sparse_model):
    specs = family_specs("SD1", components=["unet", "vae"])
    report = inspect_specs(sparse_model, "noclip.safetensors", specs)
    assert report.architecture == "SD1"
    assert report.components["clip_l"].present is False
    missing = [f for f in report.findings if f.id == "component.missing"]
    assert len(missing) == 1 and "clip_l" in missing[0].message
    assert missing[0].severity.value == "error"


def test_sd1_with_two_gigabytes_of_embedding_manager_is_sd1_with_junk(sparse_model):
    specs = family_specs("SD1", dtype="F32")
    junk = [Spec(f"embedding_manager.embedder.transformer.text_model.{k}", "F32", s)
            for k, s in table("clip_l").shapes.items() if not k.endswith("position_ids")]
    junk += [Spec(f"embedding_manager.string_to_param.{i}", "F32", (16384, 8192)) for i in range(4)]
    report = inspect_specs(sparse_model, "padded.safetensors", specs + junk)
    junk_bytes = sum(s.nbytes for s in junk)
    assert junk_bytes > 2 * 1024**3
    assert report.architecture == "SD1"
    assert report.junk.keys == len(junk) == 200
    assert report.junk.bytes == junk_bytes
    assert report.junk.to_dict()["groups"] == [{"pattern": "embedding_manager.*", "keys": 200, "bytes": junk_bytes, "group": "embedding_manager"}]
    assert "junk" in ids_of(report)
    assert all(c.complete for c in report.components.values())


def test_sd1_with_leftover_lora_keys_is_sd1_with_junk(sparse_model):
    specs = family_specs("SD1")
    leftovers = lora_sd1_specs()[:30]
    report = inspect_specs(sparse_model, "merged.safetensors", specs + leftovers)
    assert report.architecture == "SD1"
    assert report.junk.keys == 30


@pytest.mark.parametrize("ema", [False, True])
def test_instruct_pix2pix_is_not_unknown(sparse_model, ema):
    """model-toolkit #10: the 8-channel UNet (and its EMA) is InstructPix2Pix, not unknown."""
    specs = family_specs("SD1-pix2pix", dtype="F32", ema=ema)
    report = inspect_specs(sparse_model, "ip2p.safetensors", specs)
    assert report.architecture == "SD1-pix2pix"
    assert report.junk.keys == 0
    assert report.ema.keys == (686 if ema else 0)
    assert not ids_of(report) & {"component.incomplete", "component.missing", "arch.unknown"}


def test_sd1_checkpoint_with_inpaint_unet_keys_is_inpaint(sparse_model):
    """The 9-channel conv is the only difference; it decides the family."""
    specs = family_specs("SD1-inpaint")
    assert [s.shape for s in specs if s.key == "model.diffusion_model.input_blocks.0.0.weight"] == [(320, 9, 3, 3)]
    assert inspect_specs(sparse_model, "inp.safetensors", specs).architecture == "SD1-inpaint"


def test_random_unrelated_keys_are_unknown_with_no_junk(sparse_model):
    specs = [Spec(f"bert.encoder.layer.{i}.attention.self.{p}.weight", "F32", (768, 768))
             for i in range(12) for p in ("query", "key", "value")]
    specs += [Spec("classifier.weight", "F32", (2, 768)), Spec("classifier.bias", "F32", (2,))]
    report = inspect_specs(sparse_model, "bert.safetensors", specs)
    assert report.architecture == "unknown"
    assert "arch.unknown" in ids_of(report)
    assert report.junk.keys == 0 and report.junk.bytes == 0
    assert report.components == {}
    assert report.pruned_size_bytes <= report.size_bytes


@pytest.mark.parametrize("keep_ids", [True, False])
def test_evidence_counts_never_exceed_the_table(sparse_model, keep_ids):
    specs = [s for s in family_specs("SD1") if keep_ids or s.key != SD1_POS]
    report = inspect_specs(sparse_model, "sd1.safetensors", specs)
    counts = [tuple(map(int, m)) for line in report.evidence for m in re.findall(r"\((\d+)/(\d+) keys\)", line)]
    assert len(counts) == 3
    assert all(found == expected for found, expected in counts), report.evidence
