"""Say when a file is not a model we can work on, or one we only inspect."""

from __future__ import annotations

from collections.abc import Iterator

from ..report.data import Finding, Severity
from ..report.messages import Counted, Listed, Phrase
from .context import CheckContext

# The architectures Model Doctor only inspects (or splits without tables): each has its own message,
# ``finding.arch.inspect_only.<architecture>`` in the catalogue.
INSPECT_ONLY = ("SD3", "Flux", "SD3-transformer", "Flux-transformer", "T5XXL", "T2I-Adapter", "IP-Adapter", "LoRA",
                "Embedding")


def check_identity(ctx: CheckContext) -> Iterator[Finding]:
    ident = ctx.ident
    if ident.architecture == "unknown":
        closest = Listed(tuple(Phrase("finding.arch.candidate", {"name": c.name, "keys": Counted("key", c.matched)})
                               for c in ident.candidates[:3])) if ident.candidates else Phrase("word.none")
        yield Finding.worded("arch.unknown", Severity.WARNING, closest=closest)
    elif ident.architecture in INSPECT_ONLY:
        yield Finding.worded("arch.inspect_only", Severity.INFO, f"finding.arch.inspect_only.{ident.architecture}")
