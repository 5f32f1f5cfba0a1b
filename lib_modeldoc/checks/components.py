"""Missing and incomplete components, and what the WebUI does about them."""

from __future__ import annotations

from collections.abc import Iterator

from ..arch.components import component_name
from ..arch.families import FamilyKind
from ..report.advice import Repair
from ..report.data import Finding, Severity
from ..report.messages import Counted, Language, Listed, Phrase, templates
from .context import CheckContext



def worded_name(component: str) -> Phrase | str:
    """A component's name for people: the catalogue's ``component.<id>`` (worded in each language),
    else the components table's English name."""
    message_id = f"component.{component}"
    return Phrase(message_id) if message_id in templates(Language.EN) else component_name(component)


def check_components(ctx: CheckContext) -> Iterator[Finding]:
    fam = ctx.ident.family
    if fam is None:
        return
    for slot in ctx.ident.slots:
        name = worded_name(slot.component)
        if not slot.present:
            if slot.required and fam.kind == FamilyKind.CHECKPOINT:
                yield Finding.worded("component.missing", Severity.ERROR, name=name, component=slot.component,
                                     repair=Repair.REPLACE)
            continue
        problems: list[Phrase] = []
        if slot.missing:
            problems.append(Phrase("finding.component.missing_keys", {
                "missing": len(slot.missing), "expected": Counted("key", slot.expected), "key": slot.missing[0]}))
        if slot.mismatched:
            key, found, expected = slot.mismatched[0]
            problems.append(Phrase("finding.component.bad_shapes", {
                "keys": Counted("key", len(slot.mismatched)), "key": key, "found": list(found),
                "expected": list(expected)}))
        if problems:
            yield Finding.worded(
                "component.incomplete", Severity.ERROR, name=name, problems=Listed(tuple(problems), "list.semicolon"),
                keys=tuple(slot.missing[:10]) + tuple(k for k, _, _ in slot.mismatched[:10]),
                repair=Repair.REPLACE,
            )
