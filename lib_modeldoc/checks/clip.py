"""CLIP-L position_ids damage and the old NAI key layout."""

from __future__ import annotations

from collections.abc import Iterator

from ..arch.families import ComponentId, KeyLayout
from ..report.advice import Repair
from ..report.data import Finding, Severity
from ..report.messages import Listed, Phrase
from .context import CheckContext


def check_position_ids(ctx: CheckContext) -> Iterator[Finding]:
    for ids in ctx.position_ids:
        is_float = ctx.model[ids.key].is_float
        if ids.wrong:
            shown = Listed(tuple(
                Phrase("finding.clip.position_stored", {"index": i, "value": int(v) if v == v else "NaN",
                                                        "stored": f"{v:g}"}) if is_float
                else Phrase("finding.clip.position", {"index": i, "value": int(v) if v == v else "NaN"})
                for i, v in zip(ids.wrong[:6], ids.values[:6])
            ))
            more = Phrase("finding.more", {"n": len(ids.wrong) - 6}) if len(ids.wrong) > 6 else ""
            yield Finding.worded(
                "clip.position_ids.offset", Severity.ERROR, wrong=len(ids.wrong), shown=shown, more=more,
                keys=(ids.key,), repair=Repair.FIX_CLIP,
            )
        elif is_float:
            yield Finding.worded(
                "clip.position_ids.float", Severity.WARNING, dtype=ids.dtype, keys=(ids.key,), repair=Repair.FIX_CLIP,
            )


def check_nai_layout(ctx: CheckContext) -> Iterator[Finding]:
    slot = ctx.ident.slot(ComponentId.CLIP_L)
    if slot is not None and slot.present and slot.mount.layout == KeyLayout.NAI:
        yield Finding.worded("clip.nai_layout", Severity.INFO, keys=slot.keys[:3], repair=Repair.CONVERT)
