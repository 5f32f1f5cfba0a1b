"""Stability AI ModelSpec names for our families, and how a file says it is v-prediction.

``modelspec.architecture`` values are the spec's own ids (ModelSpec README, kohya
``sai_model_spec.py``); a family whose id depends on what the weights cannot show (SD2 512-base
vs 768-v without a marker) or that the spec does not name gets none.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

__all__ = ["MODELSPEC_ARCHITECTURE", "modelspec_architecture", "signature_modelspec", "v_prediction_sources",
           "ztsnr_sources", "EPSILON_FAMILIES"]

MODELSPEC_ARCHITECTURE: Mapping[str, str] = {
    "SD1": "stable-diffusion-v1",
    "SD1-inpaint": "stable-diffusion-v1-inpainting",
    "SD2-inpaint": "stable-diffusion-v2-inpainting",
    "SD2-depth": "stable-diffusion-v2-depth",
    "SDXL": "stable-diffusion-xl-v1-base",
    "SDXL-refiner": "stable-diffusion-xl-v1-refiner",
    "SD3": "stable-diffusion-v3-medium",
    "ControlNet": "stable-diffusion-v1/controlnet",
    "ControlNet-SDXL": "stable-diffusion-xl-v1-base/controlnet",
}
# Variant by the table that matched (unCLIP H / L).
_BY_TABLE: Mapping[str, str] = {
    "unclip_embedder_h": "stable-diffusion-v2-unclip-h",
    "unclip_embedder_l": "stable-diffusion-v2-unclip-l",
}
# Families trained for epsilon-prediction only (SD 1.x); others may be either and get no default.
EPSILON_FAMILIES = frozenset({"SD1", "SD1-inpaint", "SD1-pix2pix"})

V_METADATA: Mapping[str, str] = {"modelspec.prediction_type": "v", "modelspec.predict_key": "v"}
V_KEYS = ("v_pred", "edm_vpred.sigma_max")


def modelspec_architecture(architecture: str, tables: Collection[str], v_prediction: bool) -> str | None:
    """The ``modelspec.architecture`` of a file, or ``None`` when it cannot be told."""
    for table_id, name in _BY_TABLE.items():
        if table_id in tables:
            return name
    if architecture == "SD2":
        return "stable-diffusion-v2-768-v" if v_prediction else None  # 512-base looks the same
    return MODELSPEC_ARCHITECTURE.get(architecture)


# Files recognised by key pattern: (architecture ids, a key that must be there or not, modelspec id).
# FLUX.1 [dev] is guidance-distilled (guidance_in); [schnell] has none (kohya's flux-1-dev / flux-1-schnell).
_SIGNATURE_SPEC: tuple[tuple[frozenset[str], str, bool, str], ...] = (
    (frozenset({"Flux", "Flux-transformer"}), "guidance_in.in_layer.weight", True, "flux-1-dev"),
    (frozenset({"Flux", "Flux-transformer"}), "guidance_in.in_layer.weight", False, "flux-1-schnell"),
)


def signature_modelspec(architecture: str, keys: Collection[str]) -> str | None:
    """The ``modelspec.architecture`` of an SD3 / Flux file (prefixed or not), ``None`` when not told."""
    bare = {k[len("model.diffusion_model."):] if k.startswith("model.diffusion_model.") else k for k in keys}
    for archs, key, present, name in _SIGNATURE_SPEC:
        if architecture in archs and (key in bare) == present:
            return name
    return None


def v_prediction_sources(keys: Collection[str], metadata: Mapping[str, str]) -> list[str]:
    """What says a file is v-prediction: marker tensors and metadata (empty when nothing does)."""
    sources = [f"'{k}' tensor" for k in V_KEYS if k in keys]
    sources += [f"metadata {k}={v}" for k, v in V_METADATA.items() if str(metadata.get(k, "")).strip().lower() == v]
    base = str(metadata.get("ss_base_model_version", ""))
    if base.endswith("_v"):
        sources.append(f"metadata ss_base_model_version={base}")
    return sources


def ztsnr_sources(keys: Collection[str], metadata: Mapping[str, str]) -> list[str]:
    """What says a file is zero-terminal-SNR."""
    sources = ["'ztsnr' tensor"] if "ztsnr" in keys else []
    if str(metadata.get("ss_zero_terminal_snr", "")).lower() == "true":
        sources.append("metadata ss_zero_terminal_snr=True")
    return sources
