"""LoRA / LyCORIS networks and textual-inversion embeddings: what they are for and how they were made."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..report.data import Finding, Severity
from ..report.messages import Counted, Listed, Phrase
from .context import CheckContext


def check_network(ctx: CheckContext) -> Iterator[Finding]:
    summary = ctx.adapter
    if summary is None:
        return
    from ..arch.networks import NetworkSummary  # only for a file with an adapter (inspect imports no numpy)

    if isinstance(summary, NetworkSummary):
        yield Finding.worded("lora.summary", Severity.INFO, **_network_words(summary))
        if summary.base == "unknown":
            yield Finding.worded("lora.base_unknown", Severity.INFO)
    else:
        yield Finding.worded("embedding.summary", Severity.INFO, base=summary.base,
                             vectors=Counted("vector", summary.vectors), n=summary.vectors)


def _network_words(summary: Any) -> dict[str, Any]:
    """The parameters of ``finding.lora.summary`` for a :class:`~lib_modeldoc.arch.networks.NetworkSummary`:
    kind, base, size, blocks, and what kohya's metadata says."""
    from ..arch.networks import block_ranges, number_text

    training = summary.training
    facts: list[Phrase] = []
    if training.get("base_model"):
        facts.append(Phrase("finding.lora.trained_on", {"model": training["base_model"]}))
    if training.get("resolution"):
        facts.append(Phrase("finding.lora.resolution", {"resolution": training["resolution"]}))
    if training.get("epochs"):
        facts.append(Phrase("finding.lora.epochs", {"n": training["epochs"]}))
    if training.get("trigger_words"):
        facts.append(Phrase("finding.lora.tags", {"tags": ", ".join(training["trigger_words"][:5])}))
    ranks = sorted(summary.ranks)
    return {
        "network": summary.network, "base": summary.base, "modules": Counted("module", summary.modules),
        "rank": Phrase("finding.lora.rank", {"rank": summary.rank}) if summary.rank is not None
        else Phrase("finding.lora.no_rank"),
        "ranks": Phrase("finding.lora.ranks", {"low": ranks[0], "high": ranks[-1]}) if len(ranks) > 1 else "",
        "alpha": Phrase("finding.lora.alpha", {"alpha": number_text(summary.alpha)}) if summary.alpha is not None else "",
        "parts": block_ranges([b.name for b in summary.blocks]),
        "no_text_encoder": "" if summary.text_encoder else Phrase("finding.lora.no_text_encoder"),
        "training": Phrase("finding.lora.training", {"items": Listed(tuple(facts), "list.semicolon")}) if facts else "",
    }
