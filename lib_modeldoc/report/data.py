"""What an inspection produces, as typed objects, and its JSON form (the CLI contract's fields).

A :class:`Report` is a tree of frozen dataclasses; nothing in it is a pre-serialized dict. Its
JSON form is made in one place, :meth:`Report.to_dict`, at the edge (``inspect --json``, the
server's routes). :func:`verdict` is the one judgement of a report that every front end words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Union

from ..strenum import StrEnum
from .advice import Repair
from .messages import Language, text

if TYPE_CHECKING:
    from ..analysis.fingerprint import KnownComponents
    from ..analysis.scan import ScanResult
    from ..analysis.vae_result import VaeTestResult
    from ..arch.identify import Candidate
    from ..arch.networks import EmbeddingSummary, NetworkSummary

    AdapterSummary = Union[NetworkSummary, EmbeddingSummary]

__all__ = [
    "Severity", "Finding", "ComponentSummary", "PositionIds", "TensorCount", "TensorGroup", "TensorGroups",
    "AdapterFit", "Report", "Health", "Verdict", "verdict", "decode_metadata", "FINDING_KEYS_SHOWN",
]

FINDING_KEYS_SHOWN = 20
"""How many of a finding's keys its JSON form lists."""


class Severity(StrEnum):
    """How much a finding matters."""

    INFO = "info"
    """Worth knowing; nothing is wrong (EMA present, v-prediction marker)."""
    WARNING = "warning"
    """Wasteful or risky but loads and works (junk, fp64, float position_ids)."""
    ERROR = "error"
    """Damaged: the model does not behave as intended (shifted position_ids, missing CLIP)."""


@dataclass(frozen=True)
class Finding:
    """One thing a check found. ``id`` is stable and dotted; ``message`` is for people."""

    id: str
    severity: Severity
    message: str
    keys: tuple[str, ...] = ()
    bytes_affected: int = 0
    repair: Repair | None = None  # what fixes it (each front end words it), when something does
    # The catalogue's message and its parameters (report/messages.py): ``message`` is its English;
    # other languages word it from these. Empty for a finding worded in English only. Not in the JSON.
    message_id: str = field(default="", compare=False)
    params: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def worded(cls, id: str, severity: Severity, message_id: str | None = None, *, keys: tuple[str, ...] = (),
               bytes_affected: int = 0, repair: Repair | None = None, **params: Any) -> Finding:
        """A finding whose message is the catalogue's ``message_id`` (default ``finding.<id>``) with ``params``."""
        message_id = message_id or f"finding.{id}"
        return cls(id, severity, text(message_id, Language.EN, **params), keys, bytes_affected, repair,
                   message_id, dict(params))

    def message_in(self, language: Language | str) -> str:
        """The message in ``language`` (English when the finding has no catalogue message)."""
        if not self.message_id or Language(language) is Language.EN:
            return self.message
        return text(self.message_id, language, **self.params)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "severity": self.severity.value, "message": self.message}
        if self.keys:
            out["keys"] = list(self.keys[:FINDING_KEYS_SHOWN])
        if self.bytes_affected:
            out["bytes"] = self.bytes_affected
        if self.repair:
            out["repair"] = Repair(self.repair).value
        return out


@dataclass(frozen=True)
class ComponentSummary:
    """One component slot of the identified family."""

    name: str
    present: bool
    complete: bool
    keys: int
    bytes: int
    table: str = ""
    prefix: str = ""
    dtypes: dict[str, int] = field(default_factory=dict)  # dtype label -> bytes

    @property
    def state(self) -> str:
        """``complete``, ``incomplete`` or ``MISSING``: how both front ends show it."""
        return "complete" if self.complete else ("incomplete" if self.present else "MISSING")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PositionIds:
    """A CLIP ``position_ids`` tensor as the WebUI would read it."""

    key: str
    dtype: str
    wrong: tuple[int, ...]  # indices whose int64 value is not the index
    values: tuple[float, ...] = ()  # the stored values at those indices

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "dtype": self.dtype, "wrong": list(self.wrong),
                "stored": [float(v) for v in self.values]}


@dataclass(frozen=True)
class TensorCount:
    """Some tensors of a file: how many, how many bytes (the EMA copy)."""

    keys: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"keys": self.keys, "bytes": self.bytes}


@dataclass(frozen=True)
class TensorGroup:
    """Tensors under one key pattern (``embedding_manager.*``); ``group``: the named junk group, for junk."""

    pattern: str
    keys: int
    bytes: int
    group: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pattern": self.pattern, "keys": self.keys, "bytes": self.bytes}
        if self.group is not None:
            out["group"] = self.group
        return out


@dataclass(frozen=True)
class TensorGroups(TensorCount):
    """Tensors by key pattern: the junk (dropped by ``convert``), the unknown tensors (kept)."""

    groups: tuple[TensorGroup, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"keys": self.keys, "bytes": self.bytes, "groups": [g.to_dict() for g in self.groups]}


@dataclass(frozen=True)
class AdapterFit:
    """Whether a LoRA or an embedding fits a checkpoint (``inspect --fit``)."""

    checkpoint: str
    architecture: str
    base: str
    fits: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    """Everything ``inspect`` learned about one file."""

    path: str
    format: str
    size_bytes: int
    architecture: str
    label: str
    components: Mapping[str, ComponentSummary]
    junk: TensorGroups
    ema: TensorCount
    clip_position_ids: tuple[PositionIds, ...]
    pruned_size_bytes: int
    metadata: Mapping[str, Any]  # safetensors metadata, JSON values decoded (:func:`decode_metadata`)
    findings: tuple[Finding, ...]
    evidence: tuple[str, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    dtypes: Mapping[str, int] = field(default_factory=dict)  # dtype label -> bytes, whole file
    tensors: int = 0
    extras: Mapping[str, Any] = field(default_factory=dict)  # a pickle's entries besides the weights
    container: str = ""
    unknown: TensorGroups = TensorGroups()  # unclaimed tensors in no junk group: kept
    adapter: AdapterSummary | None = None  # a LoRA's or an embedding's summary (arch/networks.py)
    fit: AdapterFit | None = None  # inspect --fit: whether the adapter fits a checkpoint
    scan: ScanResult | None = None  # inspect --scan: every float tensor's values
    known_components: KnownComponents | None = None  # inspect --components: fingerprints, toolkit metric
    vae_test: VaeTestResult | None = field(default=None, compare=False)  # inspect --vae-test (with its images)

    def has(self, finding_id: str) -> bool:
        return any(f.id == finding_id for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict with the CLI contract's fields (and a few more)."""
        out: dict[str, Any] = {
            "path": self.path,
            "format": self.format,
            "size_bytes": self.size_bytes,
            "architecture": self.architecture,
            "label": self.label,
            "components": {k: v.to_dict() for k, v in self.components.items()},
            "junk": self.junk.to_dict(),
            "unknown": self.unknown.to_dict(),
            "ema": self.ema.to_dict(),
            "clip_position_ids": [p.to_dict() for p in self.clip_position_ids],
            "pruned_size_bytes": self.pruned_size_bytes,
            "metadata": dict(self.metadata),
            "findings": [f.to_dict() for f in self.findings],
            "evidence": list(self.evidence),
            "candidates": [
                {"architecture": c.name, "score": c.score, "matched": c.matched, "missing": c.missing,
                 "mismatched": c.mismatched}
                for c in self.candidates
            ],
            "dtypes": dict(self.dtypes),
            "tensors": self.tensors,
            "extras": dict(self.extras),
            "container": self.container,
        }
        if self.adapter is not None:
            out["adapter"] = self.adapter.to_dict()
            if self.fit is not None:
                out["adapter"]["fit"] = self.fit.to_dict()
        if self.scan is not None:
            out["scan"] = self.scan.to_dict()
        if self.known_components is not None:
            out["known_components"] = self.known_components.to_dict()
        if self.vae_test is not None:
            out["vae_test"] = self.vae_test.to_dict()
        return out


class Health(StrEnum):
    """The verdict on a file, from its worst finding."""

    HEALTHY = "healthy"
    """No error, no warning."""
    PROBLEMS = "problems"
    """Warnings only: it loads and works, with problems."""
    DAMAGED = "damaged"
    """At least one error."""


@dataclass(frozen=True)
class Verdict:
    """The one judgement of a report: its health and the problems (errors and warnings) behind it."""

    health: Health
    problems: tuple[Finding, ...]  # in the report's order
    errors: int

    @property
    def warnings(self) -> int:
        return len(self.problems) - self.errors


def verdict(report: Report) -> Verdict:
    """What the CLI's text and the tab both say first: healthy, works with problems, or damaged."""
    problems = tuple(f for f in report.findings if f.severity in (Severity.ERROR, Severity.WARNING))
    errors = sum(1 for f in problems if f.severity is Severity.ERROR)
    health = Health.DAMAGED if errors else Health.PROBLEMS if problems else Health.HEALTHY
    return Verdict(health, problems, errors)


def decode_metadata(metadata: dict[str, str]) -> dict[str, Any]:
    """safetensors metadata with values that hold JSON (merge recipes, ``ss_*`` dicts) decoded."""
    decoded: dict[str, Any] = {}
    for key, value in metadata.items():
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                decoded[key] = json.loads(text)
                continue
            except ValueError:
                pass
        decoded[key] = value
    return decoded
