"""Synthetic models with real keys and shapes, for the demo, the tests and the benchmark.

Tensors are taken from the architecture tables. A sample written *sparse* stores only the few
tensors whose values matter (position_ids); the rest of the file is a hole the filesystem does
not allocate, so a real-size 4 GB sample costs a few kilobytes of disk.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .arch.families import ComponentId, family
from .arch.tables import table
from .dtypes import DTYPES
from .io.atomic import atomic_output
from .io.safetensors_write import OutTensor, build_header

__all__ = [
    "Spec", "family_specs", "write_safetensors_sample", "write_demo_sample", "broken_position_ids",
    "Sample", "SAMPLES", "sample_specs", "write_sample",
]


@dataclass(frozen=True)
class Spec:
    """A tensor to synthesise."""

    key: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype].itemsize


def family_specs(arch: str, *, dtype: str = "F16", ema: bool = False, components: Iterable[str] | None = None,
                 tables: dict[str, str] | None = None) -> list[Spec]:
    """Every tensor of a family's components at their checkpoint keys (floats in ``dtype``).

    ``tables`` picks another of a slot's tables (``{"unet": "unet_sd2_unclip_l"}``); by default
    each slot's first. The EMA slot follows the UNet's pick.
    """
    fam = family(arch)
    wanted = set(components) if components is not None else None
    picks = dict(tables or {})
    if "unet" in picks:
        picks.setdefault("ema_unet", picks["unet"])
    specs = []
    for slot in fam.slots:
        if slot.component == ComponentId.EMA_UNET and not ema:
            continue
        if wanted is not None and slot.component not in wanted:
            continue
        tab = table(picks.get(slot.component, slot.tables[0]))
        mount = slot.mounts[0]
        for key, shape in tab.shapes.items():
            code = "I64" if key.endswith("position_ids") else dtype
            specs.append(Spec(mount.key(key), code, tuple(abs(d) for d in shape)))
    return specs


def broken_position_ids(wrong: dict[int, float] | None = None) -> np.ndarray:
    """position_ids as a float merge leaves them: 0..76 in float32 with a few values just under."""
    values = np.arange(77, dtype=np.float32).reshape(1, 77)
    for index, value in (wrong if wrong is not None else {76: 75.9975, 41: 40.9999}).items():
        values[0, index] = value
    return values


def write_safetensors_sample(
    path: str,
    specs: list[Spec],
    values: dict[str, np.ndarray] | None = None,
    fill: Callable[[Spec], bytes] | None = None,
    metadata: dict[str, str] | None = None,
) -> str:
    """Write ``specs`` as a safetensors file.

    ``values`` gives exact arrays for some keys; every other tensor is ``fill(spec)`` or, with
    no ``fill``, left as a sparse hole of zeros.
    """
    values = values or {}
    out = [OutTensor(s.key, s.dtype, s.shape) for s in specs]
    header = build_header(out, metadata)
    total = len(header) + sum(s.nbytes for s in specs)
    with atomic_output(path) as f:
        f.write(header)
        offset = len(header)
        for spec in specs:
            if spec.key in values:
                data = np.ascontiguousarray(values[spec.key]).tobytes()
            elif fill is not None:
                data = fill(spec)
            else:
                data = b""
            if data:
                if len(data) != spec.nbytes:
                    raise ValueError(f"{spec.key}: {len(data)} bytes given, {spec.nbytes} needed")
                f.seek(offset)
                f.write(data)
            offset += spec.nbytes
        f.truncate(total)
    return path


def write_demo_sample(folder: str) -> str:
    """The demo's damaged merge: an SD1 checkpoint (real size, sparse) with the usual problems.

    fp32 weights, an EMA copy, an ``embedding_manager`` copy of CLIP, float64 leftovers and
    position_ids merged into floats (index 76 at 75.9975, index 41 at 40.9999).
    """
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "damaged-merge-sd15.safetensors")
    specs = family_specs("SD1", dtype="F32", ema=True)
    pos_key = "cond_stage_model.transformer.text_model.embeddings.position_ids"
    specs = [Spec(s.key, "F32", s.shape) if s.key == pos_key else s for s in specs]
    specs += [Spec(f"embedding_manager.embedder.transformer.text_model.{k}", "F32", tuple(v))
              for k, v in table("clip_l").shapes.items() if not k.endswith("position_ids")]
    specs += [Spec("model_ema.decay", "F32", ()), Spec("model_ema.num_updates", "I32", ())]
    specs += [Spec("alphas_cumprod", "F64", (1000,)), Spec("betas", "F64", (1000,))]
    metadata = {
        "format": "pt",
        "sd_merge_recipe": '{"type": "webui", "interp_method": "Add difference", "multiplier": 1.0}',
    }
    return write_safetensors_sample(path, specs, {pos_key: broken_position_ids()}, metadata=metadata)



# -- families recognised by key patterns: real key names and shapes, built here -------------------

def _linear(prefix: str, n_out: int, n_in: int, dtype: str, bias: bool = True) -> list[Spec]:
    out = [Spec(prefix + "weight", dtype, (n_out, n_in))]
    return out + [Spec(prefix + "bias", dtype, (n_out,))] if bias else out


def flux_transformer_specs(prefix: str = "", dtype: str = "BF16", *, guidance: bool = True) -> list[Spec]:
    """FLUX.1 [dev] transformer in BFL names (19 double, 38 single blocks, hidden 3072)."""
    h, mlp = 3072, 12288
    specs = _linear(prefix + "img_in.", h, 64, dtype) + _linear(prefix + "txt_in.", h, 4096, dtype)
    embedders = ("time_in", "vector_in") + (("guidance_in",) if guidance else ())
    for name in embedders:
        specs += _linear(f"{prefix}{name}.in_layer.", h, 768 if name == "vector_in" else 256, dtype)
        specs += _linear(f"{prefix}{name}.out_layer.", h, h, dtype)
    for i in range(19):
        for stream in ("img", "txt"):
            b = f"{prefix}double_blocks.{i}.{stream}_"
            specs += _linear(b + "mod.lin.", 6 * h, h, dtype) + _linear(b + "attn.qkv.", 3 * h, h, dtype)
            specs += [Spec(b + "attn.norm.query_norm.scale", dtype, (128,)), Spec(b + "attn.norm.key_norm.scale", dtype, (128,))]
            specs += _linear(b + "attn.proj.", h, h, dtype) + _linear(b + "mlp.0.", mlp, h, dtype) + _linear(b + "mlp.2.", h, mlp, dtype)
    for i in range(38):
        b = f"{prefix}single_blocks.{i}."
        specs += _linear(b + "linear1.", 3 * h + mlp, h, dtype) + _linear(b + "linear2.", h, h + mlp, dtype)
        specs += [Spec(b + "norm.query_norm.scale", dtype, (128,)), Spec(b + "norm.key_norm.scale", dtype, (128,))]
        specs += _linear(b + "modulation.lin.", 3 * h, h, dtype)
    specs += _linear(prefix + "final_layer.linear.", 64, h, dtype) + _linear(prefix + "final_layer.adaLN_modulation.1.", 2 * h, h, dtype)
    return specs


def sd3_transformer_specs(prefix: str = "", dtype: str = "F16", depth: int = 24, qk_norm: bool = False) -> list[Spec]:
    """SD3 MMDiT in SAI names: Medium 24 joint blocks (hidden 64 * depth = 1536), SD3.5 Large 38 (2432,
    with RMS qk-norm ``attn.ln_q`` / ``ln_k``); 192x192 position grid."""
    h = 64 * depth
    specs = [Spec(prefix + "x_embedder.proj.weight", dtype, (h, 16, 2, 2)), Spec(prefix + "x_embedder.proj.bias", dtype, (h,)),
             Spec(prefix + "pos_embed", dtype, (1, 36864, h))]
    specs += _linear(prefix + "context_embedder.", h, 4096, dtype)
    specs += _linear(prefix + "t_embedder.mlp.0.", h, 256, dtype) + _linear(prefix + "t_embedder.mlp.2.", h, h, dtype)
    specs += _linear(prefix + "y_embedder.mlp.0.", h, 2048, dtype) + _linear(prefix + "y_embedder.mlp.2.", h, h, dtype)
    for i in range(depth):
        for block in ("x_block", "context_block"):
            b = f"{prefix}joint_blocks.{i}.{block}."
            specs += _linear(b + "adaLN_modulation.1.", 6 * h, h, dtype) + _linear(b + "attn.qkv.", 3 * h, h, dtype)
            specs += _linear(b + "attn.proj.", h, h, dtype) + _linear(b + "mlp.fc1.", 4 * h, h, dtype) + _linear(b + "mlp.fc2.", h, 4 * h, dtype)
            if qk_norm:
                specs += [Spec(b + "attn.ln_q.weight", dtype, (64,)), Spec(b + "attn.ln_k.weight", dtype, (64,))]
    specs += _linear(prefix + "final_layer.linear.", 64, h, dtype) + _linear(prefix + "final_layer.adaLN_modulation.1.", 2 * h, h, dtype)
    return specs


def t5xxl_specs(prefix: str = "", dtype: str = "F16") -> list[Spec]:
    """T5 v1.1 XXL encoder (24 blocks, d_model 4096, gated-GELU 10240) as Flux and SD3 load it."""
    d, ff = 4096, 10240
    specs = [Spec(prefix + "shared.weight", dtype, (32128, d))]
    for i in range(24):
        b = f"{prefix}encoder.block.{i}.layer."
        specs += [Spec(f"{b}0.SelfAttention.{x}.weight", dtype, (d, d)) for x in "qkvo"]
        if i == 0:
            specs.append(Spec(b + "0.SelfAttention.relative_attention_bias.weight", dtype, (32, 64)))
        specs += [Spec(b + "0.layer_norm.weight", dtype, (d,)), Spec(b + "1.layer_norm.weight", dtype, (d,)),
                  Spec(b + "1.DenseReluDense.wi_0.weight", dtype, (ff, d)), Spec(b + "1.DenseReluDense.wi_1.weight", dtype, (ff, d)),
                  Spec(b + "1.DenseReluDense.wo.weight", dtype, (d, ff))]
    return specs + [Spec(prefix + "encoder.final_layer_norm.weight", dtype, (d,))]


def _prefixed(prefix: str, table_id: str, dtype: str, skip: tuple[str, ...] = ()) -> list[Spec]:
    return [Spec(prefix + k, "I64" if k.endswith("position_ids") else dtype, tuple(v))
            for k, v in table(table_id).shapes.items() if not k.startswith(skip)]


def flux_checkpoint_specs(dtype: str = "BF16") -> list[Spec]:
    """A ComfyUI-style FLUX.1 checkpoint: transformer, clip_l, t5xxl and the 16-channel VAE in one file."""
    return (flux_transformer_specs("model.diffusion_model.", dtype)
            + _prefixed("text_encoders.clip_l.transformer.text_model.", "clip_l", dtype)
            + t5xxl_specs("text_encoders.t5xxl.transformer.", dtype)
            + _prefixed("first_stage_model.", "vae_16ch", dtype))


def sd3_checkpoint_specs(dtype: str = "F16") -> list[Spec]:
    """sd3_medium_incl_clips_t5xxlfp8-style: MMDiT, CLIP-L, CLIP-G, T5-XXL and the 16-channel VAE."""
    clip_g = _prefixed("text_encoders.clip_g.transformer.", "clip_g_hf", dtype)  # transformers names
    return (sd3_transformer_specs("model.diffusion_model.", dtype)
            + _prefixed("text_encoders.clip_l.transformer.text_model.", "clip_l", dtype) + clip_g
            + t5xxl_specs("text_encoders.t5xxl.transformer.", "F8_E4M3")
            + _prefixed("first_stage_model.", "vae_16ch", dtype))


def controlnet_diffusers_specs(base: str = "SDXL", dtype: str = "F16") -> list[Spec]:
    """A diffusers ``ControlNetModel`` (down/mid blocks in diffusers names + the controlnet heads)."""
    xl = base == "SDXL"
    context = {"SD1": 768, "SD2": 1024, "SDXL": 2048}[base]
    channels = (320, 640, 1280) if xl else (320, 640, 1280, 1280)
    specs = [Spec("conv_in.weight", dtype, (320, 4, 3, 3)), Spec("conv_in.bias", dtype, (320,))]
    specs += _linear("time_embedding.linear_1.", 1280, 320, dtype) + _linear("time_embedding.linear_2.", 1280, 1280, dtype)
    if xl:
        specs += _linear("add_embedding.linear_1.", 1280, 2816, dtype) + _linear("add_embedding.linear_2.", 1280, 1280, dtype)
    hint = (3, 16, 16, 32, 32, 96, 96, 256)
    specs += [Spec("controlnet_cond_embedding.conv_in.weight", dtype, (16, 3, 3, 3))]
    for n in range(6):
        specs.append(Spec(f"controlnet_cond_embedding.blocks.{n}.weight", dtype, (hint[n + 2], hint[n + 1], 3, 3)))
    specs.append(Spec("controlnet_cond_embedding.conv_out.weight", dtype, (320, 256, 3, 3)))
    zero = [320] * 3 + [640] * 3 + [1280] * (3 if xl else 6)
    for n, c in enumerate(zero):
        specs += [Spec(f"controlnet_down_blocks.{n}.weight", dtype, (c, c, 1, 1)), Spec(f"controlnet_down_blocks.{n}.bias", dtype, (c,))]
    specs += [Spec("controlnet_mid_block.weight", dtype, (1280, 1280, 1, 1)), Spec("controlnet_mid_block.bias", dtype, (1280,))]
    previous = 320
    for level, c in enumerate(channels):
        for j in range(2):
            r = f"down_blocks.{level}.resnets.{j}."
            specs += [Spec(r + "conv1.weight", dtype, (c, previous if j == 0 else c, 3, 3)),
                      Spec(r + "conv2.weight", dtype, (c, c, 3, 3))] + _linear(r + "time_emb_proj.", c, 1280, dtype)
            if (not xl and level < 3) or (xl and level > 0):
                a = f"down_blocks.{level}.attentions.{j}.transformer_blocks.0."
                specs += [Spec(a + "attn2.to_k.weight", dtype, (c, context)), Spec(a + "attn2.to_v.weight", dtype, (c, context)),
                          Spec(a + "attn1.to_q.weight", dtype, (c, c))]
        previous = c
    specs += [Spec("mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight", dtype, (1280, context))]
    return specs


def flux_controlnet_specs(dtype: str = "BF16", depth: int = 2) -> list[Spec]:
    """XLabs-style FLUX.1 ControlNet: a few double blocks, their controlnet_blocks and the hint encoder."""
    h = 3072
    specs = [s for s in flux_transformer_specs(dtype=dtype) if not s.key.startswith("single_blocks.")
             and not (s.key.startswith("double_blocks.") and int(s.key.split(".")[1]) >= depth)]
    for i in range(depth):
        specs += _linear(f"controlnet_blocks.{i}.", h, h, dtype)
    specs += _linear("pos_embed_input.", h, 64, dtype)
    specs += [Spec("input_hint_block.0.weight", dtype, (16, 3, 3, 3)), Spec("input_hint_block.0.bias", dtype, (16,))]
    return specs


def sd3_controlnet_specs(dtype: str = "F16", depth: int = 12) -> list[Spec]:
    """diffusers SD3ControlNetModel (SD3 Medium width): joint transformer blocks + controlnet_blocks."""
    h = 1536
    specs = [Spec("pos_embed.proj.weight", dtype, (h, 16, 2, 2)), Spec("pos_embed_input.proj.weight", dtype, (h, 16, 2, 2))]
    for i in range(depth):
        b = f"transformer_blocks.{i}.attn."
        for name in ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj"):
            specs += _linear(f"{b}{name}.", h, h, dtype)
        specs += _linear(f"controlnet_blocks.{i}.", h, h, dtype)
    return specs


def t2i_adapter_specs(xl: bool = False, dtype: str = "F16") -> list[Spec]:
    """A TencentARC T2I-Adapter in its original names (4 levels x 2 resnet blocks)."""
    channels = (320, 640, 1280, 1280)
    specs = [Spec("conv_in.weight", dtype, (320, 768 if xl else 192, 3, 3)), Spec("conv_in.bias", dtype, (320,))]
    previous = 320
    for level, c in enumerate(channels):
        for j in range(2):
            b = f"body.{level * 2 + j}."
            if j == 0 and c != previous:
                specs += [Spec(b + "in_conv.weight", dtype, (c, previous, 1, 1)), Spec(b + "in_conv.bias", dtype, (c,))]
            specs += [Spec(b + "block1.weight", dtype, (c, c, 3, 3)), Spec(b + "block1.bias", dtype, (c,)),
                      Spec(b + "block2.weight", dtype, (c, c, 1, 1)), Spec(b + "block2.bias", dtype, (c,))]
        previous = c
    return specs


def ip_adapter_specs(base: str = "SD1", dtype: str = "F16") -> list[Spec]:
    """An IP-Adapter (``image_proj`` + ``to_k_ip`` / ``to_v_ip`` per cross-attention layer)."""
    context = {"SD1": 768, "SDXL": 2048}[base]
    layers = {"SD1": (320, 320, 640, 640, 1280, 1280, 1280, 1280, 1280, 640, 640, 640, 320, 320, 320, 1280),
              "SDXL": (640,) * 4 + (1280,) * 40 + (1280,) * 10 + (640,) * 6 + (1280,) * 10}[base]
    specs = _linear("image_proj.proj.", 4 * context, 1024 if base == "SD1" else 1280, dtype)
    specs += [Spec("image_proj.norm.weight", dtype, (context,)), Spec("image_proj.norm.bias", dtype, (context,))]
    for n, c in enumerate(layers):
        specs += [Spec(f"ip_adapter.{2 * n + 1}.to_k_ip.weight", dtype, (c, context)),
                  Spec(f"ip_adapter.{2 * n + 1}.to_v_ip.weight", dtype, (c, context))]
    return specs


def _lora_module(name: str, n_in: int, n_out: int, rank: int, kind: str = "lora", kernel: int = 0,
                 dtype: str = "F16") -> list[Spec]:
    """One network module in kohya / LyCORIS names (``kernel``: a conv layer's k x k)."""
    k = (kernel, kernel) if kernel else ()
    one = (1, 1) if kernel else ()
    alpha = [Spec(f"{name}.alpha", "F32", ())]
    if kind in ("lora", "dora"):
        specs = [Spec(f"{name}.lora_down.weight", dtype, (rank, n_in, *k)), Spec(f"{name}.lora_up.weight", dtype, (n_out, rank, *one))]
        if kind == "dora":
            specs.append(Spec(f"{name}.dora_scale", dtype, (1, n_in)))
        return specs + alpha
    if kind == "loha":
        return [Spec(f"{name}.hada_w1_a", dtype, (n_out, rank)), Spec(f"{name}.hada_w1_b", dtype, (rank, n_in)),
                Spec(f"{name}.hada_w2_a", dtype, (n_out, rank)), Spec(f"{name}.hada_w2_b", dtype, (rank, n_in))] + alpha
    if kind == "lokr":
        return [Spec(f"{name}.lokr_w1", dtype, (8, 8)), Spec(f"{name}.lokr_w2_a", dtype, (n_out // 8, rank)),
                Spec(f"{name}.lokr_w2_b", dtype, (rank, n_in // 8))] + alpha
    raise ValueError(kind)


def lora_sd1_specs(rank: int = 32, *, conv: bool = False) -> list[Spec]:
    """A kohya SD1 LoRA (every attention and text-encoder module); ``conv`` adds ResNet convs (LoCon)."""
    specs = []
    for table_id in ("lora_unet_sd1_a", "lora_clip_sd1_a"):
        for key, shape in table(table_id).shapes.items():
            specs.append(Spec(key, "F32" if not shape else "F16", tuple(rank if d == -1 else d for d in shape)))
    if conv:
        for level, c in enumerate((320, 640, 1280, 1280)):
            for j in range(2):
                specs += _lora_module(f"lora_unet_down_blocks_{level}_resnets_{j}_conv1", c, c, rank // 2, kernel=3)
    return specs


def _xl_modules() -> list[tuple[str, int, int]]:
    """SDXL module names (SAI layout, as kohya writes them) with their in / out widths."""
    out = []
    for block, c, depth in ((4, 640, 2), (5, 640, 2), (7, 1280, 10), (8, 1280, 10)):
        for t in range(depth):
            b = f"lora_unet_input_blocks_{block}_1_transformer_blocks_{t}_"
            out += [(b + "attn1_to_q", c, c), (b + "attn2_to_k", 2048, c), (b + "attn2_to_v", 2048, c), (b + "ff_net_2", 4 * c, c)]
    out += [("lora_unet_middle_block_1_transformer_blocks_0_attn2_to_k", 2048, 1280)]
    for block, c in ((0, 1280), (3, 640)):
        out += [(f"lora_unet_output_blocks_{block}_1_transformer_blocks_0_attn2_to_k", 2048, c)]
    for i in range(12):
        out += [(f"lora_te1_text_model_encoder_layers_{i}_self_attn_q_proj", 768, 768)]
    for i in range(32):
        out += [(f"lora_te2_text_model_encoder_layers_{i}_self_attn_q_proj", 1280, 1280)]
    return out


def network_sdxl_specs(kind: str = "lora", rank: int = 16) -> list[Spec]:
    """An SDXL LoRA / LoHa / LoKr / DoRA over the attention layers and both text encoders."""
    return [s for name, n_in, n_out in _xl_modules() for s in _lora_module(name, n_in, n_out, rank, kind)]


def lora_sd2_specs(rank: int = 8) -> list[Spec]:
    """A kohya SD2 LoRA (diffusers module names, 1024-wide text)."""
    specs = []
    for level, c in enumerate((320, 640, 1280)):
        for j in range(2):
            b = f"lora_unet_down_blocks_{level}_attentions_{j}_transformer_blocks_0_"
            specs += _lora_module(b + "attn2_to_k", 1024, c, rank) + _lora_module(b + "attn1_to_q", c, c, rank)
    for i in range(23):
        specs += _lora_module(f"lora_te_text_model_encoder_layers_{i}_self_attn_q_proj", 1024, 1024, rank)
    return specs


def lora_flux_specs(rank: int = 16) -> list[Spec]:
    """A kohya FLUX.1 LoRA (``lora_unet_double_blocks_N_*``, ``lora_unet_single_blocks_N_*``)."""
    specs = []
    for i in range(19):
        for stream in ("img", "txt"):
            specs += _lora_module(f"lora_unet_double_blocks_{i}_{stream}_attn_qkv", 3072, 9216, rank, dtype="BF16")
            specs += _lora_module(f"lora_unet_double_blocks_{i}_{stream}_mlp_0", 3072, 12288, rank, dtype="BF16")
    for i in range(38):
        specs += _lora_module(f"lora_unet_single_blocks_{i}_linear1", 3072, 21504, rank, dtype="BF16")
    return specs


KOHYA_METADATA = {
    "ss_sd_model_name": "v1-5-pruned-emaonly.safetensors",
    "ss_new_sd_model_hash": "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
    "ss_sd_model_hash": "81761151", "ss_base_model_version": "sd_v1", "ss_resolution": "(512, 512)",
    "ss_num_epochs": "10", "ss_network_module": "networks.lora", "ss_network_dim": "32", "ss_network_alpha": "16",
    "ss_tag_frequency": '{"10_mychar": {"mychar": 40, "1girl": 38, "solo": 30, "smile": 12}, '
                        '"5_outfit": {"mychar": 10, "red dress": 9, "1girl": 6}}',
}


def _alphas(value: float) -> Callable[[list[Spec]], dict[str, np.ndarray]]:
    def values(specs: list[Spec]) -> dict[str, np.ndarray]:
        return {s.key: np.array(value, dtype=np.float32) for s in specs if s.key.endswith(".alpha")}
    return values


@dataclass(frozen=True)
class Sample:
    """A real-shape model of one family: what it should identify as, and how to make it."""

    architecture: str
    specs: Callable[[], list[Spec]]
    metadata: dict[str, str] | None = None
    values: Callable[[list[Spec]], dict[str, np.ndarray]] | None = None  # exact values for some keys


def _ids(specs: list[Spec]) -> dict[str, np.ndarray]:
    return {s.key: np.arange(s.shape[-1], dtype=np.int64).reshape(s.shape) for s in specs if s.key.endswith("position_ids")}


def _markers(*names: str) -> list[Spec]:
    shapes = {"v_pred": (0,), "ztsnr": (0,), "edm_mean": (1, 4, 1, 1), "edm_std": (1, 4, 1, 1)}
    return [Spec(n, "F32", shapes[n]) for n in names]


# One sample per family of issue 12 (and the families before it): name -> Sample.
SAMPLES: dict[str, Sample] = {
    "sd21-unclip-h": Sample("SD2-unCLIP", lambda: family_specs("SD2-unCLIP") + [
        Spec(k, "F32", (1000,)) for k in sorted(_noise_augmentor_keys())]),
    "sd21-unclip-l": Sample("SD2-unCLIP", lambda: family_specs(
        "SD2-unCLIP", tables={"unet": "unet_sd2_unclip_l", "embedder": "unclip_embedder_l"})),
    "altdiffusion-m9": Sample("AltDiffusion", lambda: family_specs("AltDiffusion")),
    "altdiffusion-m18": Sample("AltDiffusion", lambda: family_specs(
        "AltDiffusion", tables={"unet": "unet_sd2", "xlm_roberta": "xlmr_m18"})),
    "controlnet-sd15-ldm": Sample("ControlNet", lambda: family_specs("ControlNet")),
    "controlnet-sd21-ldm": Sample("ControlNet-SD2", lambda: family_specs("ControlNet-SD2")),
    "controlnet-sdxl-ldm": Sample("ControlNet-SDXL", lambda: family_specs("ControlNet-SDXL")),
    "controlnet-sd15-diffusers": Sample("ControlNet", lambda: controlnet_diffusers_specs("SD1")),
    "controlnet-sd21-diffusers": Sample("ControlNet-SD2", lambda: controlnet_diffusers_specs("SD2")),
    "controlnet-sdxl-diffusers": Sample("ControlNet-SDXL", lambda: controlnet_diffusers_specs("SDXL")),
    "controlnet-flux-xlabs": Sample("ControlNet", flux_controlnet_specs),
    "controlnet-sd3-diffusers": Sample("ControlNet", sd3_controlnet_specs),
    "t2i-adapter-sd15": Sample("T2I-Adapter", lambda: t2i_adapter_specs(False)),
    "t2i-adapter-sdxl": Sample("T2I-Adapter", lambda: t2i_adapter_specs(True)),
    "ip-adapter-sd15": Sample("IP-Adapter", lambda: ip_adapter_specs("SD1")),
    "ip-adapter-sdxl": Sample("IP-Adapter", lambda: ip_adapter_specs("SDXL")),
    "sd3-medium": Sample("SD3", sd3_checkpoint_specs),
    "sd3-transformer": Sample("SD3-transformer", lambda: sd3_transformer_specs()),
    "sd35-large-transformer": Sample("SD3-transformer", lambda: sd3_transformer_specs(dtype="BF16", depth=38, qk_norm=True)),
    "flux1-dev-checkpoint": Sample("Flux", flux_checkpoint_specs),
    "flux1-dev-transformer": Sample("Flux-transformer", lambda: flux_transformer_specs()),
    "flux1-schnell-transformer-fp8": Sample("Flux-transformer", lambda: flux_transformer_specs(dtype="F8_E4M3", guidance=False)),
    "clip_l": Sample("CLIP-SD1", lambda: _prefixed("text_model.", "clip_l", "F16")),
    "sd3-clip_g": Sample("CLIP-SDXL", lambda: _prefixed("", "clip_g_hf", "F16")),
    "t5xxl-fp16": Sample("T5XXL", lambda: t5xxl_specs()),
    "t5xxl-fp8": Sample("T5XXL", lambda: t5xxl_specs(dtype="F8_E4M3")),
    "flux-ae": Sample("VAE", lambda: _prefixed("", "vae_16ch", "F32")),
    "playground-v2.5-edm": Sample("SDXL", lambda: family_specs("SDXL") + _markers("edm_mean", "edm_std")),
    "noobai-xl-vpred": Sample("SDXL", lambda: family_specs("SDXL") + _markers("v_pred", "ztsnr"),
                              metadata={"modelspec.prediction_type": "v"}),
    "lora-sd15-kohya": Sample("LoRA", lambda: lora_sd1_specs(32), KOHYA_METADATA, _alphas(16.0)),
    "locon-sd15": Sample("LoRA", lambda: lora_sd1_specs(32, conv=True), None, _alphas(16.0)),
    "lora-sd2": Sample("LoRA", lora_sd2_specs, None, _alphas(8.0)),
    "lora-sdxl": Sample("LoRA", lambda: network_sdxl_specs("lora", 16), {"ss_base_model_version": "sdxl_base_v1-0"}, _alphas(8.0)),
    "loha-sdxl": Sample("LoRA", lambda: network_sdxl_specs("loha", 8), None, _alphas(4.0)),
    "lokr-sdxl": Sample("LoRA", lambda: network_sdxl_specs("lokr", 4), None, _alphas(1.0)),
    "dora-sdxl": Sample("LoRA", lambda: network_sdxl_specs("dora", 16), None, _alphas(16.0)),
    "lora-flux": Sample("LoRA", lora_flux_specs, {"ss_base_model_version": "flux1"}, _alphas(16.0)),
    "embedding-sd15": Sample("Embedding", lambda: [Spec("emb_params", "F32", (4, 768))]),
    "embedding-sd2": Sample("Embedding", lambda: [Spec("emb_params", "F32", (2, 1024))]),
    "embedding-sdxl": Sample("Embedding", lambda: [Spec("clip_l", "F16", (3, 768)), Spec("clip_g", "F16", (3, 1280))]),
}


def _noise_augmentor_keys() -> frozenset[str]:
    from .arch.families import NOISE_AUGMENTOR_BUFFERS
    return NOISE_AUGMENTOR_BUFFERS


def sample_specs(name: str) -> list[Spec]:
    """The tensors of the sample ``name`` (a key of :data:`SAMPLES`)."""
    return SAMPLES[name].specs()


def write_sample(path: str, name: str) -> str:
    """Write the sample ``name`` sparse at ``path`` (position_ids hold their real values)."""
    sample = SAMPLES[name]
    specs = sample.specs()
    values = {**_ids(specs), **(sample.values(specs) if sample.values is not None else {})}
    return write_safetensors_sample(path, specs, values, metadata=sample.metadata)
