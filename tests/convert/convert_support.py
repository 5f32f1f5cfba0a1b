"""Helpers for the convert tests: slim real-key models, independent readers, leftover checks.

Imported by the test modules of this folder as ``convert_support`` (a name no other test folder
and no stdlib module uses). Fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import os
import re
import struct
import zipfile

import numpy as np
import torch
from safetensors import safe_open

from lib_modeldoc.samples import Spec, family_specs

# SD1 keys (real names and shapes from the architecture tables).
UNET = "model.diffusion_model."
UNET_KEY = UNET + "out.2.bias"  # [4]
UNET_KEY2 = UNET + "time_embed.0.bias"  # [1280]
EMA_KEY = "model_ema.diffusion_modelout2bias"  # the EMA copy of UNET_KEY (LitEma drops the dots)
VAE_KEY = "first_stage_model.encoder.conv_in.bias"  # [128]
VAE_KEY2 = "first_stage_model.quant_conv.weight"  # [8, 8, 1, 1]
CLIP_TEXT = "cond_stage_model.transformer.text_model."
CLIP_KEY = CLIP_TEXT + "final_layer_norm.weight"  # [768]
SD1_POS = CLIP_TEXT + "embeddings.position_ids"
NAI_PREFIX = "cond_stage_model.transformer."
XL_POS = "conditioner.embedders.0.transformer.text_model.embeddings.position_ids"
JUNK_KEY = "embedding_manager.embedder.transformer.text_model.final_layer_norm.weight"

# Checked in every slim file (the SD1/SD1-inpaint discriminator, and the planted tensors).
_ALWAYS = ("input_blocks.0.0.weight", "input_blocks00weight", "out.2.bias", "out2bias", "time_embed.0.bias",
           "time_embed0bias", "conv_in.bias", "quant_conv.weight", "final_layer_norm.weight")

# What AUTOMATIC1111 1.10.1's modules/safe.py accepts inside a .ckpt zip.
WEBUI_ZIP_MEMBER = re.compile(r"^([^/]+)/((data/\d+)|version|byteorder|(\.data/serialization_id)|(data\.pkl))$")


def slim_specs(arch: str = "SD1", *, dtype: str = "F16", ema: bool = False, limit: int = 4096) -> list[Spec]:
    """A family's real keys and shapes, keeping only tensors of at most ``limit`` bytes.

    Identification scores keys, not bytes: more than half of every component's keys are small,
    so the file is still identified as ``arch`` (with incomplete components) at ~2 MB.
    """
    specs = family_specs(arch, dtype=dtype, ema=ema)
    return [s for s in specs if s.nbytes <= limit or s.key.endswith(_ALWAYS)]


def with_spec(specs: list[Spec], *extra: Spec) -> list[Spec]:
    """``specs`` with ``extra`` replacing the same keys (or appended)."""
    by_key = {s.key: s for s in specs}
    for s in extra:
        by_key[s.key] = s
    return list(by_key.values())


def read_safetensors(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor and the metadata, read with safetensors itself (the oracle)."""
    with safe_open(os.fspath(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def read_ckpt(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state dict of a .ckpt, read with torch's restricted loader."""
    obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    assert isinstance(obj, dict) and set(obj) == {"state_dict"}, sorted(obj)
    return dict(obj["state_dict"])


def read_any(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    if os.fspath(path).endswith(".safetensors"):
        return read_safetensors(path)[0]
    return read_ckpt(path)


def zip_data_offsets(path: str | os.PathLike[str]) -> dict[str, int]:
    """Member name -> file offset where its data starts, from the local headers."""
    offsets = {}
    with zipfile.ZipFile(os.fspath(path)) as archive, open(path, "rb") as f:
        for info in archive.infolist():
            f.seek(info.header_offset)
            local = f.read(30)
            assert local[:4] == b"PK\x03\x04"
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            offsets[info.filename] = info.header_offset + 30 + name_len + extra_len
    return offsets


def listing(folder: str | os.PathLike[str]) -> list[str]:
    """Every entry of a folder, hidden ones included (temporary files start with a dot)."""
    return sorted(os.listdir(folder))


def f16(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float16)


def f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


