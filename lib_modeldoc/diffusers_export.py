"""Write a single-file checkpoint as a diffusers pipeline folder, one tensor at a time.

The tensors are chosen exactly as ``convert`` chooses them (:func:`plan_convert`: EMA, junk,
precision), then split by component, renamed with :mod:`lib_modeldoc.arch.diffusers_map` and each
component written by :func:`lib_modeldoc.writer.write_plan` into a temporary folder beside the
target, which is renamed into place only when every file is complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .arch.diffusers_map import SD1_UNET, ModuleMap, clip_l_map, unet_map, vae_map
from .arch.families import SD1_CLIP, UNET, VAE, family
from .arch.tables import table
from .arch.modelspec import v_prediction_sources
from .convert import ConvertOptions, plan_convert
from .diffusers_folder import CONFIG, MODEL_INDEX, Pipeline, is_diffusers_folder
from .errors import OutputError, PlanError
from .model import ModelFile
from .parts import identify_model
from .plan import Entry, Plan
from .progress import Progress
from .writer import write_plan

__all__ = ["ComponentPlan", "DiffusersPlan", "plan_diffusers", "write_diffusers"]

DIFFUSERS_VERSION = "0.30.3"  # the diffusers release these configs were checked against
_NO_POSITION_IDS = "embeddings.position_ids"  # transformers >= 4.31 keeps it out of saved files

# Scheduler of an SD1 pipeline: the noise schedule the model was trained with (LDM yaml: linear_start
# 0.00085, linear_end 0.012, 1000 steps, scaled_linear).
_SCHEDULER = {
    "_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
    "timestep_spacing": "leading", "trained_betas": None,
}


@dataclass
class ComponentPlan:
    """One component folder: its config and the plan of its weights file."""

    folder: str
    weights: str
    config: dict[str, Any]
    plan: Plan


@dataclass
class DiffusersPlan:
    """Everything a diffusers export writes."""

    pipeline: Pipeline
    components: list[ComponentPlan]
    model_index: dict[str, Any]
    scheduler: dict[str, Any]
    left_out: list[str] = field(default_factory=list)  # planned tensors no component takes

    @property
    def data_bytes(self) -> int:
        return sum(c.plan.data_bytes for c in self.components)

    def to_dict(self) -> dict[str, Any]:
        return {"format": "diffusers", "pipeline": self.pipeline.value,
                "components": {c.folder: len(c.plan.entries) for c in self.components},
                "keys": sum(len(c.plan.entries) for c in self.components),
                "size_bytes": sum(c.plan.output_size for c in self.components),
                "prediction_type": self.scheduler["prediction_type"], "left_out": len(self.left_out)}


def _shape(entries: Mapping[str, Entry], key: str) -> tuple[int, ...]:
    try:
        return entries[key].shape
    except KeyError:
        raise PlanError(f"the model has no '{key}'; it cannot be written as a diffusers folder") from None


def _unet_config(e: Mapping[str, Entry]) -> dict[str, Any]:
    """The SD1 UNet config, sizes read from the tensors' shapes."""
    blocks = len(SD1_UNET.attention)
    channels = [_shape(e, f"{UNET}input_blocks.{1 + 3 * b}.0.out_layers.3.weight")[0] for b in range(blocks)]
    return {
        "_class_name": "UNet2DConditionModel", "_diffusers_version": DIFFUSERS_VERSION,
        "sample_size": 64, "in_channels": _shape(e, UNET + "input_blocks.0.0.weight")[1],
        "out_channels": _shape(e, UNET + "out.2.weight")[0],
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in SD1_UNET.attention],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(SD1_UNET.attention)],
        "block_out_channels": channels, "layers_per_block": SD1_UNET.layers_per_block,
        "cross_attention_dim": _shape(e, UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight")[1],
        "attention_head_dim": 8, "norm_num_groups": 32, "norm_eps": 1e-5, "act_fn": "silu",
        "center_input_sample": False, "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0,
        "mid_block_scale_factor": 1, "use_linear_projection": False,
    }


def _vae_config(e: Mapping[str, Entry]) -> dict[str, Any]:
    channels = [_shape(e, f"{VAE}encoder.down.{i}.block.0.conv1.weight")[0] for i in range(4)]
    return {
        "_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS_VERSION,
        "in_channels": _shape(e, VAE + "encoder.conv_in.weight")[1],
        "out_channels": _shape(e, VAE + "decoder.conv_out.weight")[0],
        "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": channels, "layers_per_block": 2, "act_fn": "silu",
        "latent_channels": _shape(e, VAE + "quant_conv.weight")[0] // 2, "norm_num_groups": 32,
        "sample_size": 512, "scaling_factor": 0.18215,
    }


def _clip_l_config(e: Mapping[str, Entry]) -> dict[str, Any]:
    prefix = SD1_CLIP + "text_model."
    vocab, width = _shape(e, prefix + "embeddings.token_embedding.weight")
    layers = sum(1 for k in e if k.startswith(prefix + "encoder.layers.") and k.endswith(".mlp.fc1.weight"))
    return {
        "architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "hidden_act": "quick_gelu",
        "hidden_size": width, "intermediate_size": _shape(e, prefix + "encoder.layers.0.mlp.fc1.weight")[0],
        "num_attention_heads": width // 64, "num_hidden_layers": layers, "vocab_size": vocab,
        "max_position_embeddings": _shape(e, prefix + "embeddings.position_embedding.weight")[0],
        "projection_dim": 768, "layer_norm_eps": 1e-5, "torch_dtype": "float32",
        "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
    }


# SD1: (folder, weights file, LDM mount, key map, config builder).
_SD1 = (
    ("unet", "diffusion_pytorch_model.safetensors", UNET, lambda: unet_map(SD1_UNET), _unet_config),
    ("vae", "diffusion_pytorch_model.safetensors", VAE, vae_map, _vae_config),
    ("text_encoder", "model.safetensors", SD1_CLIP, clip_l_map, _clip_l_config),
)
_LIBRARY = {"unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
            "text_encoder": ["transformers", "CLIPTextModel"], "scheduler": ["diffusers", "PNDMScheduler"]}


def _rename(entry: Entry, key: str, key_map: ModuleMap) -> Entry:
    shape = entry.shape
    if key_map.is_conv_as_linear(key) and len(shape) == 4:
        shape = shape[:2]  # [C, C, 1, 1] -> [C, C]: the same bytes
    return Entry(key, entry.dtype, shape, entry.action, entry.source, entry.origin, entry.value,
                 renamed_from=entry.key, note=entry.note)


def _has_sd1_keys(model: ModelFile) -> bool:
    """Every required key of SD1's UNet, VAE and CLIP at its mount, whatever the sizes (``--force``)."""
    keys = set(model)
    for slot in family("SD1").slots:
        if slot.required:
            required = table(slot.tables[0]).required_keys
            if not any(all(mount.key(k) in keys for k in required) for mount in slot.mounts):
                return False
    return True


def plan_diffusers(model: ModelFile, options: ConvertOptions = ConvertOptions()) -> DiffusersPlan:
    """Plan the export of an SD1 single file as a diffusers folder.

    With ``options.force`` a model with SD1's keys but other sizes (a test model) is accepted.

    Raises:
        PlanError: the model is not a complete SD1 checkpoint.
    """
    ident = identify_model(model)
    if ident.architecture != "SD1" and not (options.force and _has_sd1_keys(model)):
        raise PlanError(f"{model.path}: a {ident.architecture or 'unknown'} model cannot be written as a diffusers "
                        "folder yet (SD1 only)")
    flat = plan_convert(model, dataclasses.replace(options, format="safetensors"), ident=ident)
    by_key = {e.key: e for e in flat.entries}
    taken: set[str] = set()
    components = []
    for folder, weights, mount, make_map, make_config in _SD1:
        key_map = make_map()
        entries = []
        for key, entry in by_key.items():
            if not key.startswith(mount):
                continue
            taken.add(key)
            if key.endswith(_NO_POSITION_IDS):
                continue
            name = key_map.to_diffusers(key[len(mount):])
            if name is None:
                raise PlanError(f"{model.path}: '{key}' has no place in a diffusers {folder}")
            entries.append(_rename(entry, name, key_map))
        if not entries:
            raise PlanError(f"{model.path}: the model has no {folder}; a diffusers folder needs it")
        config = make_config(by_key)
        components.append(ComponentPlan(folder, weights, config, Plan(flat.sources, entries, metadata={"format": "pt"})))
    v_pred = bool(v_prediction_sources(list(model), model.metadata))
    scheduler = {**_SCHEDULER, "_diffusers_version": DIFFUSERS_VERSION,
                 "prediction_type": "v_prediction" if v_pred else "epsilon"}
    index = {"_class_name": Pipeline.SD.value, "_diffusers_version": DIFFUSERS_VERSION,
             **{c.folder: _LIBRARY[c.folder] for c in components}, "scheduler": _LIBRARY["scheduler"],
             "safety_checker": [None, None], "feature_extractor": [None, None], "requires_safety_checker": False}
    left_out = sorted(set(by_key) - taken)
    return DiffusersPlan(Pipeline.SD, components, index, scheduler, left_out)


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
            raise OutputError(f"{target}: already exists; add --overwrite to replace it")
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
            os.mkdir(folder)
            offset = done

            def step(n: int, _total: int, message: str = "", offset: int = offset) -> None:
                if progress is not None:
                    progress(offset + n, total, message)

            write_plan(component.plan, os.path.join(folder, component.weights), verify=verify, progress=step)
            done += component.plan.data_bytes
            _write_json(os.path.join(folder, CONFIG), component.config)
        os.mkdir(os.path.join(temp, "scheduler"))
        _write_json(os.path.join(temp, "scheduler", "scheduler_config.json"), plan.scheduler)
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
