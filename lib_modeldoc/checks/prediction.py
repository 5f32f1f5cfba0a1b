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
        yield Finding.worded("prediction.v", Severity.INFO, sources=", ".join(sources),
                             keys=tuple(k for k in ("v_pred",) if k in ctx.model))
        yield from _check_yaml_sidecar(ctx)
    edm = [k for k in ("edm_mean", "edm_std") if k in ctx.model]
    if edm:
        yield Finding.worded("prediction.edm", Severity.INFO, names=", ".join(repr(k) for k in edm), keys=tuple(edm))
    ztsnr = ztsnr_sources(ctx.model, meta)
    if ztsnr:
        yield Finding.worded("prediction.ztsnr", Severity.INFO, sources=", ".join(ztsnr),
                             keys=tuple(k for k in ("ztsnr",) if k in ctx.model))


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
    yield Finding.worded("sidecar.yaml_missing", Severity.WARNING, base=base, yaml=os.path.basename(yaml))
