"""Convert tensor bytes between element types, one bounded chunk at a time.

torch does the casts when it is installed (fast, multi-threaded, knows bf16 and fp8); without it
numpy handles the fp16/fp32/fp64/bf16 family, and fp8 asks for torch. Floats are clamped to the
target's finite range so a cast never creates infinities (NaN stays NaN); integers are never
cast to floats.
"""

from __future__ import annotations

import functools

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
    """Casts chunks into one reusable output buffer (no allocation per chunk with torch).

    The returned buffer is valid until the next call.
    """

    def __init__(self) -> None:
        self._out = None

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

    def _torch(self, data: bytes | bytearray | memoryview, src: str, dst: str) -> np.ndarray:
        import torch

        writable = not (isinstance(data, bytes) or (isinstance(data, memoryview) and data.readonly))
        source = torch.frombuffer(data if writable else bytearray(data), dtype=getattr(torch, DTYPES[src].torch))
        target = getattr(torch, DTYPES[dst].torch)
        nbytes = source.numel() * DTYPES[dst].itemsize
        if self._out is None or self._out.numel() < nbytes:
            self._out = torch.empty(max(nbytes, 1), dtype=torch.uint8)
        out = self._out[:nbytes].view(target)
        limit = _finite_max(dst)
        narrowing = _finite_max(src) > limit
        if narrowing and dst.startswith("F8"):
            # fp8 has no infinity (e4m3fn turns overflow into NaN): clamp before casting.
            out.copy_(source.float().clamp_(-limit, limit))
        else:
            out.copy_(source)
            # Overflow is rare: cast first, and clamp (in float32, where fp16's 65504 is exact)
            # only the chunks that overflowed.
            if narrowing and bool(torch.isinf(out).any()):
                out.copy_(source.float().clamp_(-limit, limit))
        return out.view(torch.uint8).numpy()


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
