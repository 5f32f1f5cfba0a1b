"""A diffusers pipeline folder read as one model under the single-file (LDM) keys.

``model_index.json`` names the pipeline; each component folder holds a ``config.json`` and a
safetensors file; a ControlNet folder is one such component on its own (``ControlNetModel``).
:func:`open_diffusers_folder` presents the components' tensors as one
:class:`~lib_modeldoc.io.model.ModelFile` keyed as the WebUI's checkpoint is, so ``inspect`` and
``convert`` treat a folder like a file. Nothing is loaded: each key points at its bytes in the
component file, read one tensor (or chunk) at a time.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arch.diffusers_map import (
    OPEN_CLIP_LOGIT_SCALE, OPEN_CLIP_PROJECTION, ModuleMap, OpenClipMap, clip_l_map, controlnet_map, unet_map,
    unet_structure_from_config, vae_map,
)
from ..arch.families import REFINER_CLIP_G, SD1_CLIP, SD2_CLIP, UNET, VAE, XL_CLIP_G, XL_CLIP_L
from ..dtypes import DTYPES
from ..errors import ModelReadError
from ..strenum import StrEnum
from .buffers import BufferRing
from .model import ModelFile, ModelFormat, open_model
from .tensor import TensorInfo

__all__ = [
    "MODEL_INDEX", "Pipeline", "PIPELINE_BY_INPUT", "Component", "Kind", "PIPELINE_COMPONENTS", "SD2_COMPONENTS",
    "SDXL_COMPONENTS", "REFINER_COMPONENTS", "CONTROLNET_COMPONENTS", "is_diffusers_folder", "open_diffusers_folder",
    "DiffusersFolder",
]

MODEL_INDEX = "model_index.json"
CONFIG = "config.json"


class Pipeline(StrEnum):
    """The diffusers pipeline classes this reader knows."""

    SD = "StableDiffusionPipeline"
    SD_INPAINT = "StableDiffusionInpaintPipeline"  # UNet input: latents, mask, masked image (9 channels)
    SD_PIX2PIX = "StableDiffusionInstructPix2PixPipeline"  # UNet input: latents, image (8 channels)
    SDXL = "StableDiffusionXLPipeline"
    SDXL_INPAINT = "StableDiffusionXLInpaintPipeline"
    SDXL_IMG2IMG = "StableDiffusionXLImg2ImgPipeline"  # the refiner's (or a base model's) pipeline
    # Not a pipeline: one model's folder (config.json and its weights, no model_index.json).
    CONTROLNET = "ControlNetModel"

    @property
    def is_xl(self) -> bool:
        return self in (Pipeline.SDXL, Pipeline.SDXL_INPAINT, Pipeline.SDXL_IMG2IMG)


#: The pipeline class a UNet's input width asks for (4: the plain text-to-image pipeline).
PIPELINE_BY_INPUT: Mapping[tuple[bool, int], Pipeline] = {
    (False, 4): Pipeline.SD, (False, 9): Pipeline.SD_INPAINT, (False, 8): Pipeline.SD_PIX2PIX,
    (True, 4): Pipeline.SDXL, (True, 9): Pipeline.SDXL_INPAINT,
}


class Kind(StrEnum):
    """What a component is, which decides its key map."""

    UNET = "unet"
    VAE = "vae"
    CLIP_L = "clip_l"  # transformers CLIPTextModel, the same names in both layouts
    OPEN_CLIP = "open_clip"  # OpenCLIP in the single file, transformers' names in the folder
    # SD2's OpenCLIP ViT-H, which reads the penultimate layer: diffusers keeps neither the last
    # layer nor the projection, the single file has both (written as zeros, never used).
    OPEN_CLIP_PENULTIMATE = "open_clip_penultimate"
    CONTROLNET = "controlnet"  # the UNet's encoder, the hint encoder and the zero convolutions


@dataclass(frozen=True)
class Component:
    """One component folder: where its weights are, and where its keys go in the single file."""

    folder: str  # "unet", "vae", "text_encoder", "text_encoder_2"
    weights: str  # the safetensors file name inside the folder
    prefix: str  # LDM mount point of its keys
    kind: Kind


_UNET = Component("unet", "diffusion_pytorch_model.safetensors", UNET, Kind.UNET)
_VAE = Component("vae", "diffusion_pytorch_model.safetensors", VAE, Kind.VAE)
SD1_COMPONENTS = (_UNET, _VAE, Component("text_encoder", "model.safetensors", SD1_CLIP, Kind.CLIP_L))
SDXL_COMPONENTS = (
    _UNET, _VAE,
    Component("text_encoder", "model.safetensors", XL_CLIP_L[: -len("text_model.")], Kind.CLIP_L),
    Component("text_encoder_2", "model.safetensors", XL_CLIP_G, Kind.OPEN_CLIP),
)
SD2_COMPONENTS = (_UNET, _VAE, Component("text_encoder", "model.safetensors", SD2_CLIP, Kind.OPEN_CLIP_PENULTIMATE))
# The SDXL refiner: OpenCLIP bigG alone, mounted first in the single file (diffusers: text_encoder_2).
REFINER_COMPONENTS = (_UNET, _VAE, Component("text_encoder_2", "model.safetensors", REFINER_CLIP_G, Kind.OPEN_CLIP))
PIPELINE_COMPONENTS: Mapping[Pipeline, tuple[Component, ...]] = {
    p: SDXL_COMPONENTS if p.is_xl else SD1_COMPONENTS for p in Pipeline if p is not Pipeline.CONTROLNET}
# A ControlNet folder is the component itself; the WebUI's ControlNet extension loads its keys unprefixed.
CONTROLNET_COMPONENTS = (Component("", "diffusion_pytorch_model.safetensors", "", Kind.CONTROLNET),)
CLIP_L_WIDTH = 768  # an SD pipeline whose text encoder is wider is SD2 (OpenCLIP ViT-H, 1024)
# OpenCLIP's temperature, absent from transformers' text model: the value training ends at
# (OpenCLIP clamps the scale at 100); unused when the model encodes prompts.
LOGIT_SCALE = np.array(math.log(100.0), dtype=np.float32)


def is_diffusers_folder(path: str) -> bool:
    """Whether ``path`` is a pipeline folder (with a ``model_index.json``) or a diffusers ControlNet folder."""
    return os.path.isdir(path) and (os.path.isfile(os.path.join(path, MODEL_INDEX)) or _is_controlnet(path))


def _is_controlnet(path: str) -> bool:
    """Whether ``path/config.json`` names diffusers' ``ControlNetModel``."""
    try:
        return _read_json(os.path.join(path, CONFIG), path).get("_class_name") == Pipeline.CONTROLNET.value
    except ModelReadError:
        return False


MAX_JSON_BYTES = 1 << 20  # a pipeline's JSON files are a few KB; anything larger is not one


def _read_json(path: str, where: str) -> dict[str, Any]:
    try:
        if os.path.getsize(path) > MAX_JSON_BYTES:
            raise ModelReadError(f"{where}: {os.path.basename(path)} is over {MAX_JSON_BYTES >> 20} MB; not a diffusers config")
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ModelReadError(f"{where}: {os.path.basename(path)} is missing") from None
    except (OSError, ValueError) as exc:
        raise ModelReadError(f"{where}: {os.path.basename(path)} cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise ModelReadError(f"{where}: {os.path.basename(path)} is not a JSON object")
    return data


def _weights_file(folder: str, name: str, where: str) -> str:
    """The component's safetensors file: the plain name, else its fp16 variant."""
    stem, suffix = os.path.splitext(name)
    for candidate in (name, f"{stem}.fp16{suffix}"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    if os.path.isfile(os.path.join(folder, f"{stem}.safetensors.index.json")):
        raise ModelReadError(f"{where}: {os.path.basename(folder)} is sharded; sharded weights are not supported yet")
    if os.path.isfile(os.path.join(folder, f"{stem}.bin")):
        raise ModelReadError(f"{where}: {os.path.basename(folder)} holds .bin weights; only safetensors are read")
    raise ModelReadError(f"{where}: {os.path.basename(folder)}/{name} is missing")


def _config_of(folder: str) -> str:
    """A component's config file as messages name it (a ControlNet folder's own is plain ``config.json``)."""
    return f"{folder}/{CONFIG}" if folder else CONFIG


def _small_int(config: Mapping[str, Any], name: str, default: int, where: str, folder: str, most: int = 128) -> int:
    """A count from a config, refused unless 1..``most`` (a crafted config must not cost unbounded time)."""
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ModelReadError(f"{where}: {_config_of(folder)}: {name} must be a whole number from 1 to {most}, not {value!r}")
    return value


def _check_unet_config(config: Mapping[str, Any], where: str, folder: str = "unet") -> None:
    blocks = config.get("down_block_types", ())
    if not isinstance(blocks, (list, tuple)) or not 1 <= len(blocks) <= 8 or not all(isinstance(b, str) for b in blocks):
        raise ModelReadError(f"{where}: {_config_of(folder)}: down_block_types must be a list of 1 to 8 block names")
    _small_int(config, "layers_per_block", 2, where, folder, most=8)


def _map_for(component: Component, config: Mapping[str, Any], where: str) -> ModuleMap:
    if component.kind is Kind.UNET:
        _check_unet_config(config, where)
        return unet_map(unet_structure_from_config(config))
    if component.kind is Kind.CONTROLNET:
        _check_unet_config(config, where, component.folder)
        hint = config.get("conditioning_embedding_out_channels", (16, 32, 96, 256))
        if not isinstance(hint, (list, tuple)) or not 2 <= len(hint) <= 8:
            raise ModelReadError(f"{where}: config.json: conditioning_embedding_out_channels must list 2 to 8 widths")
        return controlnet_map(unet_structure_from_config(config), 2 * (len(hint) - 1))
    if component.kind is Kind.VAE:
        return vae_map()
    if component.kind is Kind.CLIP_L:
        return clip_l_map()
    layers = _small_int(config, "num_hidden_layers", 32, where, component.folder)
    return OpenClipMap(layers + 1 if component.kind is Kind.OPEN_CLIP_PENULTIMATE else layers)


def _zeros(key: str, dtype: str, shape: tuple[int, ...]) -> TensorInfo:
    """A tensor of zeros held as a broadcast scalar (no memory until read)."""
    carrier = np.dtype(DTYPES[dtype].numpy or DTYPES[dtype].raw)
    return TensorInfo(key, dtype, shape, -1, array=np.broadcast_to(np.zeros((), carrier), shape))


def _last_layer_and_projection(tensors: dict[str, TensorInfo], prefix: str, layers: int) -> None:
    """SD2's unused last OpenCLIP layer (shaped as layer 0) and text projection, as zeros."""
    first = f"{prefix}transformer.resblocks.0."
    for key, info in list(tensors.items()):
        if key.startswith(first):
            name = f"{prefix}transformer.resblocks.{layers}.{key[len(first):]}"
            tensors[name] = _zeros(name, info.dtype, info.shape)
    norm = tensors.get(prefix + "ln_final.weight")
    if norm is not None and prefix + OPEN_CLIP_PROJECTION[0] not in tensors:
        name = prefix + OPEN_CLIP_PROJECTION[0]
        tensors[name] = _zeros(name, norm.dtype, norm.shape * 2)


class DiffusersFolder(ModelFile):
    """A diffusers folder as one lazy model under LDM keys (``format`` is ``diffusers``).

    Attributes:
        pipeline: the pipeline class.
        prediction_type: the scheduler's ``prediction_type`` (``epsilon`` when none is given).
        zero_snr: the scheduler's ``rescale_betas_zero_snr`` (zero terminal SNR).
        components: the component files, by folder name.
    """

    def __init__(self, path: str, pipeline: Pipeline, parts: list[tuple[Component, ModelFile, ModuleMap]],
                 prediction_type: str, zero_snr: bool = False) -> None:
        tensors: dict[str, TensorInfo] = {}
        self._where: dict[str, tuple[ModelFile, TensorInfo]] = {}
        self._fused: dict[str, list[tuple[ModelFile, TensorInfo]]] = {}  # OpenCLIP in_proj: q, k, v in order
        self.synthesized: list[str] = []  # what the single file needs and the folder lacks
        for component, model, key_map in parts:
            fused: dict[str, dict[int, TensorInfo]] = {}
            for key, info in model.items():
                if isinstance(key_map, OpenClipMap):
                    into = key_map.fused_into(key)
                    if into is not None:
                        fused.setdefault(component.prefix + into[0], {})[into[1]] = info
                        continue
                    if key_map.is_transposed(key) and len(info.shape) == 2:
                        full = component.prefix + OPEN_CLIP_PROJECTION[0]
                        tensors[full] = TensorInfo(full, info.dtype, info.shape[::-1], -1,
                                                   array=np.ascontiguousarray(model.read_raw(info).T))
                        continue
                ldm = key_map.to_ldm(key)
                # A key no map knows keeps its diffusers name under the component's mount: inspect reports it.
                full = component.prefix + (ldm if ldm is not None else key)
                shape = info.shape + (1, 1) if key_map.is_conv_as_linear(key) and len(info.shape) == 2 else info.shape
                tensors[full] = TensorInfo(full, info.dtype, shape, info.data_offset)
                self._where[full] = (model, info)
            for full, pieces in fused.items():
                if sorted(pieces) != [0, 1, 2] or len({(p.dtype, p.shape) for p in pieces.values()}) != 1:
                    raise ModelReadError(f"{path}: {component.folder}: the q, k and v projections of '{full}' "
                                         "are incomplete or differ in type or shape")
                first = pieces[0]
                tensors[full] = TensorInfo(full, first.dtype, (3 * first.shape[0], *first.shape[1:]), 0)
                self._fused[full] = [(model, pieces[i]) for i in range(3)]
            if isinstance(key_map, OpenClipMap) and tensors.keys().isdisjoint({component.prefix + OPEN_CLIP_LOGIT_SCALE}):
                full = component.prefix + OPEN_CLIP_LOGIT_SCALE
                tensors[full] = TensorInfo(full, "F32", (), -1, array=LOGIT_SCALE)
            if component.kind is Kind.OPEN_CLIP_PENULTIMATE:
                assert isinstance(key_map, OpenClipMap)
                _last_layer_and_projection(tensors, component.prefix, key_map.layers - 1)
                self.synthesized.append(f"{component.folder}: its unused last layer and projection, as zeros")
        # The scheduler's prediction type and zero terminal SNR, said the way single files say them:
        # ModelSpec metadata, and the empty marker tensors Forge, ComfyUI and A1111 (after 1.10) look for.
        metadata = {"modelspec.prediction_type": "v"} if prediction_type == "v_prediction" else {}
        markers = (["v_pred"] if prediction_type == "v_prediction" else []) + (["ztsnr"] if zero_snr else [])
        for marker in markers:
            tensors[marker] = TensorInfo(marker, "F32", (0,), -1, array=np.zeros(0, np.float32))
        super().__init__(path, ModelFormat.DIFFUSERS, 0, tensors, metadata=metadata, container="diffusers")
        self.size = sum(m.size for _, m, _ in parts)
        self.pipeline = pipeline
        self.prediction_type = prediction_type
        self.zero_snr = zero_snr
        self.components = {c.folder: m for c, m, _ in parts}

    def _component(self, info: TensorInfo) -> tuple[ModelFile, TensorInfo]:
        try:
            return self._where[info.key]
        except KeyError:
            raise ModelReadError(f"{self.path}: no tensor named '{info.key}'") from None

    def _pread(self, info: TensorInfo, offset: int, length: int) -> bytes:
        model, own = self._component(info)
        return model._pread(own, offset, length)

    def read_raw(self, key: str | TensorInfo) -> np.ndarray:
        info = key if isinstance(key, TensorInfo) else self._lookup(key)
        if info.key in self._fused:
            return np.concatenate([m.read_raw(i) for m, i in self._fused[info.key]]).reshape(info.shape)
        return super().read_raw(info)

    def read_bytes(self, key: str | TensorInfo) -> bytes:
        info = key if isinstance(key, TensorInfo) else self._lookup(key)
        if info.key in self._fused:
            return b"".join(m.read_bytes(i) for m, i in self._fused[info.key])
        return super().read_bytes(info)

    def read_chunks(self, key: str | TensorInfo, chunk_bytes: int = 32 << 20,
                    buffer: bytearray | BufferRing | None = None) -> Iterator[bytes | memoryview]:
        info = key if isinstance(key, TensorInfo) else self._lookup(key)
        if info.key in self._fused:  # q, k, v one after the other: the fused projection's bytes
            for model, own in self._fused[info.key]:
                yield from model.read_chunks(own, chunk_bytes, buffer)
        elif info.array is not None:
            yield self.read_bytes(info)
        else:
            model, own = self._component(info)
            yield from model.read_chunks(own, chunk_bytes, buffer)

    def close(self) -> None:
        for model in self.components.values():
            model.close()

    def __repr__(self) -> str:
        return f"DiffusersFolder({self.path!r}, {self.pipeline.value}, {len(self)} tensors)"


def _absent(index: Mapping[str, Any], name: str) -> bool:
    """Whether ``model_index.json`` leaves a component out (missing, or ``[null, null]``)."""
    entry = index.get(name)
    return not isinstance(entry, list) or not entry or entry[0] is None


def open_diffusers_folder(path: str) -> DiffusersFolder:
    """Open a diffusers pipeline folder, or a diffusers ControlNet folder, lazily (headers and JSON only).

    Raises:
        ModelReadError: no ``model_index.json``, a pipeline or component this reader does not
            know, or a component file that is missing or damaged.
    """
    where = os.fspath(path)
    if not os.path.isfile(os.path.join(where, MODEL_INDEX)) and _is_controlnet(where):
        return _open_components(where, Pipeline.CONTROLNET, CONTROLNET_COMPONENTS, {}, "epsilon")
    index = _read_json(os.path.join(where, MODEL_INDEX), where)
    name = str(index.get("_class_name", ""))
    try:
        pipeline = Pipeline(name)
        PIPELINE_COMPONENTS[pipeline]
    except (ValueError, KeyError):
        raise ModelReadError(f"{where}: diffusers pipeline '{name}' is not supported "
                             f"(known: {', '.join(p.value for p in PIPELINE_COMPONENTS)})") from None
    components = PIPELINE_COMPONENTS[pipeline]
    if pipeline.is_xl and _absent(index, "text_encoder") and not _absent(index, "text_encoder_2"):
        components = REFINER_COMPONENTS
    if not pipeline.is_xl:
        text = os.path.join(where, "text_encoder", CONFIG)
        if os.path.isfile(text) and _read_json(text, where).get("hidden_size", CLIP_L_WIDTH) != CLIP_L_WIDTH:
            components = SD2_COMPONENTS
    scheduler = os.path.join(where, "scheduler", "scheduler_config.json")
    settings = _read_json(scheduler, where) if os.path.isfile(scheduler) else {}
    return _open_components(where, pipeline, components, index, str(settings.get("prediction_type", "epsilon")),
                            settings.get("rescale_betas_zero_snr") is True)


def _open_components(where: str, pipeline: Pipeline, components: tuple[Component, ...], index: Mapping[str, Any],
                     prediction: str, zero_snr: bool = False) -> DiffusersFolder:
    parts: list[tuple[Component, ModelFile, ModuleMap]] = []
    try:
        for component in components:
            folder = os.path.join(where, component.folder) if component.folder else where
            if (component.folder and _absent(index, component.folder)) or not os.path.isdir(folder):
                raise ModelReadError(f"{where}: the pipeline has no {component.folder} folder")
            config = _read_json(os.path.join(folder, CONFIG), where)
            key_map = _map_for(component, config, where)
            parts.append((component, open_model(_weights_file(folder, component.weights, where)), key_map))
    except BaseException:
        for _, model, _ in parts:
            model.close()
        raise
    return DiffusersFolder(where, pipeline, parts, prediction, zero_snr)
