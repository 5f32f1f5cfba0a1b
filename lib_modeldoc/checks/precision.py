"""Precision the WebUI throws away: fp32/fp64 weights where it runs fp16, stray float64."""

from __future__ import annotations

from collections.abc import Iterator

from ..arch.layout import BUFFER, EMA, JUNK
from ..report.advice import Repair
from ..report.data import Finding, Severity
from ..report.messages import Counted
from ..report.units import human_bytes
from .context import CheckContext

# Parts whose bytes survive a prune; only those count as waste worth reporting.
_DROPPED = {EMA, JUNK}
_WASTE_THRESHOLD = 1_000_000  # ignore a few fp32 scalars


def check_fp64(ctx: CheckContext) -> Iterator[Finding]:
    keys = [k for k, info in ctx.model.items() if info.dtype == "F64"]
    if keys:
        size = ctx.nbytes(keys)
        yield Finding.worded(
            "precision.fp64", Severity.WARNING, tensors=Counted("f64_tensor", len(keys)), size=human_bytes(size),
            keys=tuple(keys[:20]), bytes_affected=size, repair=Repair.PRECISION_FP16,
        )


def check_precision_waste(ctx: CheckContext) -> Iterator[Finding]:
    wide = [
        k for k, info in ctx.model.items()
        if info.is_float and info.itemsize > 2 and ctx.layout.parts[k] not in _DROPPED and ctx.layout.parts[k] != BUFFER
    ]
    saving = sum(ctx.model[k].nbytes - ctx.model[k].numel * 2 for k in wide)
    if saving >= _WASTE_THRESHOLD:
        yield Finding.worded(
            "precision.waste", Severity.INFO, tensors=Counted("tensor_is", len(wide)), saving=human_bytes(saving),
            bytes_affected=saving, repair=Repair.PRECISION_FP16,
        )
