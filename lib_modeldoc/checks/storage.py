"""Space the WebUI never uses: junk tensors, the EMA copy, pickled training state."""

from __future__ import annotations

from collections.abc import Iterator

from ..arch.families import ComponentId
from ..io.model import ModelFormat
from ..report.advice import Repair
from ..report.data import Finding, Severity
from ..report.messages import Counted, Listed, Phrase
from ..report.units import human_bytes
from .context import CheckContext


def check_junk(ctx: CheckContext) -> Iterator[Finding]:
    keys = ctx.junk_keys
    total = ctx.nbytes(keys) + ctx.stray_bytes
    count = len(keys) + len(ctx.model.stray_tensors)
    if not count:
        return
    names = ctx.junk_group_names
    groups = Listed(tuple(
        Phrase("finding.junk.group", {"group": g, "alias": "" if names.get(g, g) in g else " = " + names[g],
                                      "tensors": Counted("tensor", n), "size": human_bytes(b)})
        for g, n, b in ctx.junk_groups[:4]
    ))
    more = Phrase("finding.more_groups", {"n": len(ctx.junk_groups) - 4}) if len(ctx.junk_groups) > 4 else ""
    yield Finding.worded(
        "junk", Severity.WARNING, size=human_bytes(total), tensors=Counted("tensor", count), groups=groups, more=more,
        keys=tuple(keys[:20]), bytes_affected=total, repair=Repair.CONVERT,
    )


def check_unknown(ctx: CheckContext) -> Iterator[Finding]:
    keys = ctx.unknown_keys
    if not keys or ctx.ident.family is None:
        return  # an unidentified model: arch.unknown already says nothing is called junk
    size = ctx.nbytes(keys)
    groups = Listed(tuple(
        Phrase("finding.unknown.group", {"group": g, "tensors": Counted("tensor", n), "size": human_bytes(b)})
        for g, n, b in ctx.unknown_groups[:4]
    ))
    more = Phrase("finding.more_groups", {"n": len(ctx.unknown_groups) - 4}) if len(ctx.unknown_groups) > 4 else ""
    yield Finding.worded(
        "unknown.kept", Severity.INFO, size=human_bytes(size), tensors=Counted("tensor", len(keys)),
        label=ctx.ident.label, groups=groups, more=more,
        keys=tuple(keys[:20]), bytes_affected=size, repair=Repair.DROP_UNKNOWN,
    )


def check_ema(ctx: CheckContext) -> Iterator[Finding]:
    keys = ctx.ema_keys
    slot = ctx.ident.slot(ComponentId.EMA_UNET)
    if keys and slot is not None and slot.present:  # bookkeeping alone (decay, num_updates) is not worth a line
        size = ctx.nbytes(keys)
        yield Finding.worded("ema", Severity.INFO, tensors=Counted("tensor", len(keys)), size=human_bytes(size),
                             bytes_affected=size, repair=Repair.PRUNE_EMA)


def check_pickle(ctx: CheckContext) -> Iterator[Finding]:
    if ctx.model.format != ModelFormat.CKPT:
        return
    training = sorted(k.split(".", 1)[0] for k in ctx.model.extras)
    extra = Phrase("finding.format.pickle.training", {"items": ", ".join(dict.fromkeys(training))}) if training else ""
    yield Finding.worded("format.pickle", Severity.INFO, extra=extra, repair=Repair.CONVERT)
