"""Key names of a diffusers folder against the single-file (LDM) names the WebUI loads.

The maps are derived from a component's block structure (blocks, layers per block, where the
attention sits) rather than listed key by key: a module of one side corresponds to a module of
the other, and inside a module a few leaf names differ (a ResNet's ``in_layers.0`` is diffusers'
``norm1``). Renaming never changes data; the only shape change is the VAE's attention
projections, a 1x1 convolution ``[C, C, 1, 1]`` in LDM and a linear ``[C, C]`` in diffusers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "ModuleMap", "UnetStructure", "VaeStructure", "unet_map", "vae_map", "clip_l_map", "controlnet_map",
    "CONTROLNET_HINT", "CONTROLNET_ZERO_CONV", "SD1_UNET", "SD2_UNET", "SDXL_UNET", "SDXL_REFINER_UNET", "SD1_VAE", "unet_structure_from_config", "OpenClipMap",
]

# Leaf renames inside one module kind (LDM name -> diffusers name).
_UNET_RESNET = MappingProxyType({
    "in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut",
})
_VAE_RESNET = MappingProxyType({"nin_shortcut": "conv_shortcut"})
_VAE_ATTENTION = MappingProxyType({
    "norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0",
})
# The VAE attention projections: 1x1 convolutions in LDM, linears in diffusers.
_VAE_LINEARS = frozenset({"to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight"})


@dataclass(frozen=True)
class _Module:
    ldm: str
    diffusers: str
    leaves: Mapping[str, str] = field(default_factory=dict)  # LDM leaf prefix -> diffusers leaf prefix
    conv_to_linear: bool = False


def _rename(rest: str, leaves: Mapping[str, str]) -> str | None:
    """``rest`` with its leading leaf module renamed; ``None`` when it is not one of ``leaves``' keys."""
    for old, new in leaves.items():
        if rest == old or rest.startswith(old + "."):
            return new + rest[len(old):]
    return None


class ModuleMap:
    """A bidirectional key map between LDM and diffusers names of one component.

    Keys are relative to the component (no ``model.diffusion_model.`` or ``unet/`` prefix).
    """

    def __init__(self, modules: Sequence[_Module]) -> None:
        self._by_ldm = {m.ldm: m for m in modules}
        self._by_diffusers = {m.diffusers: m for m in modules}

    @staticmethod
    def _find(key: str, index: Mapping[str, _Module]) -> tuple[_Module, str] | None:
        parts = key.split(".")
        for cut in range(len(parts) - 1, -1, -1):
            module = index.get(".".join(parts[:cut]))
            if module is not None:
                return module, ".".join(parts[cut:])
        return None

    def to_diffusers(self, key: str) -> str | None:
        """The diffusers name of an LDM key, or ``None`` when the structure has no such module."""
        found = self._find(key, self._by_ldm)
        if found is None:
            return None
        module, rest = found
        if module.leaves:
            renamed = _rename(rest, module.leaves)
            rest = renamed if renamed is not None else rest
        return f"{module.diffusers}.{rest}" if module.diffusers else rest

    def to_ldm(self, key: str) -> str | None:
        """The LDM name of a diffusers key, or ``None``."""
        found = self._find(key, self._by_diffusers)
        if found is None:
            return None
        module, rest = found
        if module.leaves:
            renamed = _rename(rest, {new: old for old, new in module.leaves.items()})
            rest = renamed if renamed is not None else rest
        return f"{module.ldm}.{rest}" if module.ldm else rest

    def is_conv_as_linear(self, diffusers_key: str) -> bool:
        """Whether this diffusers tensor is stored ``[C, C]`` where LDM stores ``[C, C, 1, 1]``."""
        found = self._find(diffusers_key, self._by_diffusers)
        return found is not None and found[0].conv_to_linear and found[1] in _VAE_LINEARS


# UNet -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnetStructure:
    """What the UNet key layout depends on.

    Attributes:
        attention: per down block, whether it has cross-attention (the up blocks mirror it).
        layers_per_block: ResNets per down block (up blocks have one more).
        mid_attention: whether the middle block has a transformer between its two ResNets.
        label_embedding: SDXL's ``label_emb`` (diffusers ``add_embedding``).
    """

    attention: tuple[bool, ...]
    layers_per_block: int = 2
    mid_attention: bool = True
    label_embedding: bool = False


SD1_UNET = UnetStructure(attention=(True, True, True, False))
SD2_UNET = SD1_UNET
SDXL_UNET = UnetStructure(attention=(False, True, True), label_embedding=True)
SDXL_REFINER_UNET = UnetStructure(attention=(False, True, True, False), label_embedding=True)


def unet_structure_from_config(config: Mapping[str, Any]) -> UnetStructure:
    """The structure a diffusers ``unet/config.json`` describes."""
    down = list(config.get("down_block_types", ()))
    mid = config.get("mid_block_type", "UNetMidBlock2DCrossAttn")
    return UnetStructure(
        attention=tuple("CrossAttn" in t for t in down),
        layers_per_block=int(config.get("layers_per_block", 2)),
        mid_attention=mid is not None and "CrossAttn" in str(mid),
        label_embedding=config.get("addition_embed_type") == "text_time",
    )


def unet_map(structure: UnetStructure = SD1_UNET) -> ModuleMap:
    """The UNet's module correspondence for this structure."""
    m = [
        _Module("time_embed.0", "time_embedding.linear_1"), _Module("time_embed.2", "time_embedding.linear_2"),
        _Module("input_blocks.0.0", "conv_in"), _Module("out.0", "conv_norm_out"), _Module("out.2", "conv_out"),
    ]
    if structure.label_embedding:
        m += [_Module("label_emb.0.0", "add_embedding.linear_1"), _Module("label_emb.0.2", "add_embedding.linear_2")]
    n = structure.layers_per_block
    blocks = len(structure.attention)
    index = 1
    for b, attn in enumerate(structure.attention):
        for layer in range(n):
            m.append(_Module(f"input_blocks.{index}.0", f"down_blocks.{b}.resnets.{layer}", _UNET_RESNET))
            if attn:
                m.append(_Module(f"input_blocks.{index}.1", f"down_blocks.{b}.attentions.{layer}"))
            index += 1
        if b < blocks - 1:  # every down block but the last ends in a downsampler
            m.append(_Module(f"input_blocks.{index}.0.op", f"down_blocks.{b}.downsamplers.0.conv"))
            index += 1
    m.append(_Module("middle_block.0", "mid_block.resnets.0", _UNET_RESNET))
    if structure.mid_attention:
        m.append(_Module("middle_block.1", "mid_block.attentions.0"))
        m.append(_Module("middle_block.2", "mid_block.resnets.1", _UNET_RESNET))
    else:
        m.append(_Module("middle_block.1", "mid_block.resnets.1", _UNET_RESNET))
    index = 0
    for u, attn in enumerate(reversed(structure.attention)):
        for layer in range(n + 1):
            m.append(_Module(f"output_blocks.{index}.0", f"up_blocks.{u}.resnets.{layer}", _UNET_RESNET))
            if attn:
                m.append(_Module(f"output_blocks.{index}.1", f"up_blocks.{u}.attentions.{layer}"))
            if layer == n and u < blocks - 1:  # every up block but the last ends in an upsampler
                m.append(_Module(f"output_blocks.{index}.{2 if attn else 1}.conv", f"up_blocks.{u}.upsamplers.0.conv"))
            index += 1
    return ModuleMap(m)


# ControlNet -----------------------------------------------------------------------------------

CONTROLNET_HINT = "input_hint_block"  # LDM: convolutions at the even places of a Sequential, SiLUs between
CONTROLNET_ZERO_CONV = "zero_convs"


def controlnet_map(structure: UnetStructure, hint_blocks: int = 6) -> ModuleMap:
    """A ControlNet's correspondence: the UNet's encoder and middle, the hint encoder and the zero convolutions.

    ``hint_blocks``: the hint encoder's inner convolutions (diffusers ``controlnet_cond_embedding.blocks``),
    two per step of ``conditioning_embedding_out_channels``; SD's ControlNets have six.
    """
    unet = unet_map(structure)
    encoder = [m for m in unet._by_ldm.values() if not m.ldm.startswith(("output_blocks.", "out."))]
    m = [*encoder, _Module(f"{CONTROLNET_HINT}.0", "controlnet_cond_embedding.conv_in"),
         _Module(f"{CONTROLNET_HINT}.{2 * (hint_blocks + 1)}", "controlnet_cond_embedding.conv_out"),
         _Module("middle_block_out.0", "controlnet_mid_block")]
    m += [_Module(f"{CONTROLNET_HINT}.{2 * (i + 1)}", f"controlnet_cond_embedding.blocks.{i}") for i in range(hint_blocks)]
    inputs = 1 + len(structure.attention) * structure.layers_per_block + len(structure.attention) - 1
    m += [_Module(f"{CONTROLNET_ZERO_CONV}.{i}.0", f"controlnet_down_blocks.{i}") for i in range(inputs)]
    return ModuleMap(m)


# VAE ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VaeStructure:
    """The KL autoencoder's layout: resolution levels and ResNets per level (the decoder has one more)."""

    levels: int = 4
    layers_per_block: int = 2


SD1_VAE = VaeStructure()


def vae_map(structure: VaeStructure = SD1_VAE) -> ModuleMap:
    """The VAE's module correspondence (SD1, SD2 and SDXL share it)."""
    m = [
        _Module("encoder.norm_out", "encoder.conv_norm_out"), _Module("decoder.norm_out", "decoder.conv_norm_out"),
        _Module("encoder.conv_in", "encoder.conv_in"), _Module("encoder.conv_out", "encoder.conv_out"),
        _Module("decoder.conv_in", "decoder.conv_in"), _Module("decoder.conv_out", "decoder.conv_out"),
        _Module("quant_conv", "quant_conv"), _Module("post_quant_conv", "post_quant_conv"),
    ]
    top = structure.levels - 1
    for side in ("encoder", "decoder"):
        m.append(_Module(f"{side}.mid.block_1", f"{side}.mid_block.resnets.0", _VAE_RESNET))
        m.append(_Module(f"{side}.mid.block_2", f"{side}.mid_block.resnets.1", _VAE_RESNET))
        m.append(_Module(f"{side}.mid.attn_1", f"{side}.mid_block.attentions.0", _VAE_ATTENTION, conv_to_linear=True))
    for level in range(structure.levels):
        for layer in range(structure.layers_per_block):
            m.append(_Module(f"encoder.down.{level}.block.{layer}", f"encoder.down_blocks.{level}.resnets.{layer}", _VAE_RESNET))
        if level < top:
            m.append(_Module(f"encoder.down.{level}.downsample.conv", f"encoder.down_blocks.{level}.downsamplers.0.conv"))
        # LDM numbers the decoder's levels from the lowest resolution up; diffusers from the top.
        up = top - level
        for layer in range(structure.layers_per_block + 1):
            m.append(_Module(f"decoder.up.{level}.block.{layer}", f"decoder.up_blocks.{up}.resnets.{layer}", _VAE_RESNET))
        if level > 0:
            m.append(_Module(f"decoder.up.{level}.upsample.conv", f"decoder.up_blocks.{up}.upsamplers.0.conv"))
    return ModuleMap(m)


# Text encoders --------------------------------------------------------------------------------

def clip_l_map() -> ModuleMap:
    """CLIP ViT-L (transformers ``CLIPTextModel``): the same names on both sides once mounted."""
    return ModuleMap([_Module("text_model", "text_model")])


# OpenCLIP text encoders (SD2's ViT-H, SDXL's bigG) against transformers' CLIPTextModel names --------

_OPEN_CLIP_LAYER = MappingProxyType({
    "ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
    "attn.out_proj": "self_attn.out_proj",
})
# OpenCLIP stores q, k and v as one projection (rows q, then k, then v); transformers as three.
_FUSED = MappingProxyType({
    f"attn.in_proj_{kind}": tuple(f"self_attn.{p}_proj.{kind}" for p in "qkv") for kind in ("weight", "bias")
})
# OpenCLIP multiplies by ``text_projection``; transformers' Linear by its transpose.
OPEN_CLIP_PROJECTION = ("text_projection", "text_projection.weight")
OPEN_CLIP_LOGIT_SCALE = "logit_scale"  # OpenCLIP's contrastive temperature; transformers' text model has none


class OpenClipMap(ModuleMap):
    """OpenCLIP text-encoder names against transformers' (``CLIPTextModel[WithProjection]``).

    Beyond renames: each layer's fused ``in_proj`` splits into q/k/v (:meth:`split`), the text
    projection is transposed, and ``logit_scale`` exists on the OpenCLIP side only.
    """

    def __init__(self, layers: int) -> None:
        modules = [_Module(f"transformer.resblocks.{i}", f"text_model.encoder.layers.{i}", _OPEN_CLIP_LAYER)
                   for i in range(layers)]
        modules += [_Module("token_embedding", "text_model.embeddings.token_embedding"),
                    _Module("ln_final", "text_model.final_layer_norm")]
        super().__init__(modules)
        self.layers = layers
        self._exact = {"positional_embedding": "text_model.embeddings.position_embedding.weight",
                       OPEN_CLIP_PROJECTION[0]: OPEN_CLIP_PROJECTION[1]}

    def to_diffusers(self, key: str) -> str | None:
        if key in self._exact:
            return self._exact[key]
        return None if self.split(key) else super().to_diffusers(key)

    def to_ldm(self, key: str) -> str | None:
        for ldm, name in self._exact.items():
            if key == name:
                return ldm
        return None if self.fused_into(key) else super().to_ldm(key)

    def split(self, key: str) -> tuple[str, ...] | None:
        """The three transformers keys (q, k, v) a fused OpenCLIP ``in_proj`` key splits into, or ``None``."""
        found = self._find(key, self._by_ldm)
        if found is None or found[1] not in _FUSED:
            return None
        return tuple(f"{found[0].diffusers}.{leaf}" for leaf in _FUSED[found[1]])

    def fused_into(self, key: str) -> tuple[str, int] | None:
        """The OpenCLIP ``in_proj`` key a transformers q/k/v key is part of, and its index (0, 1, 2)."""
        found = self._find(key, self._by_diffusers)
        if found is None:
            return None
        for fused, parts in _FUSED.items():
            if found[1] in parts:
                return f"{found[0].ldm}.{fused}", parts.index(found[1])
        return None

    @staticmethod
    def is_transposed(diffusers_key: str) -> bool:
        return diffusers_key == OPEN_CLIP_PROJECTION[1]
