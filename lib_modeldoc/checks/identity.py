"""Say when a file is not a model we can work on, or one we only inspect."""

from __future__ import annotations

from collections.abc import Iterator

from ..report.advice import count
from ..report.data import Finding, Severity
from .context import CheckContext

INSPECT_ONLY = {
    "SD3": "Stable Diffusion 3 is recognised by its keys (no tables): nothing is pruned; precision changes keep "
           "norms, biases and embedders 16-bit, and export / build split it into (and join) the parts ComfyUI loads",
    "Flux": "FLUX.1 is recognised by its keys (no tables): nothing is pruned; precision changes keep norms, biases "
            "and embedders 16-bit, and export / build split it into (and join) transformer, clip_l, t5xxl and ae",
    "SD3-transformer": "an SD3 transformer alone: ComfyUI loads it from models/diffusion_models (Forge: models/"
                       "Stable-diffusion) with separate text encoders and VAE; inspection only",
    "Flux-transformer": "a FLUX.1 transformer alone: Forge and ComfyUI load it with separate clip_l, t5xxl and "
                        "ae files; inspection only",
    "T5XXL": "a T5-XXL text encoder (for Flux and SD3): it goes in models/text_encoder (ComfyUI: models/clip)",
    "T2I-Adapter": "a T2I-Adapter: load it from the ControlNet extension's models folder, not as a checkpoint",
    "IP-Adapter": "an IP-Adapter: load it from the ControlNet extension's models folder, not as a checkpoint",
    "LoRA": "a LoRA / LyCORIS network: load it from the WebUI's Lora folder, not as a checkpoint",
    "Embedding": "a textual-inversion embedding: put it in the WebUI's embeddings folder",
}


def check_identity(ctx: CheckContext) -> Iterator[Finding]:
    ident = ctx.ident
    if ident.architecture == "unknown":
        closest = ", ".join(f"{c.name} ({count(c.matched, 'key')})" for c in ident.candidates[:3]) or "none"
        yield Finding(
            "arch.unknown", Severity.WARNING,
            f"not a known Stable Diffusion layout (closest: {closest}); nothing will be called junk",
        )
    elif ident.architecture in INSPECT_ONLY:
        yield Finding("arch.inspect_only", Severity.INFO, INSPECT_ONLY[ident.architecture])
