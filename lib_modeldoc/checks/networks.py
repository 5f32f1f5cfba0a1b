"""LoRA / LyCORIS networks and textual-inversion embeddings: what they are for and how they were made."""

from __future__ import annotations

from collections.abc import Iterator

from ..report.data import Finding, Severity
from .context import CheckContext


def check_network(ctx: CheckContext) -> Iterator[Finding]:
    summary = ctx.adapter
    if summary is None:
        return
    if ctx.ident.architecture == "LoRA":
        training = summary.training
        extra = []
        if training.get("base_model"):
            extra.append(f"trained on {training['base_model']}")
        if training.get("resolution"):
            extra.append(f"at {training['resolution']}")
        if training.get("epochs"):
            extra.append(f"{training['epochs']} epochs")
        if training.get("trigger_words"):
            extra.append("most frequent tags: " + ", ".join(training["trigger_words"][:5]))
        yield Finding("lora.summary", Severity.INFO, summary.describe() + (f"; {'; '.join(extra)}" if extra else ""))
        if summary.base == "unknown":
            yield Finding.worded("lora.base_unknown", Severity.INFO)
    else:
        yield Finding("embedding.summary", Severity.INFO, summary.describe())
