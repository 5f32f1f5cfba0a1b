"""Convert tensor bytes between element types, one bounded chunk at a time.

torch does the casts when it is installed (fast, multi-threaded, knows bf16 and fp8); without it
numpy handles the fp16/fp32/fp64/bf16 family, and fp8 asks for torch. Floats are clamped to the
target's finite range so a cast never creates infinities (NaN stays NaN); integers are never
cast to floats.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..dtypes import DTYPES, to_float32
from ..errors import PlanError

__all__ = ["Caster", "cast_bytes", "torch_available"]


@functools.lru_cache(maxsize=1)
def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


class Caster:
    """Casts chunks into reusable output buffers (no allocation per chunk with torch).

    With ``outputs`` buffers used in turn, a result stays valid until ``outputs`` more calls
    have been made (one by default: until the next call). The writer keeps two, so one chunk
    can be written while the next is cast.
    """

    def __init__(self, outputs: int = 1) -> None:
        self._outs: list[Any] = [None] * outputs
        self._turn = 0

    def __call__(self, data: bytes | bytearray | memoryview, src: str, dst: str) -> bytes | memoryview | np.ndarray:
        if src == dst:
            return data
        if not (DTYPES[src].is_float and DTYPES[dst].is_float):
            raise PlanError(f"cannot cast {src} to {dst}: only float tensors are cast")
        if not len(data):
            return b""  # an empty tensor (torch.frombuffer refuses empty buffers)
        if torch_available():
            return self._torch(data, src, dst)
        return _cast_numpy(data, src, dst)

    def _output(self, nbytes: int) -> Any:
        import torch

        turn, self._turn = self._turn, (self._turn + 1) % len(self._outs)
        out = self._outs[turn]
        if out is None or out.numel() < nbytes:
            out = self._outs[turn] = torch.empty(max(nbytes, 1), dtype=torch.uint8)
        return out[:nbytes]

    def _torch(self, data: bytes | bytearray | memoryview, src: str, dst: str) -> np.ndarray:
        import torch

        writable = not (isinstance(data, bytes) or (isinstance(data, memoryview) and data.readonly))
        source = torch.frombuffer(data if writable else bytearray(data), dtype=getattr(torch, DTYPES[src].torch))
        target = getattr(torch, DTYPES[dst].torch)
        out = self._output(source.numel() * DTYPES[dst].itemsize).view(target)
        limit = _finite_max(dst)
        if _finite_max(src) > limit and _may_overflow(source, limit):
            # Saturate in float32 (where fp16's 65504 and fp8's 448 are exact); fp8 has no
            # infinity at all (e4m3fn turns overflow into NaN), so it cannot be cast first.
            out.copy_(source.float().clamp_(-limit, limit))
        else:
            out.copy_(source)
        return out.view(torch.uint8).numpy()


def _may_overflow(source: Any, limit: float) -> bool:
    """Whether any value of ``source`` lies outside ``±limit`` (an infinity counts; NaN does not).

    One min/max pass over the source is several times cheaper than casting and then looking
    for infinities. A NaN hides the minimum and maximum, so then the values are asked directly.
    """
    import torch

    if source.element_size() == 1:
        source = source.float()  # torch has no min/max of fp8: widened, one chunk at a time
    low, high = torch.aminmax(source)
    low, high = float(low), float(high)
    if low != low or high != high:  # NaN somewhere
        return bool((source.abs() > limit).any())
    return low < -limit or high > limit


def cast_bytes(data: bytes | memoryview, src: str, dst: str) -> bytes:
    """Cast little-endian elements of ``src`` to ``dst`` (safetensors codes); a new bytes object."""
    return bytes(Caster()(data, src, dst))


def _finite_max(code: str) -> float:
    """The largest finite value of a float type: casts saturate to it instead of overflowing."""
    limit = DTYPES[code].finite_max
    if limit is None:
        raise PlanError(f"{code} is not a float type")
    return limit


def _cast_numpy(data: bytes | bytearray | memoryview, src: str, dst: str) -> bytes:
    raw = np.frombuffer(data, dtype=np.dtype(DTYPES[src].numpy or DTYPES[src].raw))
    values = to_float32(raw, src) if DTYPES[src].numpy is None else raw
    limit = _finite_max(dst)
    if dst == "BF16":
        wide = np.clip(values.astype(np.float32), -limit, limit)
        bits = wide.view(np.uint32)
        # round to nearest even on the 16 dropped bits; NaN stays NaN
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
        return np.where(np.isnan(wide), np.uint16(0x7FC0), rounded).tobytes()
    if dst in ("F8_E4M3", "F8_E5M2"):
        raise PlanError("casting to fp8 needs torch (pip install torch)")
    if np.isfinite(limit):
        values = np.clip(values, -limit, limit)
    return values.astype(np.dtype(DTYPES[dst].numpy)).tobytes()
