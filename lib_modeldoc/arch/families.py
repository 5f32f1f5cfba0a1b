"""The model families Model Doctor knows, as data.

A :class:`Family` composes component tables at mount prefixes (the layout of a single-file LDM /
SGM checkpoint, or of a standalone component file). Identification scores every family against a
file's keys; nothing here is an if-chain over architectures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..strenum import StrEnum

__all__ = ["FamilyKind", "Base", "ComponentId", "KeyLayout", "Mount", "Slot", "Family", "FAMILIES", "CHECKPOINT_ARCHITECTURES", "KNOWN_BUFFERS", "Signature", "SIGNATURES", "Variant", "family"]


class FamilyKind(StrEnum):
    """Whether a family is a whole checkpoint the WebUI loads as a model, or one part of one."""

    CHECKPOINT = "checkpoint"
    COMPONENT = "component"


class Base(StrEnum):
    """The model generation a family belongs to: parts of the same base fit together."""

    SD1 = "SD1"
    SD2 = "SD2"
    SDXL = "SDXL"
    SD = "SD"  # shared by SD1, SD2 and SDXL (the VAE)


class ComponentId(StrEnum):
    """A component's slot name: the part name of reports, layouts and the CLI contract."""

    UNET = "unet"
    EMA_UNET = "ema_unet"
    VAE = "vae"
    CLIP_L = "clip_l"
    CLIP_H = "clip_h"
    CLIP_G = "clip_g"
    DEPTH = "depth"
    CONTROLNET = "controlnet"
    EMBEDDER = "embedder"  # SD 2.1 unCLIP's image embedder
    XLM_ROBERTA = "xlm_roberta"  # AltDiffusion's text encoder
    TRANSFORMER = "transformer"  # SD3's / Flux's diffusion transformer
    T5XXL = "t5xxl"  # SD3's / Flux's T5 text encoder


class KeyLayout(StrEnum):
    """How a component's keys are named under its mount."""

    STANDARD = "standard"
    NAI = "nai"  # SD1 CLIP keys without ``text_model.``: the WebUI renames them on load


@dataclass(frozen=True)
class Mount:
    """Where a component's keys sit in a file.

    Attributes:
        prefix: prepended to every table key.
        layout: :attr:`KeyLayout.STANDARD`, or a named legacy layout such as :attr:`KeyLayout.NAI`
            (CLIP keys without ``text_model.``), which the WebUI renames on load and a repair
            renames for good.
        ema: keys are the table keys with every ``.`` removed (how LitEma names its buffers).
    """

    prefix: str
    layout: KeyLayout = KeyLayout.STANDARD
    ema: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", KeyLayout(self.layout))  # a plain string is accepted, and checked

    def key(self, table_key: str) -> str:
        return self.prefix + (table_key.replace(".", "") if self.ema else table_key)

    def keys(self, table_keys: Iterable[str]) -> tuple[str, ...]:
        """:meth:`key` of each table key, in bulk (identification lays out ~40k keys at start-up)."""
        prefix = self.prefix
        if self.ema:
            return tuple([prefix + k.replace(".", "") for k in table_keys])
        return tuple([prefix + k for k in table_keys])


@dataclass(frozen=True)
class Slot:
    """One component of a family: which tables may fill it and where it is mounted."""

    component: ComponentId
    tables: tuple[str, ...]
    mounts: tuple[Mount, ...]
    required: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "component", ComponentId(self.component))


@dataclass(frozen=True)
class Family:
    """A model layout the WebUI (or a component dropdown) can load."""

    name: str  # the architecture id of the CLI contract
    kind: FamilyKind
    base: Base  # which parts fit together
    label: str
    slots: tuple[Slot, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FamilyKind(self.kind))
        object.__setattr__(self, "base", Base(self.base))

    def slot(self, component: str) -> Slot | None:
        return next((s for s in self.slots if s.component == component), None)


@dataclass(frozen=True)
class Variant:
    """A more precise id for a signature's file, told by one key (and optionally one of its sizes).

    Applies when a key matches ``key`` (a regular expression) and, with ``dim``, that key's
    ``shape[dim] == size``.
    """

    name: str
    label: str
    key: str
    dim: int | None = None
    size: int | None = None


@dataclass(frozen=True)
class Signature:
    """A family recognised by key patterns only (adapters, and newer models we only inspect).

    It applies when the share of keys matching ``patterns`` is at least ``min_share`` (and at
    least one key matches). The first of ``variants`` that applies names the file more precisely.
    """

    name: str
    label: str
    patterns: tuple[str, ...]
    min_share: float
    variants: tuple[Variant, ...] = ()
    parts: tuple[tuple[ComponentId, str], ...] = ()  # (component, key prefix) of the separate parts a file may hold


UNET = "model.diffusion_model."
VAE = "first_stage_model."
SD1_CLIP = "cond_stage_model.transformer."
SD2_CLIP = "cond_stage_model.model."
XL_CLIP_L = "conditioner.embedders.0.transformer.text_model."
XL_CLIP_G = "conditioner.embedders.1.model."
REFINER_CLIP_G = "conditioner.embedders.0.model."
EMA = "model_ema.diffusion_model"


# Short names for the table below.
_CHECKPOINT, _COMPONENT = FamilyKind.CHECKPOINT, FamilyKind.COMPONENT
_C = ComponentId


def _unet(*tables: str, prefix: str = UNET) -> Slot:
    return Slot(_C.UNET, tables, (Mount(prefix),))


def _ema(*tables: str) -> Slot:
    return Slot(_C.EMA_UNET, tables, (Mount(EMA, ema=True),), required=False)


_VAE = Slot(_C.VAE, ("vae",), (Mount(VAE),))
_SD1_CLIP = Slot(_C.CLIP_L, ("clip_l",), (Mount(SD1_CLIP + "text_model."), Mount(SD1_CLIP, layout=KeyLayout.NAI)))
_SD2_CLIP = Slot(_C.CLIP_H, ("clip_h", "clip_h_wd"), (Mount(SD2_CLIP),))
_XL_CLIP_L = Slot(_C.CLIP_L, ("clip_l",), (Mount(XL_CLIP_L),))
_XL_CLIP_G = Slot(_C.CLIP_G, ("clip_g",), (Mount(XL_CLIP_G),))


def _sd1(name: str, unet: str, label: str) -> Family:
    return Family(name, _CHECKPOINT, Base.SD1, label, (_unet(unet), _VAE, _SD1_CLIP, _ema(unet)))


def _sd2(name: str, unet: str, label: str, *extra: Slot) -> Family:
    return Family(name, _CHECKPOINT, Base.SD2, label, (_unet(unet), _VAE, _SD2_CLIP, *extra, _ema(unet)))


def _sd2_unclip() -> Family:
    tables = ("unet_sd2_unclip_h", "unet_sd2_unclip_l")
    embedder = Slot(_C.EMBEDDER, ("unclip_embedder_h", "unclip_embedder_l"), (Mount("embedder.model."),))
    return Family("SD2-unCLIP", _CHECKPOINT, Base.SD2, "Stable Diffusion 2.1 unCLIP (image variations)",
                  (_unet(*tables), _VAE, _SD2_CLIP, embedder, _ema(*tables)))


def _alt_diffusion() -> Family:
    # m9: SD1's UNet (context 768); m18: SD2's (context 1024, linear proj), alt-diffusion-*-inference.yaml.
    text = Slot(_C.XLM_ROBERTA, ("xlmr_m9", "xlmr_m18"), (Mount("cond_stage_model."),))
    return Family("AltDiffusion", _CHECKPOINT, Base.SD1, "AltDiffusion (XLM-RoBERTa text encoder)",
                  (_unet("unet_sd1", "unet_sd2"), _VAE, text, _ema("unet_sd1", "unet_sd2")))


def _controlnet(name: str, table_id: str, base: Base, label: str) -> Family:
    return Family(name, _COMPONENT, base, label, (Slot(_C.CONTROLNET, (table_id,), (Mount("control_model."), Mount(""))),))


def _sdxl(name: str, unet: str, label: str) -> Family:
    return Family(name, _CHECKPOINT, Base.SDXL, label, (_unet(unet), _VAE, _XL_CLIP_L, _XL_CLIP_G, _ema(unet)))


# Order breaks ties: full checkpoints before standalone parts.
FAMILIES: tuple[Family, ...] = (
    _sd1("SD1", "unet_sd1", "Stable Diffusion 1.x"),
    _sd1("SD1-inpaint", "unet_sd1_inpaint", "Stable Diffusion 1.x inpainting"),
    _sd1("SD1-pix2pix", "unet_sd1_pix2pix", "Stable Diffusion 1.x InstructPix2Pix"),
    _sd2("SD2", "unet_sd2", "Stable Diffusion 2.x"),
    _sd2("SD2-inpaint", "unet_sd2_inpaint", "Stable Diffusion 2.x inpainting"),
    _sd2("SD2-depth", "unet_sd2_depth", "Stable Diffusion 2.x depth",
         Slot(_C.DEPTH, ("depth_midas",), (Mount("depth_model.model."),))),
    _sd2_unclip(),
    _alt_diffusion(),
    _sdxl("SDXL", "unet_sdxl", "Stable Diffusion XL"),
    _sdxl("SDXL-inpaint", "unet_sdxl_inpaint", "Stable Diffusion XL inpainting"),
    Family("SDXL-refiner", _CHECKPOINT, Base.SDXL, "Stable Diffusion XL refiner", (
        _unet("unet_sdxl_refiner"), _VAE, Slot(_C.CLIP_G, ("clip_g",), (Mount(REFINER_CLIP_G),)),
        _ema("unet_sdxl_refiner"))),
    Family("UNET-SD1", _COMPONENT, Base.SD1, "SD1 UNet",
           (_unet("unet_sd1", "unet_sd1_inpaint", "unet_sd1_pix2pix", prefix=""),)),
    Family("UNET-SD2", _COMPONENT, Base.SD2, "SD2 UNet",
           (_unet("unet_sd2", "unet_sd2_inpaint", "unet_sd2_depth", prefix=""),)),
    Family("UNET-SDXL", _COMPONENT, Base.SDXL, "SDXL UNet",
           (_unet("unet_sdxl", "unet_sdxl_inpaint", "unet_sdxl_refiner", prefix=""),)),
    Family("VAE", _COMPONENT, Base.SD, "VAE (SD1/SD2/SDXL share one structure; SD3/Flux 'ae': 16 channels)",
           (Slot(_C.VAE, ("vae", "vae_16ch"), (Mount(""),)),)),
    Family("CLIP-SD1", _COMPONENT, Base.SD1, "CLIP ViT-L text encoder",
           (Slot(_C.CLIP_L, ("clip_l",), (Mount("text_model."), Mount(""))),)),
    Family("CLIP-SD2", _COMPONENT, Base.SD2, "OpenCLIP ViT-H text encoder",
           (Slot(_C.CLIP_H, ("clip_h", "clip_h_wd"), (Mount(""),)),)),
    # clip_g_hf: SD3's clip_g.safetensors, the same OpenCLIP bigG in transformers names (a part
    # check keeps it out of SDXL checkpoints, whose slot wants the OpenCLIP names).
    Family("CLIP-SDXL", _COMPONENT, Base.SDXL, "SDXL text encoders (OpenCLIP bigG; SD3: transformers layout)", (
        Slot(_C.CLIP_L, ("clip_l",), (Mount("clip_l.text_model."),), required=False),
        Slot(_C.CLIP_G, ("clip_g", "clip_g_hf"), (Mount("clip_g."), Mount(""))))),
    _controlnet("ControlNet", "controlnet_sd1", Base.SD1, "ControlNet (SD1)"),
    _controlnet("ControlNet-SD2", "controlnet_sd2", Base.SD2, "ControlNet (SD2)"),
    _controlnet("ControlNet-SDXL", "controlnet_sdxl", Base.SDXL, "ControlNet (SDXL)"),
)

#: Architecture ids of whole checkpoints (what the WebUI loads as a model), as opposed to parts.
CHECKPOINT_ARCHITECTURES: frozenset[str] = frozenset(f.name for f in FAMILIES if f.kind == FamilyKind.CHECKPOINT)

_PREFIXED = r"^model\.diffusion_model\."
# A ComfyUI-style all-in-one SD3 / Flux checkpoint: the parts Forge and ComfyUI also load as separate files.
_TRANSFORMER_PARTS = (
    (_C.TRANSFORMER, "model.diffusion_model."), (_C.CLIP_L, "text_encoders.clip_l."), (_C.CLIP_G, "text_encoders.clip_g."),
    (_C.T5XXL, "text_encoders.t5xxl."), (_C.VAE, "first_stage_model."),
)
# Export / build of SD3 and Flux: component -> (prefix in an all-in-one checkpoint, prefix in its own
# file as Forge and ComfyUI load it: BFL / SAI transformer names, HF text encoders, the LDM "ae" VAE).
TRANSFORMER_PART_FILES: dict[ComponentId, tuple[str, str]] = {
    _C.TRANSFORMER: ("model.diffusion_model.", ""),
    _C.CLIP_L: ("text_encoders.clip_l.transformer.", ""),
    _C.CLIP_G: ("text_encoders.clip_g.transformer.", ""),
    _C.T5XXL: ("text_encoders.t5xxl.transformer.", ""),
    _C.VAE: ("first_stage_model.", ""),
}
# What each part file identifies as on its own (a build checks its inputs against this).
TRANSFORMER_PART_ARCHS: dict[str, dict[ComponentId, tuple[str, ...]]] = {
    "Flux": {_C.TRANSFORMER: ("Flux-transformer", "Flux"), _C.CLIP_L: ("CLIP-SD1",), _C.T5XXL: ("T5XXL",), _C.VAE: ("VAE",)},
    "SD3": {_C.TRANSFORMER: ("SD3-transformer", "SD3"), _C.CLIP_L: ("CLIP-SD1",), _C.CLIP_G: ("CLIP-SDXL",),
            _C.T5XXL: ("T5XXL",), _C.VAE: ("VAE",)},
}
_CONTROLNET_TO_K = r"^down_blocks\.1\.attentions\.0\.transformer_blocks\.0\.attn2\.to_k\.weight$"

# Recognised from key patterns; inspected, never pruned or rebuilt. Tried in order: a LoRA is
# told by its tensor suffixes first, whatever model's block names it patches (Flux, SD3).
SIGNATURES: tuple[Signature, ...] = (
    Signature("LoRA", "LoRA / LyCORIS", (
        r"^lora_(unet|te\d?|transformer)_",
        r"\.(lora_(down|up|A|B)|hada_w[12]_[ab]|lokr_w[12](_[ab])?)(\.weight)?$",
        r"\.alpha$",
    ), 0.5),
    # image_proj + one to_k_ip / to_v_ip pair per cross-attention layer (tencent-ailab/IP-Adapter).
    Signature("IP-Adapter", "IP-Adapter", (r"^image_proj\.", r"^ip_adapter\.\d+\.to_[kv]_ip\."), 0.9, (
        Variant("IP-Adapter", "IP-Adapter (SDXL)", r"^ip_adapter\.1\.to_k_ip\.weight$", 1, 2048),
        Variant("IP-Adapter", "IP-Adapter (SD2)", r"^ip_adapter\.1\.to_k_ip\.weight$", 1, 1024),
        Variant("IP-Adapter", "IP-Adapter (SD1)", r"^ip_adapter\.1\.to_k_ip\.weight$", 1, 768),
    )),
    # TencentARC T2I-Adapter (original: body.N.* + conv_in; diffusers: adapter.body.N.resnets.M.*).
    # conv_in sees the pixel-unshuffled hint: 3*8*8 = 192 channels for SD1/SD2, 3*16*16 = 768 for SDXL.
    Signature("T2I-Adapter", "T2I-Adapter", (r"^(adapter\.)?body\.\d+\.", r"^(adapter\.)?conv_in\.(weight|bias)$"), 0.9, (
        Variant("T2I-Adapter", "T2I-Adapter (SDXL)", r"^(adapter\.)?conv_in\.weight$", 1, 768),
        Variant("T2I-Adapter", "T2I-Adapter (SD1/SD2)", r"^(adapter\.)?conv_in\.weight$", 1, 192),
    )),
    # diffusers ControlNetModel: the UNet's encoder in diffusers names + the controlnet_* heads.
    Signature("ControlNet", "ControlNet (diffusers layout)", (r"^controlnet_(cond_embedding|down_blocks|mid_block)\.",), 0.02, (
        Variant("ControlNet-SDXL", "ControlNet (SDXL, diffusers layout)", _CONTROLNET_TO_K, 1, 2048),
        Variant("ControlNet-SDXL", "ControlNet (SDXL, diffusers layout)", r"^add_embedding\.linear_1\.weight$"),
        Variant("ControlNet-SD2", "ControlNet (SD2, diffusers layout)", _CONTROLNET_TO_K, 1, 1024),
        Variant("ControlNet", "ControlNet (SD1, diffusers layout)", _CONTROLNET_TO_K, 1, 768),
    )),
    # SD3 / Flux ControlNets (diffusers SD3ControlNetModel / FluxControlNetModel, XLabs' Flux ControlNet):
    # transformer blocks plus one controlnet_blocks.N projection each; checked before the transformers.
    Signature("ControlNet", "ControlNet (SD3 / Flux)", (r"^controlnet_(blocks|single_blocks)\.\d+\.",
                                                        r"^(controlnet_x_embedder|pos_embed_input)\."), 0.01, (
        Variant("ControlNet", "ControlNet (Flux)", r"^(double_blocks\.|single_transformer_blocks\.|"
                                                   r"transformer_blocks\.\d+\.attn\.norm_added_k\.)"),
        Variant("ControlNet", "ControlNet (SD3)", r"^(joint_blocks\.|transformer_blocks\.\d+\.attn\.add_k_proj\.)"),
    )),
    # FLUX.1: BFL names (double_blocks / single_blocks) or diffusers (single_transformer_blocks).
    Signature("Flux-transformer", "FLUX.1 transformer", (
        r"^(model\.diffusion_model\.)?double_blocks\.\d+\.img_attn\.", r"^single_transformer_blocks\.\d+\.",
    ), 0.0, (Variant("Flux", "FLUX.1 checkpoint", _PREFIXED),), _TRANSFORMER_PARTS),
    Signature("SD3-transformer", "Stable Diffusion 3 transformer", (
        r"^(model\.diffusion_model\.)?joint_blocks\.\d+\.(context|x)_block\.",
        r"^transformer_blocks\.\d+\.attn\.add_k_proj\.",
    ), 0.0, (Variant("SD3", "Stable Diffusion 3 checkpoint", _PREFIXED),), _TRANSFORMER_PARTS),
    # T5 v1.1 encoder (d_model 4096 = XXL), as Flux and SD3 load it; "scaled" fp8 files add scales.
    Signature("T5XXL", "T5-XXL text encoder", (
        r"^encoder\.block\.\d+\.layer\.\d+\.", r"^(shared|encoder\.embed_tokens)\.weight$",
        r"^encoder\.final_layer_norm\.weight$", r"\.scale_(weight|input)$", r"^scaled_fp8$",
    ), 0.9),
    Signature("Embedding", "textual-inversion embedding",
              (r"^(emb_params|string_to_param\..+|clip_l|clip_g|string_to_token\..+)$",), 1.0),
)

# Small buffers of a full LDM checkpoint that belong to no component but must be kept: the
# scheduler and the markers WebUIs read to pick v-prediction / zero-SNR. (EMA bookkeeping,
# ``model_ema.decay`` / ``num_updates``, goes with the EMA copy: see ``arch/junk.py``.)
SCHEDULER_BUFFERS = frozenset({
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
    "posterior_mean_coef1", "posterior_mean_coef2", "logvar",
})
EMA_BUFFERS = frozenset({"model_ema.decay", "model_ema.num_updates"})
PREDICTION_MARKERS = frozenset({"v_pred", "ztsnr", "edm_mean", "edm_std", "edm_vpred.sigma_max", "edm_vpred.sigma_min"})
# SD 2.1 unCLIP's noise_augmentor (CLIPEmbeddingNoiseAugmentation): the same schedule buffers.
NOISE_AUGMENTOR_BUFFERS = frozenset("noise_augmentor." + k for k in SCHEDULER_BUFFERS - {"posterior_variance",
    "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2", "logvar"})
KNOWN_BUFFERS = SCHEDULER_BUFFERS | PREDICTION_MARKERS | NOISE_AUGMENTOR_BUFFERS

_BY_NAME = {f.name: f for f in FAMILIES}


def family(name: str) -> Family:
    """The :class:`Family` with this architecture id; ``KeyError`` if unknown."""
    return _BY_NAME[name]
