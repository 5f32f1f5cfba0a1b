"""CLIP-L position_ids damage and the old NAI key layout."""

from __future__ import annotations

from collections.abc import Iterator

from ..report.advice import Repair
from ..report.data import Finding, Severity
from .context import CheckContext


def check_position_ids(ctx: CheckContext) -> Iterator[Finding]:
    for ids in ctx.position_ids:
        is_float = ctx.model[ids.key].is_float
        if ids.wrong:
            shown = ", ".join(
                f"{i} (reads as {int(v) if v == v else 'NaN'}{f', stored {v:g}' if is_float else ''})"
                for i, v in zip(ids.wrong[:6], ids.values[:6])
            )
            more = f" and {len(ids.wrong) - 6} more" if len(ids.wrong) > 6 else ""
            yield Finding(
                "clip.position_ids.offset", Severity.ERROR,
                f"CLIP position_ids are shifted at {len(ids.wrong)} of 77 positions: {shown}{more}; "
                "the WebUI reads these as int64, so prompt tokens get the wrong position "
                "(weakened or ignored words)",
                keys=(ids.key,), repair=Repair.FIX_CLIP,
            )
        elif is_float:
            yield Finding(
                "clip.position_ids.float", Severity.WARNING,
                f"CLIP position_ids are stored as {ids.dtype} instead of int64; the values are still "
                "right, but the next merge or fp16 cast can shift them",
                keys=(ids.key,), repair=Repair.FIX_CLIP,
            )


def check_nai_layout(ctx: CheckContext) -> Iterator[Finding]:
    slot = ctx.ident.slot("clip_l")
    if slot is not None and slot.present and slot.mount.layout == "nai":
        yield Finding(
            "clip.nai_layout", Severity.INFO,
            "CLIP keys use the old NAI layout (no 'text_model.'); the WebUI renames them on load, "
            "other tools may not; convert renames them for good",
            keys=slot.keys[:3], repair=Repair.CONVERT,
        )
