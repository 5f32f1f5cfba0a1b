"""Carry out a :class:`~lib_modeldoc.operations.plan.Plan`: stream tensors into a new file, then verify it.

The output is written to a temporary file beside the target and renamed into place only when
complete and checked; a failure or an interrupt leaves no partial file, and sources are only
ever read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..dtypes import DTYPES
from ..errors import ModelReadError, OutputError
from ..io.atomic import atomic_output
from ..io.buffers import BufferRing
from ..io.ckpt_write import write_torch_zip
from ..io.model import ModelFormat, open_model
from ..io.output_rule import OutputKind, check_output
from ..io.safetensors_write import OutTensor, write_safetensors
from ..io.write_behind import WriteBehind
from ..progress import Progress, Tracker
from .cast import Caster
from .plan import Entry, Plan

__all__ = ["WriteResult", "write_plan"]


@dataclass(frozen=True)
class WriteResult:
    """What was written."""

    output: str
    size_bytes: int
    keys: int
    format: str
    verified: bool  # tensor bytes re-read and compared by hash
    plan: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "size_bytes": self.size_bytes, "keys": self.keys,
                "format": self.format, "verified": self.verified, **{k: v for k, v in self.plan.items() if k not in ("size_bytes", "keys", "format")}}


CHUNK_BYTES = 16 << 20  # two read buffers and two cast buffers of this size: memory stays flat


class _Pipeline:
    """Produces each entry's output bytes through two read buffers and two cast buffers used in turn.

    Each chunk handed to :class:`~lib_modeldoc.io.write_behind.WriteBehind` must stay intact
    until the next chunk's write has been queued: two of each, taken in turn, guarantee it.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.buffers = BufferRing(CHUNK_BYTES, count=2)
        self.caster = Caster(outputs=2)

    def chunks(self, entry: Entry) -> Iterator[bytes | memoryview | np.ndarray]:
        if entry.value is not None:
            yield np.ascontiguousarray(entry.value, dtype=np.dtype(DTYPES[entry.dtype].numpy)).tobytes()
            return
        assert entry.source is not None
        model = self.plan.sources[entry.origin]
        for piece in model.read_chunks(entry.source, buffer=self.buffers):
            yield self.caster(piece, entry.source.dtype, entry.dtype)


def write_plan(
    plan: Plan,
    output: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    verify: bool = False,
    progress: Progress | None = None,
    sources: tuple[str, ...] = (),
    protected: tuple[str | None, ...] = (),
) -> WriteResult:
    """Write the plan's output file.

    Args:
        plan: from a plan builder (``plan_convert``, ``plan_export`` ...).
        output: the file to create.
        overwrite: replace an existing file (never a source).
        verify: after writing, re-read every tensor and compare it by SHA-256 with what was written.
        progress: ``progress(done_bytes, total_bytes, message)``, called between chunks; raising
            :class:`~lib_modeldoc.errors.Cancelled` stops the job and writes nothing.
        sources: more files that must never be replaced (a batch's other sources); the plan's
            own sources always are.
        protected: files the program has loaded (never replaced, even with ``overwrite``).

    Returns:
        A :class:`WriteResult`.

    Raises:
        OutputError: the output exists, is a source, the disk is full, or the result does not
            read back as planned. Nothing is left behind.
        Cancelled: ``progress`` raised it (the message names the output: nothing was written).
    """
    path = os.fspath(output)
    own = tuple(s.path for s in plan.sources)
    check_output(path, kind=OutputKind.MODEL, overwrite=overwrite, sources=own + tuple(sources), protected=protected)
    pipeline = _Pipeline(plan)
    tensors = [OutTensor(e.key, e.dtype, e.shape, lambda e=e: pipeline.chunks(e)) for e in plan.entries]
    tracker = Tracker(plan.data_bytes, progress, path)
    digests: dict[str, Any] = {}

    def on_chunk(t: OutTensor, data: bytes) -> None:
        if verify:
            digests.setdefault(t.key, hashlib.sha256()).update(data)
        tracker.advance(len(data), t.key)

    with atomic_output(path, expected_size=plan.output_size, like=own[0] if own else None) as f:
        with WriteBehind(f) as out:  # the next chunk is read and cast while this one is written
            if plan.format == ModelFormat.SAFETENSORS:
                write_safetensors(out, tensors, plan.metadata, on_chunk)
            else:
                write_torch_zip(out, tensors, on_chunk=on_chunk)
        _check_written(path, f.name, plan, {k: h.hexdigest() for k, h in digests.items()} if verify else None)
    return WriteResult(path, os.path.getsize(path), len(plan.entries), plan.format, verify, plan.to_dict())


def _check_written(path: str, temp: str, plan: Plan, digests: dict[str, str] | None) -> None:
    """Re-open the finished temporary file: same keys, dtypes, shapes, size; hashes if asked."""
    try:
        with open_model(temp) as written:
            expected = {e.key: (e.dtype, e.shape) for e in plan.entries}
            found = {k: (t.dtype, t.shape) for k, t in written.items()}
            if found != expected:
                raise OutputError(f"{path}: the written file does not read back as planned; nothing was kept")
            if plan.format == ModelFormat.SAFETENSORS and written.size != plan.output_size:
                raise OutputError(f"{path}: wrote {written.size} bytes, planned {plan.output_size}; nothing was kept")
            for key, digest in (digests or {}).items():
                h = hashlib.sha256()
                for piece in written.read_chunks(key):
                    h.update(piece)
                if h.hexdigest() != digest:
                    raise OutputError(f"{path}: tensor '{key}' differs after writing; nothing was kept")
    except ModelReadError as exc:
        raise OutputError(f"{path}: the written file cannot be read back ({exc}); nothing was kept") from None
