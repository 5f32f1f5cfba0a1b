"""Write a single-file checkpoint (SD1, SD2, SDXL) as a diffusers pipeline folder, one tensor at a time.

The tensors are chosen exactly as ``convert`` chooses them (:func:`plan_convert`: EMA, junk,
precision), then split by component, renamed with :mod:`lib_modeldoc.arch.diffusers_map` and each
component written by :func:`lib_modeldoc.operations.writer.write_plan` into a temporary folder beside the
target, which is renamed into place only when every file is complete.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..arch.diffusers_map import (
    OPEN_CLIP_LOGIT_SCALE, OPEN_CLIP_PROJECTION, SD1_UNET, SD2_UNET, SDXL_REFINER_UNET, SDXL_UNET, ModuleMap,
    OpenClipMap, UnetStructure, clip_l_map, controlnet_map, unet_map, vae_map,
)
from ..arch.families import REFINER_CLIP_G, SD1_CLIP, SD2_CLIP, UNET, VAE, XL_CLIP_G, XL_CLIP_L
from ..arch.modelspec import v_prediction_sources, ztsnr_sources
from ..arch.parts import identify_model
from ..dtypes import DTYPES
from ..errors import OutputError, PlanError
from ..io.diffusers_folder import (
    CONFIG, CONTROLNET_COMPONENTS, MODEL_INDEX, PIPELINE_BY_INPUT, REFINER_COMPONENTS, SD1_COMPONENTS,
    SD2_COMPONENTS, SDXL_COMPONENTS, Component, Kind, Pipeline, is_diffusers_folder,
)
from ..io.model import ModelFile, ModelFormat
from ..io.tensor import TensorInfo
from ..progress import Progress
from ..report.advice import Remedy
from .convert import ConvertOptions, plan_convert
from .diffusers_tokenizers import (
    END, OPEN_CLIP_PAD, TokenizerFiles, find_tokenizer, missing_tokenizer_advice, write_tokenizer,
)
from .plan import FIX, Entry, Plan
from .writer import write_plan

__all__ = ["ComponentPlan", "DiffusersPlan", "plan_diffusers", "write_diffusers"]

DIFFUSERS_VERSION = "0.30.3"  # the diffusers release these configs were checked against
_SCHEDULER_MARKERS = frozenset({"v_pred", "ztsnr"})  # said by the scheduler config in a diffusers folder
_NO_POSITION_IDS = "embeddings.position_ids"  # transformers >= 4.31 keeps it out of saved files

# The noise schedule SD1 and SDXL were trained with (LDM yaml: linear_start 0.00085, linear_end 0.012,
# 1000 steps, scaled_linear); the scheduler class is the family's diffusers default.
_SCHEDULER = {
    "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
    "timestep_spacing": "leading", "trained_betas": None, "interpolation_type": "linear", "use_karras_sigmas": False,
}


@dataclass
class ComponentPlan:
    """One component folder: its config and the plan of its weights file."""

    folder: str
    weights: str
    config: dict[str, Any]
    plan: Plan


@dataclass(frozen=True)
class TokenizerPlan:
    """One tokenizer folder: where its vocabulary comes from and the padding token it declares."""

    folder: str
    files: TokenizerFiles
    pad: str


# The tokenizer each text encoder folder pairs with, and its padding token by encoder kind.
_TOKENIZER_OF = {"text_encoder": "tokenizer", "text_encoder_2": "tokenizer_2"}
_PAD = {Kind.CLIP_L: END, Kind.OPEN_CLIP: OPEN_CLIP_PAD, Kind.OPEN_CLIP_PENULTIMATE: OPEN_CLIP_PAD}


@dataclass
class DiffusersPlan:
    """Everything a diffusers export writes."""

    pipeline: Pipeline
    components: list[ComponentPlan]
    model_index: dict[str, Any] | None  # None: a one-model folder (ControlNet)
    scheduler: dict[str, Any] | None
    left_out: list[str] = field(default_factory=list)  # planned tensors no component takes
    warnings: list[str] = field(default_factory=list)
    tokenizers: list[TokenizerPlan] = field(default_factory=list)

    @property
    def data_bytes(self) -> int:
        return sum(c.plan.data_bytes for c in self.components)

    def to_dict(self) -> dict[str, Any]:
        return {"format": "diffusers", "pipeline": self.pipeline.value,
                "components": {c.folder: len(c.plan.entries) for c in self.components},
                "keys": sum(len(c.plan.entries) for c in self.components),
                "size_bytes": sum(c.plan.output_size for c in self.components),
                "prediction_type": self.scheduler["prediction_type"] if self.scheduler else None,
                "left_out": len(self.left_out),
                "tokenizers": {t.folder: t.files.origin for t in self.tokenizers},
                "warnings": list(self.warnings)}


def _shape(entries: Mapping[str, Entry], key: str) -> tuple[int, ...]:
    try:
        return entries[key].shape
    except KeyError:
        raise PlanError(f"the model has no '{key}'; it cannot be written as a diffusers folder") from None


def _count(entries: Mapping[str, Entry], prefix: str, suffix: str) -> int:
    """How many numbered modules ``prefix<N>...suffix`` there are."""
    return len({k[len(prefix):].split(".")[0] for k in entries if k.startswith(prefix) and k.endswith(suffix)})


@dataclass(frozen=True)
class _FamilySpec:
    """What a single-file family becomes in diffusers: pipeline, UNet layout, per-family defaults."""

    pipeline: Pipeline
    unet: UnetStructure
    unet_defaults: Mapping[str, Any]
    vae_defaults: Mapping[str, Any]
    components: tuple[Component, ...]
    scheduler: str
    index_extra: Mapping[str, Any]


_SD1 = _FamilySpec(
    Pipeline.SD, SD1_UNET,
    {"sample_size": 64, "attention_head_dim": 8, "use_linear_projection": False},
    {"sample_size": 512, "scaling_factor": 0.18215},
    SD1_COMPONENTS, "PNDMScheduler",
    {"safety_checker": [None, None], "feature_extractor": [None, None], "requires_safety_checker": False},
)
_SDXL = _FamilySpec(
    Pipeline.SDXL, SDXL_UNET,
    {"sample_size": 128, "use_linear_projection": True, "addition_embed_type": "text_time",
     "addition_time_embed_dim": 256},
    {"sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
    SDXL_COMPONENTS, "EulerDiscreteScheduler",
    {"force_zeros_for_empty_prompt": True},
)
_SD2 = _FamilySpec(
    Pipeline.SD, SD2_UNET,
    {"sample_size": 96, "use_linear_projection": True},
    {"sample_size": 768, "scaling_factor": 0.18215},
    SD2_COMPONENTS, "PNDMScheduler", _SD1.index_extra,
)
# The refiner: a 4-level UNet (attention in the middle two), conditioned on OpenCLIP bigG alone
# and on an aesthetic score; its pipeline is image-to-image.
_REFINER = _FamilySpec(
    Pipeline.SDXL_IMG2IMG, SDXL_REFINER_UNET, _SDXL.unet_defaults, _SDXL.vae_defaults, REFINER_COMPONENTS,
    "EulerDiscreteScheduler",
    {"text_encoder": [None, None], "tokenizer": [None, None], "requires_aesthetics_score": True,
     "force_zeros_for_empty_prompt": False},
)
# Inpainting and InstructPix2Pix differ only in the UNet's input width: the pipeline class follows it.
FAMILY_SPECS: Mapping[str, _FamilySpec] = {
    "SD1": _SD1, "SD1-inpaint": _SD1, "SD1-pix2pix": _SD1, "SD2": _SD2, "SD2-inpaint": _SD2,
    "SDXL": _SDXL, "SDXL-inpaint": _SDXL, "SDXL-refiner": _REFINER,
}


def _unet_config(e: Mapping[str, Entry], spec: _FamilySpec) -> dict[str, Any]:
    """The UNet config: the family's defaults, sizes and depths read from the tensors."""
    structure, n = spec.unet, spec.unet.layers_per_block
    firsts = [1 + b * (n + 1) for b in range(len(structure.attention))]  # first input block of each level
    channels = [_shape(e, f"{UNET}input_blocks.{i}.0.out_layers.3.weight")[0] for i in firsts]
    depths = [max(1, _count(e, f"{UNET}input_blocks.{i}.1.transformer_blocks.", ".attn1.to_q.weight")) for i in firsts]
    attn = next(i for i, a in zip(firsts, structure.attention) if a)
    config = {
        "_class_name": "UNet2DConditionModel", "_diffusers_version": DIFFUSERS_VERSION, **spec.unet_defaults,
        "in_channels": _shape(e, UNET + "input_blocks.0.0.weight")[1],
        "out_channels": _shape(e, UNET + "out.2.weight")[0],
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in structure.attention],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(structure.attention)],
        "block_out_channels": channels, "layers_per_block": n,
        "cross_attention_dim": _shape(e, f"{UNET}input_blocks.{attn}.1.transformer_blocks.0.attn2.to_k.weight")[1],
        "norm_num_groups": 32, "norm_eps": 1e-5, "act_fn": "silu", "center_input_sample": False,
        "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "mid_block_scale_factor": 1,
    }
    if spec is not _SD1:  # SD2, SDXL: 64-wide heads (SD1's config counts heads, 8, in this field)
        config["attention_head_dim"] = [max(1, c // 64) for c in channels]
    if structure.label_embedding:  # SDXL: transformer depth per level, the size/crop embedding
        if not structure.attention[-1]:  # diffusers' middle block takes the last level's depth (the refiner)
            depths[-1] = max(1, _count(e, f"{UNET}middle_block.1.transformer_blocks.", ".attn1.to_q.weight"))
        config["transformer_layers_per_block"] = depths
        config["projection_class_embeddings_input_dim"] = _shape(e, UNET + "label_emb.0.0.weight")[1]
    return config


def _vae_config(e: Mapping[str, Entry], spec: _FamilySpec) -> dict[str, Any]:
    channels = [_shape(e, f"{VAE}encoder.down.{i}.block.0.conv1.weight")[0] for i in range(4)]
    return {
        "_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS_VERSION, **spec.vae_defaults,
        "in_channels": _shape(e, VAE + "encoder.conv_in.weight")[1],
        "out_channels": _shape(e, VAE + "decoder.conv_out.weight")[0],
        "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": channels, "layers_per_block": 2, "act_fn": "silu",
        "latent_channels": _shape(e, VAE + "quant_conv.weight")[0] // 2, "norm_num_groups": 32,
    }


def _clip_config(e: Mapping[str, Entry], mount: str) -> dict[str, Any]:
    """transformers' CLIPTextModel config of a CLIP ViT-L mounted at ``mount``."""
    prefix = mount + "text_model."
    vocab, width = _shape(e, prefix + "embeddings.token_embedding.weight")
    return {
        "architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "hidden_act": "quick_gelu",
        "hidden_size": width, "intermediate_size": _shape(e, prefix + "encoder.layers.0.mlp.fc1.weight")[0],
        "num_attention_heads": max(1, width // 64),
        "num_hidden_layers": _count(e, prefix + "encoder.layers.", ".mlp.fc1.weight"), "vocab_size": vocab,
        "max_position_embeddings": _shape(e, prefix + "embeddings.position_embedding.weight")[0],
        "projection_dim": 768, "layer_norm_eps": 1e-5, "torch_dtype": "float32",
        "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
    }


def _open_clip_config(e: Mapping[str, Entry], mount: str, penultimate: bool = False) -> dict[str, Any]:
    """transformers' config of an OpenCLIP text encoder at ``mount``: SDXL's bigG with its projection,
    or (``penultimate``) SD2's ViT-H without its last layer and projection."""
    vocab, width = _shape(e, mount + "token_embedding.weight")
    layers = _count(e, mount + "transformer.resblocks.", ".mlp.c_fc.weight")
    return {
        "architectures": ["CLIPTextModel" if penultimate else "CLIPTextModelWithProjection"],
        "model_type": "clip_text_model", "hidden_act": "gelu",
        "hidden_size": width, "intermediate_size": _shape(e, mount + "transformer.resblocks.0.mlp.c_fc.weight")[0],
        "num_attention_heads": max(1, width // 64),
        "num_hidden_layers": layers - 1 if penultimate else layers, "vocab_size": vocab,
        "max_position_embeddings": _shape(e, mount + "positional_embedding")[0],
        "projection_dim": 512 if penultimate else _shape(e, mount + OPEN_CLIP_PROJECTION[0])[1], "layer_norm_eps": 1e-5,
        "torch_dtype": "float32", "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
    }


_LIBRARY = {Kind.UNET: ["diffusers", "UNet2DConditionModel"], Kind.VAE: ["diffusers", "AutoencoderKL"],
            Kind.CLIP_L: ["transformers", "CLIPTextModel"], Kind.OPEN_CLIP: ["transformers", "CLIPTextModelWithProjection"],
            Kind.OPEN_CLIP_PENULTIMATE: ["transformers", "CLIPTextModel"]}


def _component_map(component: Component, spec: _FamilySpec, e: Mapping[str, Entry]) -> ModuleMap:
    if component.kind is Kind.UNET:
        return unet_map(spec.unet)
    if component.kind is Kind.VAE:
        return vae_map()
    if component.kind is Kind.CLIP_L:
        return clip_l_map()
    return OpenClipMap(_count(e, component.prefix + "transformer.resblocks.", ".mlp.c_fc.weight"))


def _component_config(component: Component, spec: _FamilySpec, e: Mapping[str, Entry]) -> dict[str, Any]:
    if component.kind is Kind.UNET:
        return _unet_config(e, spec)
    if component.kind is Kind.VAE:
        return _vae_config(e, spec)
    if component.kind is Kind.CLIP_L:
        return _clip_config(e, component.prefix)
    return _open_clip_config(e, component.prefix, component.kind is Kind.OPEN_CLIP_PENULTIMATE)


def _rename(entry: Entry, key: str, key_map: ModuleMap) -> Entry:
    shape = entry.shape
    if key_map.is_conv_as_linear(key) and len(shape) == 4:
        shape = shape[:2]  # [C, C, 1, 1] -> [C, C]: the same bytes
    return Entry(key, entry.dtype, shape, entry.action, entry.source, entry.origin, entry.value,
                 renamed_from=entry.key, note=entry.note)


def _split(entry: Entry, keys: tuple[str, ...]) -> list[Entry]:
    """A fused q/k/v projection as three entries: each a contiguous third of the source's bytes."""
    rows = entry.shape[0] // len(keys)
    shape = (rows, *entry.shape[1:])
    out = []
    for i, key in enumerate(keys):
        if entry.value is not None:
            out.append(Entry(key, entry.dtype, shape, entry.action, value=entry.value[i * rows:(i + 1) * rows],
                             renamed_from=entry.key))
            continue
        src = entry.source
        assert src is not None
        if src.strides is not None:
            raise PlanError(f"'{entry.key}' is stored as a strided view; convert the model to .safetensors first")
        if src.array is not None:
            part = TensorInfo(src.key, src.dtype, shape, -1, array=src.array[i * rows:(i + 1) * rows])
        else:
            step = rows * math.prod(shape[1:]) * src.itemsize
            part = TensorInfo(src.key, src.dtype, shape, src.data_offset + i * step, member=src.member)
        out.append(Entry(key, entry.dtype, shape, entry.action, part, entry.origin, renamed_from=entry.key))
    return out


def _transposed(model: ModelFile, entry: Entry, key: str) -> Entry:
    """OpenCLIP's text projection transposed into a Linear weight (a small tensor, computed in memory)."""
    values = entry.value if entry.value is not None else model.read(entry.source)
    values = np.ascontiguousarray(np.asarray(values, dtype=np.float32).T)
    code = entry.dtype if DTYPES[entry.dtype].numpy is not None else "F32"  # numpy cannot hold bf16
    return Entry(key, code, values.shape, FIX, value=values, renamed_from=entry.key, note="transposed")


def _family(model: ModelFile, ident_arch: str | None, force: bool) -> _FamilySpec:
    if ident_arch in FAMILY_SPECS:
        return FAMILY_SPECS[ident_arch]
    if force:  # other sizes (a test model): told by where the text encoders sit
        keys = list(model)
        if any(k.startswith(REFINER_CLIP_G) for k in keys) and not any(k.startswith(XL_CLIP_L) for k in keys):
            return _REFINER
        if any(k.startswith(XL_CLIP_G) for k in keys):
            return _SDXL
        if any(k.startswith(SD1_CLIP) for k in keys):
            return _SD1
        if any(k.startswith(SD2_CLIP) for k in keys):
            return _SD2
    raise PlanError(f"{model.path}: a {ident_arch or 'unknown'} model cannot be written as a diffusers folder yet "
                    f"(known: {', '.join(FAMILY_SPECS)})")


# ControlNet ---------------------------------------------------------------------------------------

CONTROLNETS = frozenset({"ControlNet", "ControlNet-SD2", "ControlNet-SDXL"})
_CONTROL_MODEL = "control_model."  # the prefix some single-file ControlNets carry (the WebUI strips it)


def _controlnet_structure(e: Mapping[str, Entry]) -> UnetStructure:
    """The encoder's layout read from the keys: 3 input blocks per level (2 ResNets, a downsampler) but the last."""
    inputs = _count(e, "input_blocks.", ".0.in_layers.0.weight") + _count(e, "input_blocks.", ".0.op.weight")
    levels = (inputs + 1) // 3
    if levels < 1 or 3 * levels - 1 != inputs:
        raise PlanError(f"a ControlNet with {inputs} input blocks has no diffusers layout here (2 ResNets per level)")
    attention = tuple(f"input_blocks.{1 + 3 * b}.1.proj_in.weight" in e for b in range(levels))
    return UnetStructure(attention=attention, label_embedding="label_emb.0.0.weight" in e)


def _controlnet_config(e: Mapping[str, Entry], structure: UnetStructure) -> dict[str, Any]:
    """diffusers' ControlNetModel config: sizes and depths from the tensors, SD1 / SD2 / SDXL by the context width."""
    firsts = [1 + 3 * b for b in range(len(structure.attention))]
    channels = [_shape(e, f"input_blocks.{i}.0.out_layers.3.weight")[0] for i in firsts]
    attn = next((i for i, a in zip(firsts, structure.attention) if a), None)
    if attn is None:
        raise PlanError("a ControlNet without cross-attention has no diffusers layout here")
    context = _shape(e, f"input_blocks.{attn}.1.transformer_blocks.0.attn2.to_k.weight")[1]
    # The hint encoder: conv_in, then per width step two convolutions, then conv_out (8 for 4 widths);
    # the widths are the outputs of conv_in and of every second convolution after it.
    hint = _count(e, "input_hint_block.", ".weight")
    hint_channels = [_shape(e, f"input_hint_block.{4 * j}.weight")[0] for j in range(hint // 2)]
    config = {
        "_class_name": Pipeline.CONTROLNET.value, "_diffusers_version": DIFFUSERS_VERSION,
        "in_channels": _shape(e, "input_blocks.0.0.weight")[1],
        "conditioning_channels": _shape(e, "input_hint_block.0.weight")[1],
        "conditioning_embedding_out_channels": hint_channels,
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in structure.attention],
        "block_out_channels": channels, "layers_per_block": structure.layers_per_block,
        "cross_attention_dim": context,
        # Heads: SD1 counts them (8) in this field; SD2 and SDXL use 64-wide heads.
        "attention_head_dim": 8 if context == 768 else [max(1, c // 64) for c in channels],
        "use_linear_projection": len(_shape(e, f"input_blocks.{attn}.1.proj_in.weight")) == 2,
        "norm_num_groups": 32, "norm_eps": 1e-5, "act_fn": "silu", "downsample_padding": 1, "flip_sin_to_cos": True,
        "freq_shift": 0, "mid_block_scale_factor": 1, "controlnet_conditioning_channel_order": "rgb",
        "global_pool_conditions": False,
    }
    if structure.label_embedding:
        depths = [max(1, _count(e, f"input_blocks.{i}.1.transformer_blocks.", ".attn1.to_q.weight")) for i in firsts]
        if not structure.attention[-1]:
            depths[-1] = max(1, _count(e, "middle_block.1.transformer_blocks.", ".attn1.to_q.weight"))
        config.update(transformer_layers_per_block=depths, addition_embed_type="text_time",
                      addition_time_embed_dim=256,
                      projection_class_embeddings_input_dim=_shape(e, "label_emb.0.0.weight")[1])
    return config


def _is_controlnet_layout(model: ModelFile) -> bool:
    """A ControlNet of other sizes (a test model): the hint encoder and zero convolutions, nothing else mounted."""
    keys = [k[len(_CONTROL_MODEL):] if k.startswith(_CONTROL_MODEL) else k for k in model]
    return (any(k.startswith("input_hint_block.") for k in keys) and any(k.startswith("zero_convs.") for k in keys)
            and not any(k.startswith(("model.", "first_stage_model.", "cond_stage_model.")) for k in keys))


def _plan_controlnet(model: ModelFile, options: ConvertOptions, ident: Any) -> DiffusersPlan:
    flat = plan_convert(model, dataclasses.replace(options, format="safetensors"), ident=ident)
    prefixed = all(e.key.startswith(_CONTROL_MODEL) for e in flat.entries)
    by_key = {e.key[len(_CONTROL_MODEL):] if prefixed else e.key: e for e in flat.entries}
    structure = _controlnet_structure(by_key)
    config = _controlnet_config(by_key, structure)
    key_map = controlnet_map(structure, 2 * (len(config["conditioning_embedding_out_channels"]) - 1))
    entries = []
    for key, entry in by_key.items():
        name = key_map.to_diffusers(key)
        if name is None:
            raise PlanError(f"{model.path}: '{entry.key}' has no place in a diffusers ControlNet")
        entries.append(_rename(entry, name, key_map))
    plan = Plan(flat.sources, entries, metadata={"format": "pt"})
    component = ComponentPlan("", CONTROLNET_COMPONENTS[0].weights, config, plan)
    return DiffusersPlan(Pipeline.CONTROLNET, [component], None, None)


def _pipeline(spec: _FamilySpec, e: Mapping[str, Entry], path: str) -> Pipeline:
    """The pipeline class: the family's, or its inpainting / InstructPix2Pix one by the UNet's input width."""
    if spec is _REFINER:
        return spec.pipeline
    width = _shape(e, UNET + "input_blocks.0.0.weight")[1]
    try:
        return PIPELINE_BY_INPUT[spec.pipeline.is_xl, width]
    except KeyError:
        raise PlanError(f"{path}: a UNet taking {width} input channels has no diffusers pipeline here "
                        "(known: 4 text-to-image, 9 inpainting, 8 InstructPix2Pix)") from None


def _plan_tokenizers(spec: _FamilySpec, given: str | None,
                     candidates: Iterable[TokenizerFiles] | None) -> tuple[list[TokenizerPlan], list[str]]:
    """The tokenizer folders this family's pipeline has, and the ones no vocabulary was found for."""
    found, missing = [], []
    for component in spec.components:
        folder = _TOKENIZER_OF.get(component.folder)
        if folder is None:
            continue
        files = find_tokenizer(folder, given, candidates)
        if files is None:
            missing.append(folder)
        else:
            found.append(TokenizerPlan(folder, files, _PAD[component.kind]))
    return found, missing


def plan_diffusers(model: ModelFile, options: ConvertOptions = ConvertOptions(), *, tokenizers: str | None = None,
                   tokenizer_candidates: Iterable[TokenizerFiles] | None = None) -> DiffusersPlan:
    """Plan the export of an SD1, SD2 or SDXL single file as a diffusers folder.

    The tensors kept and their precision are ``convert``'s (:func:`plan_convert` with ``options``).
    With ``options.force`` a model of other sizes (a test model) is accepted by its key layout.
    The tokenizer files come from ``tokenizers`` (a folder) or are looked for on this machine
    (:mod:`~lib_modeldoc.operations.diffusers_tokenizers`; ``tokenizer_candidates`` replaces
    where); a pipeline without them is planned with a warning that says how to add them.

    Raises:
        PlanError: the model is not a complete SD1 / SDXL checkpoint, or is a diffusers folder.
    """
    if model.format == ModelFormat.DIFFUSERS:
        raise PlanError(f"{model.path}: is a diffusers folder already")
    ident = identify_model(model)
    if ident.architecture in CONTROLNETS:
        return _plan_controlnet(model, options, ident)
    if options.force and _is_controlnet_layout(model):  # other sizes (a test model)
        return _plan_controlnet(model, options, ident)
    spec = _family(model, ident.architecture, options.force)
    flat = plan_convert(model, dataclasses.replace(options, format="safetensors"), ident=ident)
    by_key = {e.key: e for e in flat.entries}
    taken: set[str] = set()
    components = []
    for component in spec.components:
        key_map = _component_map(component, spec, by_key)
        entries: list[Entry] = []
        mount = component.prefix
        last_layer = f"transformer.resblocks.{getattr(key_map, 'layers', 0) - 1}."
        for key, entry in by_key.items():
            if not key.startswith(mount) or key in taken:
                continue
            taken.add(key)
            rest = key[len(mount):]
            if rest.endswith(_NO_POSITION_IDS) or rest == OPEN_CLIP_LOGIT_SCALE:
                continue  # neither is in a transformers text model's file
            if component.kind is Kind.OPEN_CLIP_PENULTIMATE and (
                    rest == OPEN_CLIP_PROJECTION[0] or rest.startswith(last_layer)):
                continue  # SD2 reads the penultimate layer: diffusers keeps neither
            if isinstance(key_map, OpenClipMap) and key_map.split(rest):
                entries += _split(entry, key_map.split(rest))
                continue
            name = key_map.to_diffusers(rest)
            if name is None:
                raise PlanError(f"{model.path}: '{key}' has no place in a diffusers {component.folder}")
            if isinstance(key_map, OpenClipMap) and key_map.is_transposed(name):
                entries.append(_transposed(model, entry, name))
            else:
                entries.append(_rename(entry, name, key_map))
        if not entries:
            raise PlanError(f"{model.path}: the model has no {component.folder}; a diffusers folder needs it")
        config = _component_config(component, spec, by_key)
        plan = Plan(flat.sources, entries, metadata={"format": "pt"})
        components.append(ComponentPlan(component.folder, component.weights, config, plan))
    v_pred = bool(v_prediction_sources(list(model), model.metadata))
    scheduler = {**_SCHEDULER, "_class_name": spec.scheduler, "_diffusers_version": DIFFUSERS_VERSION,
                 "prediction_type": "v_prediction" if v_pred else "epsilon"}
    if ztsnr_sources(list(model), model.metadata):  # zero terminal SNR: diffusers rescales the betas
        scheduler["rescale_betas_zero_snr"] = True
    pipeline = _pipeline(spec, by_key, model.path)
    found, missing = _plan_tokenizers(spec, tokenizers, tokenizer_candidates)
    index = {"_class_name": pipeline.value, "_diffusers_version": DIFFUSERS_VERSION,
             **{c.folder: _LIBRARY[c.kind] for c in spec.components}, "scheduler": ["diffusers", spec.scheduler],
             **{t.folder: ["transformers", "CLIPTokenizer"] for t in found}, **spec.index_extra}
    left_out = sorted(set(by_key) - taken - _SCHEDULER_MARKERS)
    warnings = []
    if spec is _SD2 and not v_pred:
        warnings.append("SD2: nothing in the file says v-prediction, so the scheduler says epsilon; for a 768-v "
                        "model set prediction_type to v_prediction in scheduler/scheduler_config.json")
    warnings += [f"not written (no place in a diffusers folder): {k}" for k in left_out[:5]]
    if missing:
        warnings.append(missing_tokenizer_advice(missing, pipeline.value))
    return DiffusersPlan(pipeline, components, index, scheduler, left_out, warnings, found)


def _write_json(path: str, data: Mapping[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")


def _check_target(target: str, source: str, overwrite: bool) -> None:
    real, src = os.path.realpath(target), os.path.realpath(source)
    if real == src or src.startswith(real + os.sep):
        raise OutputError(f"{target}: the output folder holds the source; choose another")
    if os.path.lexists(target):
        if not overwrite:
            raise OutputError(f"{target}: already exists", remedy=Remedy.OVERWRITE)
        if not os.path.isdir(target) or (os.listdir(target) and not is_diffusers_folder(target)):
            raise OutputError(f"{target}: exists and is not a diffusers folder; it is never replaced")


def write_diffusers(plan: DiffusersPlan, output: str | os.PathLike[str], *, overwrite: bool = False,
                    verify: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Write the folder: components into a temporary folder beside ``output``, renamed into place.

    Raises:
        OutputError: ``output`` exists (without ``overwrite``), is not a diffusers folder, or
            holds the source; a write failed (nothing is left behind).
    """
    target = os.path.abspath(os.fspath(output))
    source = plan.components[0].plan.source.path
    _check_target(target, source, overwrite)
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise OutputError(f"{target}: the folder {parent} does not exist")
    temp = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=parent)
    old = None
    try:
        done, total = 0, plan.data_bytes
        for component in plan.components:
            folder = os.path.join(temp, component.folder)
            if component.folder:
                os.mkdir(folder)
            offset = done

            def step(n: int, _total: int, message: str = "", offset: int = offset) -> None:
                if progress is not None:
                    progress(offset + n, total, message)

            write_plan(component.plan, os.path.join(folder, component.weights), verify=verify, progress=step)
            done += component.plan.data_bytes
            _write_json(os.path.join(folder, CONFIG), component.config)
        for tokenizer in plan.tokenizers:
            write_tokenizer(tokenizer.files, os.path.join(temp, tokenizer.folder), tokenizer.pad)
        if plan.scheduler is not None:
            os.mkdir(os.path.join(temp, "scheduler"))
            _write_json(os.path.join(temp, "scheduler", "scheduler_config.json"), plan.scheduler)
        if plan.model_index is not None:
            _write_json(os.path.join(temp, MODEL_INDEX), plan.model_index)
        if os.path.lexists(target):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", suffix=".old", dir=parent)
            os.rmdir(old)
            os.rename(target, old)
        os.rename(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        if old is not None and not os.path.lexists(target):
            os.rename(old, target)  # put the old folder back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return {"output": target, "verified": verify, **plan.to_dict()}
