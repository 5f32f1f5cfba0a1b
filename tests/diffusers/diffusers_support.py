"""Diffusers folders for the tests: real diffusers modules (random or no weights), no downloads."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from lib_modeldoc.arch.tables import table
from lib_modeldoc.samples import Spec, write_safetensors_sample

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
import safetensors.torch  # noqa: E402,F401  (diffusers' save_pretrained uses it without importing it)

SD1_UNET_CONFIG = {"sample_size": 64, "cross_attention_dim": 768, "attention_head_dim": 8}
SD1_VAE_CONFIG = {"block_out_channels": (128, 256, 512, 512), "down_block_types": ("DownEncoderBlock2D",) * 4,
                  "up_block_types": ("UpDecoderBlock2D",) * 4, "layers_per_block": 2, "latent_channels": 4}
# Tiny models of the same block structure (what the key maps depend on).
TINY_UNET_CONFIG = {"sample_size": 8, "block_out_channels": (32, 64, 128, 128), "layers_per_block": 2,
                    "cross_attention_dim": 32, "attention_head_dim": 8}
TINY_VAE_CONFIG = {**SD1_VAE_CONFIG, "block_out_channels": (32, 64, 128, 128), "sample_size": 32}
# CLIP-L sizes and their tiny stand-ins (width, MLP width, vocabulary; 77 positions kept).
TINY_CLIP_DIMS = {768: 32, 3072: 64, 49408: 100}
CLIP_L_CONFIG = {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "hidden_size": 768,
                 "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
                 "max_position_embeddings": 77, "vocab_size": 49408, "projection_dim": 768, "hidden_act": "quick_gelu"}


def _index(pipeline: str = "StableDiffusionPipeline") -> dict:
    return {"_class_name": pipeline, "_diffusers_version": "0.30.3",
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
            "text_encoder": ["transformers", "CLIPTextModel"], "scheduler": ["diffusers", "PNDMScheduler"]}


def _write_json(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)


def _write_shapes(path: str, module: "torch.nn.Module", values: bool) -> None:
    """A module's state dict as safetensors: its values, or (``values=False``) sparse zeros of its shapes."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    state = module.state_dict()
    specs = [Spec(k, "F32" if values else "F16", tuple(v.shape)) for k, v in state.items()]
    arrays = {k: v.detach().numpy() for k, v in state.items()} if values else None
    write_safetensors_sample(path, specs, arrays)


def write_sd1_folder(folder: str, *, tiny: bool = True, prediction_type: str = "epsilon", seed: int = 0) -> str:
    """An SD1 pipeline folder: tiny random weights, or real SD1 shapes as sparse zeros (``tiny=False``)."""
    torch.manual_seed(seed)
    unet_config = TINY_UNET_CONFIG if tiny else SD1_UNET_CONFIG
    vae_config = TINY_VAE_CONFIG if tiny else SD1_VAE_CONFIG
    if tiny:
        unet = diffusers.UNet2DConditionModel(**unet_config)
        vae = diffusers.AutoencoderKL(**vae_config)
        unet.save_pretrained(os.path.join(folder, "unet"))
        vae.save_pretrained(os.path.join(folder, "vae"))
    else:
        with torch.device("meta"):
            unet = diffusers.UNet2DConditionModel(**unet_config)
            vae = diffusers.AutoencoderKL(**vae_config)
        _write_shapes(os.path.join(folder, "unet", "diffusion_pytorch_model.safetensors"), unet, False)
        _write_shapes(os.path.join(folder, "vae", "diffusion_pytorch_model.safetensors"), vae, False)
        _write_json(os.path.join(folder, "unet", "config.json"), dict(unet.config))
        _write_json(os.path.join(folder, "vae", "config.json"), dict(vae.config))
    # The text encoder: transformers' CLIPTextModel names (the clip_l table) without transformers.
    rng = np.random.default_rng(seed)
    shapes = {k: tuple(s) for k, s in table("clip_l").shapes.items() if not k.endswith("position_ids")}
    if tiny:
        shapes = {k: tuple(TINY_CLIP_DIMS.get(d, d) for d in s) for k, s in shapes.items()}
    specs = [Spec("text_model." + k, "F32" if tiny else "F16", s) for k, s in shapes.items()]
    values = {s.key: rng.standard_normal(s.shape).astype(np.float32) for s in specs} if tiny else None
    os.makedirs(os.path.join(folder, "text_encoder"), exist_ok=True)
    write_safetensors_sample(os.path.join(folder, "text_encoder", "model.safetensors"), specs, values)
    _write_json(os.path.join(folder, "text_encoder", "config.json"), CLIP_L_CONFIG)
    _write_json(os.path.join(folder, "scheduler", "scheduler_config.json"),
                {"_class_name": "PNDMScheduler", "prediction_type": prediction_type})
    _write_json(os.path.join(folder, "model_index.json"), _index())
    return folder


SDXL_UNET_CONFIG = {
    "sample_size": 128, "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), "block_out_channels": (320, 640, 1280),
    "transformer_layers_per_block": (1, 2, 10), "attention_head_dim": (5, 10, 20), "cross_attention_dim": 2048,
    "use_linear_projection": True, "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
}
# SDXL's structure (depths 1, 2, 10 and its skip connections) at a fraction of the width.
# SDXL's blocks (attention in the lower two, 64-wide heads) at a fraction of the width and depth.
TINY_SDXL_UNET_CONFIG = {**SDXL_UNET_CONFIG, "sample_size": 8, "block_out_channels": (32, 64, 128),
                         "transformer_layers_per_block": (1, 1, 2), "attention_head_dim": (1, 1, 2),
                         "cross_attention_dim": 96, "addition_time_embed_dim": 8,
                         "projection_class_embeddings_input_dim": 64 + 6 * 8}
TINY_CLIP_G_DIMS = {1280: 64, 5120: 128, 49408: 100}
TINY_CLIP_G_LAYERS = 2


def _layer(key: str) -> int:
    parts = key.split(".")
    return int(parts[parts.index("layers") + 1]) if "layers" in parts else -1


def _text_encoder(folder: str, name: str, table_id: str, prefix: str, dims: dict, tiny: bool, config: dict, rng) -> None:
    shapes = {k: tuple(s) for k, s in table(table_id).shapes.items() if not k.endswith("position_ids")}
    if tiny:
        shapes = {k: tuple(dims.get(d, d) for d in s) for k, s in shapes.items()
                  if not (table_id == "clip_g_hf" and _layer(k) >= TINY_CLIP_G_LAYERS)}
    specs = [Spec(prefix + k, "F32" if tiny else "F16", s) for k, s in shapes.items()]
    values = {s.key: rng.standard_normal(s.shape).astype(np.float32) for s in specs} if tiny else None
    os.makedirs(os.path.join(folder, name), exist_ok=True)
    write_safetensors_sample(os.path.join(folder, name, "model.safetensors"), specs, values)
    _write_json(os.path.join(folder, name, "config.json"), config)


def write_sdxl_folder(folder: str, *, tiny: bool = True, prediction_type: str = "epsilon", seed: int = 0) -> str:
    """An SDXL pipeline folder: tiny random weights, or real SDXL shapes as sparse zeros (``tiny=False``)."""
    torch.manual_seed(seed)
    unet_config = TINY_SDXL_UNET_CONFIG if tiny else SDXL_UNET_CONFIG
    vae_config = TINY_VAE_CONFIG if tiny else SD1_VAE_CONFIG
    if tiny:
        diffusers.UNet2DConditionModel(**unet_config).save_pretrained(os.path.join(folder, "unet"))
        diffusers.AutoencoderKL(**vae_config).save_pretrained(os.path.join(folder, "vae"))
    else:
        with torch.device("meta"):
            unet = diffusers.UNet2DConditionModel(**unet_config)
            vae = diffusers.AutoencoderKL(**vae_config)
        _write_shapes(os.path.join(folder, "unet", "diffusion_pytorch_model.safetensors"), unet, False)
        _write_shapes(os.path.join(folder, "vae", "diffusion_pytorch_model.safetensors"), vae, False)
        _write_json(os.path.join(folder, "unet", "config.json"), dict(unet.config))
        _write_json(os.path.join(folder, "vae", "config.json"), dict(vae.config))
    rng = np.random.default_rng(seed)
    _text_encoder(folder, "text_encoder", "clip_l", "text_model.", TINY_CLIP_DIMS, tiny, CLIP_L_CONFIG, rng)
    g_config = {**CLIP_L_CONFIG, "architectures": ["CLIPTextModelWithProjection"], "hidden_size": 1280,
                "intermediate_size": 5120, "num_attention_heads": 20, "num_hidden_layers": 32, "projection_dim": 1280,
                "hidden_act": "gelu", **({"num_hidden_layers": TINY_CLIP_G_LAYERS} if tiny else {})}
    _text_encoder(folder, "text_encoder_2", "clip_g_hf", "", TINY_CLIP_G_DIMS, tiny, g_config, rng)
    _write_json(os.path.join(folder, "scheduler", "scheduler_config.json"),
                {"_class_name": "EulerDiscreteScheduler", "prediction_type": prediction_type})
    index = {**_index("StableDiffusionXLPipeline"), "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"]}
    _write_json(os.path.join(folder, "model_index.json"), index)
    return folder


SD2_UNET_CONFIG = {**SD1_UNET_CONFIG, "sample_size": 96, "cross_attention_dim": 1024, "attention_head_dim": (5, 10, 20, 20),
                   "use_linear_projection": True}
TINY_SD2_UNET_CONFIG = {**TINY_UNET_CONFIG, "attention_head_dim": (1, 1, 2, 2), "use_linear_projection": True}
CLIP_H_DIMS = {1280: 1024, 5120: 4096}
SD2_TEXT_LAYERS = 23  # diffusers keeps OpenCLIP-H's layers but the last (SD2 reads the penultimate)


def _clip_h_shapes(tiny: bool) -> dict[str, tuple[int, ...]]:
    """transformers' names of SD2's text encoder (bigG's names, ViT-H's sizes; no projection)."""
    dims = TINY_CLIP_G_DIMS if tiny else CLIP_H_DIMS
    layers = TINY_CLIP_G_LAYERS if tiny else SD2_TEXT_LAYERS
    return {k: tuple(dims.get(d, d) for d in s) for k, s in table("clip_g_hf").shapes.items()
            if not k.endswith("position_ids") and k != "text_projection.weight" and _layer(k) < layers}


def write_sd2_folder(folder: str, *, tiny: bool = True, prediction_type: str = "v_prediction", seed: int = 0) -> str:
    """An SD2 pipeline folder (OpenCLIP-H text encoder in transformers' names)."""
    torch.manual_seed(seed)
    unet_config = TINY_SD2_UNET_CONFIG if tiny else SD2_UNET_CONFIG
    vae_config = TINY_VAE_CONFIG if tiny else SD1_VAE_CONFIG
    if tiny:
        diffusers.UNet2DConditionModel(**unet_config).save_pretrained(os.path.join(folder, "unet"))
        diffusers.AutoencoderKL(**vae_config).save_pretrained(os.path.join(folder, "vae"))
    else:
        with torch.device("meta"):
            unet = diffusers.UNet2DConditionModel(**unet_config)
            vae = diffusers.AutoencoderKL(**vae_config)
        _write_shapes(os.path.join(folder, "unet", "diffusion_pytorch_model.safetensors"), unet, False)
        _write_shapes(os.path.join(folder, "vae", "diffusion_pytorch_model.safetensors"), vae, False)
        _write_json(os.path.join(folder, "unet", "config.json"), dict(unet.config))
        _write_json(os.path.join(folder, "vae", "config.json"), dict(vae.config))
    rng = np.random.default_rng(seed)
    specs = [Spec(k, "F32" if tiny else "F16", s) for k, s in _clip_h_shapes(tiny).items()]
    values = {s.key: rng.standard_normal(s.shape).astype(np.float32) for s in specs} if tiny else None
    os.makedirs(os.path.join(folder, "text_encoder"), exist_ok=True)
    write_safetensors_sample(os.path.join(folder, "text_encoder", "model.safetensors"), specs, values)
    width = 64 if tiny else 1024
    _write_json(os.path.join(folder, "text_encoder", "config.json"), {
        **CLIP_L_CONFIG, "hidden_size": width, "intermediate_size": 2 * width if tiny else 4096, "hidden_act": "gelu",
        "num_attention_heads": max(1, width // 64), "num_hidden_layers": TINY_CLIP_G_LAYERS if tiny else SD2_TEXT_LAYERS,
        "projection_dim": 512})
    _write_json(os.path.join(folder, "scheduler", "scheduler_config.json"),
                {"_class_name": "DDIMScheduler", "prediction_type": prediction_type})
    _write_json(os.path.join(folder, "model_index.json"), _index())
    return folder


# A made-up CLIP-style vocabulary (no third-party vocab files in the tests): letters, "cat", the specials.
TINY_VOCAB = ["!", *"abcdefghijklmnopqrstuvwxyz", *(c + "</w>" for c in "abcdefghijklmnopqrstuvwxyz"),
              "ca", "cat</w>", "<|startoftext|>", "<|endoftext|>"]


def write_tiny_vocab(folder: str) -> str:
    """``vocab.json`` and ``merges.txt`` of a 57-token byte-pair vocabulary."""
    os.makedirs(folder, exist_ok=True)
    _write_json(os.path.join(folder, "vocab.json"), {t: i for i, t in enumerate(TINY_VOCAB)})
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\nc a\nca t</w>\n")
    return folder
