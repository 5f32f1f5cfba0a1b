"""Space the WebUI never uses: junk tensors, the EMA copy, pickled training state."""

from __future__ import annotations

from collections.abc import Iterator

from ..report.advice import Repair
from ..report.advice import count as amount
from ..report.data import Finding, Severity
from ..report.units import human_bytes
from .context import CheckContext


def check_junk(ctx: CheckContext) -> Iterator[Finding]:
    keys = ctx.junk_keys
    total = ctx.nbytes(keys) + ctx.stray_bytes
    count = len(keys) + len(ctx.model.stray_tensors)
    if not count:
        return
    names = ctx.junk_group_names
    groups = ", ".join(
        f"{g}{'' if names.get(g, g) in g else ' = ' + names[g]} ({amount(n, 'tensor')}, {human_bytes(b)})"
        for g, n, b in ctx.junk_groups[:4]
    )
    more = f" and {len(ctx.junk_groups) - 4} more groups" if len(ctx.junk_groups) > 4 else ""
    yield Finding(
        "junk", Severity.WARNING,
        f"{human_bytes(total)} in {amount(count, 'tensor')} the WebUI never loads: {groups}{more}",
        keys=tuple(keys[:20]), bytes_affected=total, repair=Repair.CONVERT,
    )


def check_unknown(ctx: CheckContext) -> Iterator[Finding]:
    keys = ctx.unknown_keys
    if not keys or ctx.ident.family is None:
        return  # an unidentified model: arch.unknown already says nothing is called junk
    size = ctx.nbytes(keys)
    groups = ", ".join(f"{g} ({amount(n, 'tensor')}, {human_bytes(b)})" for g, n, b in ctx.unknown_groups[:4])
    more = f" and {len(ctx.unknown_groups) - 4} more groups" if len(ctx.unknown_groups) > 4 else ""
    yield Finding(
        "unknown.kept", Severity.INFO,
        f"{human_bytes(size)} in {amount(len(keys), 'tensor')} no {ctx.ident.label} table describes: {groups}{more}; "
        "kept, since a WebUI or extension may load them",
        keys=tuple(keys[:20]), bytes_affected=size, repair=Repair.DROP_UNKNOWN,
    )


def check_ema(ctx: CheckContext) -> Iterator[Finding]:
    keys = ctx.ema_keys
    slot = ctx.ident.slot("ema_unet")
    if keys and slot is not None and slot.present:  # bookkeeping alone (decay, num_updates) is not worth a line
        size = ctx.nbytes(keys)
        yield Finding(
            "ema", Severity.INFO,
            f"holds an EMA copy of the UNet ({amount(len(keys), 'tensor')}, {human_bytes(size)}); the WebUI "
            "does not use it",
            bytes_affected=size, repair=Repair.PRUNE_EMA,
        )


def check_pickle(ctx: CheckContext) -> Iterator[Finding]:
    if ctx.model.format != "ckpt":
        return
    training = sorted(k.split(".", 1)[0] for k in ctx.model.extras)
    extra = f"; it also carries training state ({', '.join(dict.fromkeys(training))})" if training else ""
    yield Finding(
        "format.pickle", Severity.INFO,
        "a pickle checkpoint: safe to read here (nothing in it was run), but .safetensors loads "
        f"faster and is safe for everyone{extra}",
        repair=Repair.CONVERT,
    )
