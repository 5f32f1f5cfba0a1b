"""The one table of tensor element types.

Names are the safetensors codes (``F16``, ``BF16`` ...), the lingua franca of every reader and
writer here. numpy has no bfloat16 or float8, so those are read as raw integers and widened by
:func:`to_float32`; torch names are kept as strings so this module never imports torch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where values are widened, not by the header-only paths
    import numpy as np

__all__ = ["DType", "DTYPES", "TORCH_NAMES", "LEGACY_STORAGES", "dtype", "to_float32"]


@dataclass(frozen=True)
class DType:
    """One element type: its safetensors code, size, value range and the names other libraries use."""

    code: str
    bits: int
    numpy: str | None  # numpy dtype string, None where numpy has no such type
    raw: str  # numpy dtype of the same width used to carry the raw bits
    torch: str  # attribute name in the torch module
    is_float: bool
    label: str  # what the UI shows
    torch_aliases: tuple[str, ...] = ()  # older torch names of the same dtype (``torch.half``)
    storage: str | None = None  # torch's legacy typed storage class (``torch.HalfStorage``), if any
    finite_max: float | None = None  # largest finite value (floats); casts saturate to it
    nonfinite_bits: int | None = None  # floats: magnitudes (sign bit clear) at or above this are NaN or Inf
    has_inf: bool = False  # False for FP8 E4M3FN, whose only special value is NaN

    @property
    def itemsize(self) -> int:
        return max(1, self.bits // 8)


_TABLE = (
    DType("BOOL", 8, "|b1", "|u1", "bool", False, "bool", storage="BoolStorage"),
    DType("U8", 8, "|u1", "|u1", "uint8", False, "uint8", storage="ByteStorage"),
    DType("I8", 8, "|i1", "|i1", "int8", False, "int8", storage="CharStorage"),
    DType("I16", 16, "<i2", "<i2", "int16", False, "int16", ("short",), "ShortStorage"),
    DType("U16", 16, "<u2", "<u2", "uint16", False, "uint16"),
    DType("I32", 32, "<i4", "<i4", "int32", False, "int32", ("int",), "IntStorage"),
    DType("U32", 32, "<u4", "<u4", "uint32", False, "uint32"),
    DType("I64", 64, "<i8", "<i8", "int64", False, "int64", ("long",), "LongStorage"),
    DType("U64", 64, "<u8", "<u8", "uint64", False, "uint64"),
    DType("F16", 16, "<f2", "<u2", "float16", True, "fp16", ("half",), "HalfStorage",
          finite_max=65504.0, nonfinite_bits=0x7C00, has_inf=True),
    DType("BF16", 16, None, "<u2", "bfloat16", True, "bf16", (), "BFloat16Storage",
          finite_max=3.3895313892515355e38, nonfinite_bits=0x7F80, has_inf=True),
    DType("F32", 32, "<f4", "<u4", "float32", True, "fp32", ("float",), "FloatStorage",
          finite_max=3.4028234663852886e38, nonfinite_bits=0x7F80_0000, has_inf=True),
    DType("F64", 64, "<f8", "<u8", "float64", True, "fp64", ("double",), "DoubleStorage",
          finite_max=float("inf"), nonfinite_bits=0x7FF0_0000_0000_0000, has_inf=True),
    # e4m3fn: S.1111.111 is NaN, no infinities
    DType("F8_E4M3", 8, None, "|u1", "float8_e4m3fn", True, "fp8_e4m3fn",
          finite_max=448.0, nonfinite_bits=0x7F, has_inf=False),
    DType("F8_E5M2", 8, None, "|u1", "float8_e5m2", True, "fp8_e5m2",
          finite_max=57344.0, nonfinite_bits=0x7C, has_inf=True),
)

DTYPES: dict[str, DType] = {d.code: d for d in _TABLE}
# ``torch.<name>`` → DType, the older aliases (``torch.half``) included
TORCH_NAMES: dict[str, DType] = {name: d for d in _TABLE for name in (d.torch, *d.torch_aliases)}
# ``torch.<Name>Storage`` → DType, for checkpoints pickled with typed storages
LEGACY_STORAGES: dict[str, DType] = {d.storage: d for d in _TABLE if d.storage}


def dtype(code: str) -> DType:
    """The :class:`DType` for a safetensors code; ``KeyError`` if unknown."""
    return DTYPES[code]


def _fp8_table(exponent_bits: int, mantissa_bits: int, finite_only: bool) -> np.ndarray:
    """All 256 values of an 8-bit float format."""
    import numpy as np

    bias = (1 << (exponent_bits - 1)) - 1
    codes = np.arange(256, dtype=np.uint32)
    sign = np.where(codes & 0x80, -1.0, 1.0)
    exp = (codes >> mantissa_bits) & ((1 << exponent_bits) - 1)
    man = codes & ((1 << mantissa_bits) - 1)
    frac = man / float(1 << mantissa_bits)
    normal = (1.0 + frac) * np.exp2(exp.astype(np.float64) - bias)
    subnormal = frac * 2.0 ** (1 - bias)
    values = sign * np.where(exp == 0, subnormal, normal)
    max_exp = (1 << exponent_bits) - 1
    if finite_only:  # e4m3fn: only S.1111.111 is NaN, no infinities
        values = np.where((exp == max_exp) & (man == (1 << mantissa_bits) - 1), np.nan, values)
    else:  # e5m2 follows IEEE: top exponent is inf / NaN
        values = np.where((exp == max_exp) & (man == 0), sign * np.inf, values)
        values = np.where((exp == max_exp) & (man != 0), np.nan, values)
    return values.astype(np.float32)


_FP8_FORMATS = {"F8_E4M3": (4, 3, True), "F8_E5M2": (5, 2, False)}


@functools.lru_cache(maxsize=None)
def _fp8(code: str) -> np.ndarray:
    """The decoded values of an FP8 format, built on first use."""
    return _fp8_table(*_FP8_FORMATS[code])


def to_float32(raw: np.ndarray, code: str) -> np.ndarray:
    """Widen an array holding elements of ``code`` (raw bits for BF16/F8) to float32."""
    import numpy as np

    flat = np.asarray(raw).reshape(-1)  # 0-dim arrays would turn into numpy scalars below
    if code == "BF16":
        wide = (flat.astype(np.uint32) << np.uint32(16)).view(np.float32)
    elif code in _FP8_FORMATS:
        wide = _fp8(code)[flat]
    else:
        wide = flat.astype(np.float32)
    return wide.reshape(np.shape(raw))
