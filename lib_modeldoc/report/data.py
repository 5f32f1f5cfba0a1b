"""The plain data an inspection produces, and its JSON form (the CLI contract's fields)."""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .advice import Repair

__all__ = ["Severity", "Finding", "ComponentSummary", "PositionIds", "Report", "decode_metadata"]


class Severity(str, enum.Enum):
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

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "severity": self.severity.value, "message": self.message}
        if self.keys:
            out["keys"] = list(self.keys[:20])
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


@dataclass
class Report:
    """Everything ``inspect`` learned about one file."""

    path: str
    format: str
    size_bytes: int
    architecture: str
    label: str
    components: dict[str, ComponentSummary]
    junk: dict[str, Any]
    ema: dict[str, int]
    clip_position_ids: list[PositionIds]
    pruned_size_bytes: int
    metadata: dict[str, Any]
    findings: list[Finding]
    evidence: list[str] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    dtypes: dict[str, int] = field(default_factory=dict)  # dtype label -> bytes, whole file
    tensors: int = 0
    extras: dict[str, Any] = field(default_factory=dict)
    container: str = ""
    scan: dict[str, Any] | None = None  # inspect --scan: per component value counts and keys
    known_components: dict[str, Any] | None = None  # inspect --components: fingerprints, toolkit metric
    unknown: dict[str, Any] = field(default_factory=dict)  # unclaimed tensors in no junk group: kept
    adapter: dict[str, Any] | None = None  # a LoRA's or an embedding's summary (arch/networks.py)
    vae_test: dict[str, Any] | None = None  # inspect --vae-test: peaks, first overflow, PSNR (VaeTestResult.to_dict)
    vae_result: Any = field(default=None, repr=False, compare=False)  # the VaeTestResult itself (images), not in JSON

    @property
    def worst(self) -> Severity | None:
        order = [Severity.ERROR, Severity.WARNING, Severity.INFO]
        present = {f.severity for f in self.findings}
        return next((s for s in order if s in present), None)

    def has(self, finding_id: str) -> bool:
        return any(f.id == finding_id for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict with the CLI contract's fields (and a few more)."""
        return {
            "path": self.path,
            "format": self.format,
            "size_bytes": self.size_bytes,
            "architecture": self.architecture,
            "label": self.label,
            "components": {k: v.to_dict() for k, v in self.components.items()},
            "junk": self.junk,
            "unknown": self.unknown,
            "ema": self.ema,
            "clip_position_ids": [p.to_dict() for p in self.clip_position_ids],
            "pruned_size_bytes": self.pruned_size_bytes,
            "metadata": self.metadata,
            "findings": [f.to_dict() for f in self.findings],
            "evidence": self.evidence,
            "candidates": self.candidates,
            "dtypes": self.dtypes,
            "tensors": self.tensors,
            "extras": self.extras,
            "container": self.container,
            **({"adapter": self.adapter} if self.adapter is not None else {}),
            **({"scan": self.scan} if self.scan is not None else {}),
            **({"known_components": self.known_components} if self.known_components is not None else {}),
            **({"vae_test": self.vae_test} if self.vae_test is not None else {}),
        }


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
