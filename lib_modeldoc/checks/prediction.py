"""v-prediction and zero-terminal-SNR markers (keys and metadata)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from ..arch.modelspec import v_prediction_sources, ztsnr_sources
from ..report.data import Finding, Severity
from .context import CheckContext


def check_prediction(ctx: CheckContext) -> Iterator[Finding]:
    meta = ctx.model.metadata
    sources = v_prediction_sources(ctx.model, meta)
    if sources:
        yield Finding(
            "prediction.v", Severity.INFO,
            f"v-prediction model ({', '.join(sources)}); Model Doctor keeps the marker. "
            "AUTOMATIC1111 1.10 does not read the 'v_pred' key: give it a .yaml config",
            keys=tuple(k for k in ("v_pred",) if k in ctx.model),
        )
        yield from _check_yaml_sidecar(ctx)
    edm = [k for k in ("edm_mean", "edm_std") if k in ctx.model]
    if edm:
        yield Finding(
            "prediction.edm", Severity.INFO,
            f"EDM model with its own latent statistics ({', '.join(repr(k) for k in edm)} tensors, as Playground v2.5); "
            "ComfyUI and Forge read them to pick the EDM sampler setup; Model Doctor keeps them",
            keys=tuple(edm),
        )
    ztsnr = ztsnr_sources(ctx.model, meta)
    if ztsnr:
        yield Finding(
            "prediction.ztsnr", Severity.INFO,
            f"zero-terminal-SNR model ({', '.join(ztsnr)}); Model Doctor keeps the marker",
            keys=tuple(k for k in ("ztsnr",) if k in ctx.model),
        )


# AUTOMATIC1111 1.10 tells an SD2 v-model from its weights (a test forward) but has no way to see
# v-prediction in an SD1 or SDXL file: it loads them as epsilon models unless NAME.yaml says otherwise.
_NEEDS_YAML_FOR_V = ("SD1", "SDXL")


def _check_yaml_sidecar(ctx: CheckContext) -> Iterator[Finding]:
    base = ctx.ident.architecture.split("-", 1)[0]
    if base not in _NEEDS_YAML_FOR_V or not ctx.model.path:
        return
    yaml = os.path.splitext(ctx.model.path)[0] + ".yaml"
    if os.path.isfile(yaml):
        return
    yield Finding(
        "sidecar.yaml_missing", Severity.WARNING,
        f"AUTOMATIC1111 1.10 loads this {base} v-prediction model as an epsilon model (noise or burnt images) "
        f"unless {os.path.basename(yaml)}, a v-prediction config, is beside it: none was found",
    )
