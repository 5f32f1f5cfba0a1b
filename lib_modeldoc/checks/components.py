"""Missing and incomplete components, and what the WebUI does about them."""

from __future__ import annotations

from collections.abc import Iterator

from ..arch.components import component_name
from ..report.advice import Repair, count
from ..report.data import Finding, Severity
from .context import CheckContext


def check_components(ctx: CheckContext) -> Iterator[Finding]:
    fam = ctx.ident.family
    if fam is None:
        return
    for slot in ctx.ident.slots:
        name = component_name(slot.component)
        if not slot.present:
            if slot.required and fam.kind == "checkpoint":
                yield Finding(
                    "component.missing", Severity.ERROR,
                    f"no {name} ({slot.component}): the WebUI keeps the previous model's {name} "
                    "when it loads this file (or fails when none is loaded)",
                    repair=Repair.REPLACE,
                )
            continue
        problems = []
        if slot.missing:
            problems.append(f"{len(slot.missing)} of {count(slot.expected, 'key')} missing (e.g. {slot.missing[0]})")
        if slot.mismatched:
            key, found, expected = slot.mismatched[0]
            problems.append(
                f"{count(len(slot.mismatched), 'key')} with unexpected shapes (e.g. {key} is {list(found)}, "
                f"expected {list(expected)})"
            )
        if problems:
            yield Finding(
                "component.incomplete", Severity.ERROR, f"{name} is incomplete: " + "; ".join(problems),
                keys=tuple(slot.missing[:10]) + tuple(k for k, _, _ in slot.mismatched[:10]),
                repair=Repair.REPLACE,
            )
