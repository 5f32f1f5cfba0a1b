"""Read every float tensor once and find values that break a model: NaN/Inf, all zeros, huge.

The work is done on the stored bits, never on a float32 copy: an IEEE-style float's magnitude is
its bits without the sign, and those order like unsigned integers. So one unsigned and one
signed integer ``max`` per chunk give the largest magnitude; a value at or past the all-ones
exponent is NaN or ±Inf; a largest magnitude of 0 means all zeros. This works the same for
FP16, BF16, FP32, FP64 and both FP8 formats, needs no temporary array, and only the one final
value per tensor is converted to a float (:func:`~lib_modeldoc.dtypes.to_float32`).

Tensors are read in file order by a small thread pool (numpy's reductions and ``preadv``
release the GIL), each worker through one reusable buffer, so memory stays at a few chunks
whatever the file's size.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arch.layout import BUFFER, EMA, JUNK, Layout
from ..dtypes import DTYPES, DType, to_float32
from ..io.model import ModelFile
from ..io.tensor import TensorInfo
from ..progress import Progress
from ..report.advice import Repair
from ..report.data import Finding, Severity
from ..report.messages import Counted, Phrase
from ..workers import worker_pool

__all__ = ["TensorValues", "PartValues", "ScanResult", "scan_model", "MAGNITUDE_LIMIT", "CHUNK_BYTES"]

MAGNITUDE_LIMIT = 1e4  # trained SD weights stay far below; fp16 overflows at 65504
CHUNK_BYTES = 16 << 20
KEY_LIST_LIMIT = 100  # keys listed per component and kind in the JSON section


@dataclass(frozen=True)
class _Bits:
    """How to read one float format's bits."""

    unsigned: np.dtype[Any]
    signed: np.dtype[Any]
    abs_mask: int  # every bit but the sign
    nonfinite_from: int  # magnitudes at or above this are NaN or Inf
    has_inf: bool  # False for FP8 E4M3FN, whose only special value is NaN

    @property
    def sign(self) -> int:
        return self.abs_mask + 1


def _bits(dtype: DType, nonfinite_from: int) -> _Bits:
    """The bit layout of a float :class:`DType`, from its columns."""
    unsigned = np.dtype(dtype.raw)
    signed = np.dtype(unsigned.str.replace("u", "i"))
    return _Bits(unsigned, signed, (1 << (dtype.bits - 1)) - 1, nonfinite_from, dtype.has_inf)


_FORMATS = {d.code: _bits(d, d.nonfinite_bits) for d in DTYPES.values() if d.nonfinite_bits is not None}


@dataclass(frozen=True)
class TensorValues:
    """What the scan found in one float tensor.

    Attributes:
        key: the tensor's key.
        part: its component (``unet``, ``vae``, ``clip_l`` ...), or ``buffer``/``junk``/``unknown``.
        dtype: safetensors dtype code.
        numel: number of elements.
        nan: NaN elements.
        pos_inf: +Inf elements.
        neg_inf: -Inf elements.
        max_abs: the largest finite magnitude (0.0 when there is none).
    """

    key: str
    part: str
    dtype: str
    numel: int
    nan: int = 0
    pos_inf: int = 0
    neg_inf: int = 0
    max_abs: float = 0.0

    @property
    def nonfinite(self) -> int:
        return self.nan + self.pos_inf + self.neg_inf

    @property
    def all_zero(self) -> bool:
        """Every element is ±0 (never true for an empty tensor such as the ``v_pred`` marker)."""
        return self.numel > 0 and not self.nonfinite and self.max_abs == 0.0

    @property
    def huge(self) -> bool:
        return self.max_abs > MAGNITUDE_LIMIT

    def describe(self) -> str:
        """``key (3 NaN, 1 +Inf)``."""
        counts = [f"{n} {name}" for n, name in ((self.nan, "NaN"), (self.pos_inf, "+Inf"), (self.neg_inf, "-Inf")) if n]
        return f"{self.key} ({', '.join(counts)})"


@dataclass(frozen=True)
class PartValues:
    """The scan of one component: its float tensors, and those of each kind of bad value
    (at most :data:`KEY_LIST_LIMIT` keys listed per kind)."""

    tensors: int
    bytes: int
    max_abs: float
    nonfinite: int
    zero: int
    magnitude: int
    nonfinite_keys: tuple[str, ...]
    zero_keys: tuple[str, ...]
    magnitude_keys: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {name: list(value) if isinstance(value, tuple) else value for name, value in vars(self).items()}


@dataclass(frozen=True)
class ScanResult:
    """Every float tensor's values summarised, and what is wrong with them.

    Attributes:
        tensors: one entry per float tensor, in file order.
        skipped: tensors not scanned (integer and bool tensors, which cannot hold NaN).
        bytes_read: tensor bytes read.
        seconds: wall time of the scan.
    """

    tensors: tuple[TensorValues, ...]
    skipped: int
    bytes_read: int
    seconds: float

    def nonfinite(self) -> list[TensorValues]:
        """Tensors holding NaN or ±Inf (buffers included)."""
        return [t for t in self.tensors if t.nonfinite]

    def zero(self) -> list[TensorValues]:
        """Non-empty tensors of zeros, outside the known buffers (``logvar`` is zeros by design)."""
        return [t for t in self.tensors if t.all_zero and t.part != BUFFER]

    def huge(self) -> list[TensorValues]:
        """Weights with a magnitude past :data:`MAGNITUDE_LIMIT` (buffers excluded)."""
        return [t for t in self.tensors if t.huge and t.part != BUFFER]

    def findings(self) -> list[Finding]:
        """``values.nonfinite`` (an error, a warning when only junk/EMA tensors are hit),
        ``values.zero`` and ``values.magnitude`` (warnings)."""
        out = []
        bad = self.nonfinite()
        if bad:
            loaded = any(t.part not in (JUNK, EMA) for t in bad)
            out.append(Finding.worded(
                "values.nonfinite", Severity.ERROR if loaded else Severity.WARNING,
                "finding.values.nonfinite" if loaded else "finding.values.nonfinite_unloaded",
                keys=tuple(t.key for t in bad), repair=Repair.REPLACE if loaded else Repair.CONVERT,
                **_count(bad), names=_names(bad, TensorValues.describe),
            ))
        zero = self.zero()
        if zero:
            out.append(Finding.worded("values.zero", Severity.WARNING, keys=tuple(t.key for t in zero),
                                      **_count(zero), names=_names(zero, lambda t: t.key)))
        huge = self.huge()
        if huge:
            out.append(Finding.worded("values.magnitude", Severity.WARNING, keys=tuple(t.key for t in huge),
                                      limit=f"{MAGNITUDE_LIMIT:g}", **_count(huge),
                                      names=_names(huge, lambda t: f"{t.key} (max |x| {t.max_abs:.4g})")))
        return out

    def parts(self) -> dict[str, PartValues]:
        """Per component (in file order of first appearance): counts, largest magnitude, offending keys."""
        kinds = {"nonfinite": {t.key for t in self.nonfinite()}, "zero": {t.key for t in self.zero()},
                 "magnitude": {t.key for t in self.huge()}}
        tally: dict[str, dict[str, Any]] = {}
        for t in self.tensors:
            entry = tally.setdefault(t.part, {
                "tensors": 0, "bytes": 0, "max_abs": 0.0,
                **{kind: 0 for kind in kinds}, **{f"{kind}_keys": [] for kind in kinds},
            })
            entry["tensors"] += 1
            entry["bytes"] += t.numel * DTYPES[t.dtype].itemsize
            entry["max_abs"] = max(entry["max_abs"], t.max_abs)
            for kind, members in kinds.items():
                if t.key in members:
                    entry[kind] += 1
                    if len(entry[f"{kind}_keys"]) < KEY_LIST_LIMIT:
                        entry[f"{kind}_keys"].append(t.key)
        return {part: PartValues(**{k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()})
                for part, entry in tally.items()}

    def to_dict(self) -> dict[str, Any]:
        """The ``scan`` section of ``inspect --json``: per component counts and offending keys."""
        components = {part: values.to_dict() for part, values in self.parts().items()}
        return {
            "tensors": len(self.tensors), "skipped": self.skipped, "bytes": self.bytes_read,
            "seconds": round(self.seconds, 3), "components": components,
        }


def scan_model(
    model: ModelFile, layout: Layout, *, progress: Progress | None = None, workers: int | None = None
) -> ScanResult:
    """Read every float tensor of ``model`` once and summarise its values.

    Memory stays bounded (one :data:`CHUNK_BYTES` buffer per worker) except for the rare pickle
    tensors that cannot be read in pieces (non-contiguous views, compressed archive members).

    Args:
        model: an open model.
        layout: which component each key belongs to (:func:`~lib_modeldoc.arch.layout.layout_of`).
        progress: called as ``progress(done_bytes, total_bytes, message)`` from the calling thread.
        workers: reader threads; default ``min(4, os.cpu_count())``.

    Returns:
        A :class:`ScanResult`; its :meth:`~ScanResult.findings` are what ``inspect --scan`` adds.

    Raises:
        ModelReadError: the file turned out to be truncated.

    Example:
        >>> result = scan_model(model, layout_of(list(model), identify(shapes)))
        >>> [f.id for f in result.findings()]
    """
    start = time.perf_counter()
    floats = sorted((info for info in model.values() if info.dtype in _FORMATS), key=_file_order)
    total = sum(info.nbytes for info in floats)
    local = threading.local()

    def scan_one(info: TensorInfo) -> TensorValues:
        buffer = getattr(local, "buffer", None)
        if buffer is None:
            buffer = local.buffer = bytearray(CHUNK_BYTES)
        return _scan_tensor(model, info, layout.parts.get(info.key, "unknown"), buffer)

    results: list[TensorValues] = []
    done = 0
    count = workers if workers is not None else min(4, os.cpu_count() or 1)
    with worker_pool(count, "modeldoc-scan") as pool:
        for info, values in zip(floats, _ordered(pool, scan_one, floats, count)):
            results.append(values)
            done += info.nbytes
            if progress is not None:
                progress(done, total, "scanning values")
    return ScanResult(tuple(results), len(model) - len(floats), total, time.perf_counter() - start)


def _ordered(pool: ThreadPoolExecutor, fn: Callable[[TensorInfo], TensorValues], items: list[TensorInfo],
             workers: int) -> Iterator[TensorValues]:
    """``pool.map`` that keeps only a few tasks queued, so the reads stay near file order."""
    queued: deque[Future[TensorValues]] = deque()
    upcoming = iter(items)
    for info in itertools.islice(upcoming, max(2, 4 * workers)):
        queued.append(pool.submit(fn, info))
    while queued:
        head = queued.popleft()
        following = next(upcoming, None)
        if following is not None:
            queued.append(pool.submit(fn, following))
        yield head.result()


def _file_order(info: TensorInfo) -> tuple[int, str]:
    return (info.data_offset, info.key)


def _scan_tensor(model: ModelFile, info: TensorInfo, part: str, buffer: bytearray) -> TensorValues:
    if not info.numel:
        return TensorValues(info.key, part, info.dtype, 0)
    fmt = _FORMATS[info.dtype]
    top = nan = pos_inf = neg_inf = 0
    chunk_bytes = len(buffer)
    for chunk in model.read_chunks(info, chunk_bytes, buffer=buffer):
        bits = np.frombuffer(chunk, dtype=fmt.unsigned)
        # Sign-magnitude: the unsigned max is the most negative value (or the top positive one
        # when nothing is negative), the signed max the top non-negative one.
        magnitude = max(int(bits.max()) & fmt.abs_mask, max(int(bits.view(fmt.signed).max()), 0))
        if magnitude >= fmt.nonfinite_from:  # rare: count the specials, take the finite maximum
            magnitude, n, p, m = _specials(bits, fmt)
            nan, pos_inf, neg_inf = nan + n, pos_inf + p, neg_inf + m
        top = max(top, magnitude)
    return TensorValues(info.key, part, info.dtype, info.numel, nan, pos_inf, neg_inf, _to_float(top, info.dtype))


def _specials(bits: np.ndarray, fmt: _Bits) -> tuple[int, int, int, int]:
    """(largest finite magnitude, NaN, +Inf, -Inf) of a chunk holding NaN or Inf."""
    magnitude = bits & bits.dtype.type(fmt.abs_mask)
    finite = magnitude < fmt.nonfinite_from
    special = int(finite.size - np.count_nonzero(finite))
    pos_inf = neg_inf = 0
    if fmt.has_inf:
        pos_inf = int(np.count_nonzero(bits == bits.dtype.type(fmt.nonfinite_from)))
        neg_inf = int(np.count_nonzero(bits == bits.dtype.type(fmt.nonfinite_from | fmt.sign)))
    finite_part = magnitude[finite]
    top = int(finite_part.max()) if finite_part.size else 0
    return top, special - pos_inf - neg_inf, pos_inf, neg_inf


def _to_float(bits: int, code: str) -> float:
    raw = np.array([bits], dtype=_FORMATS[code].unsigned)
    numpy_type = DTYPES[code].numpy
    return float((raw.view(np.dtype(numpy_type)) if numpy_type else to_float32(raw, code))[0])


def _count(tensors: list[TensorValues]) -> dict[str, Any]:
    """The ``tensors`` and ``parts`` parameters of a finding: ``3 tensors``, ``unet 2, vae 1``."""
    parts: dict[str, int] = {}
    for t in tensors:
        parts[t.part] = parts.get(t.part, 0) + 1
    return {"tensors": Counted("tensor", len(tensors)), "parts": ", ".join(f"{p} {n}" for p, n in parts.items())}


def _names(tensors: list[TensorValues], show: Callable[[TensorValues], str], limit: int = 5) -> Any:
    """The first ``limit`` tensors as ``show`` names them, then how many more (worded per language)."""
    shown = ", ".join(show(t) for t in tensors[:limit])
    return Phrase("finding.values.names", {"shown": shown, "more": len(tensors) - limit}) if len(tensors) > limit else shown
