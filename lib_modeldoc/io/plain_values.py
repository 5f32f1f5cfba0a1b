"""A small tensor's values as Python numbers, read from its bytes without numpy.

The header-only jobs (``inspect`` of a safetensors file) read just the CLIP position_ids, 77
numbers; decoding them with :mod:`struct` spares those jobs numpy's import (~0.1 s of CPU).
"""

from __future__ import annotations

import math
import struct

from .model import ModelFile
from .tensor import TensorInfo

__all__ = ["read_plain", "wrong_positions", "PLAIN_LIMIT"]

# struct codes (little-endian, standard sizes) for the types struct decodes exactly.
_STRUCT_CODES = {
    "BOOL": "?", "U8": "B", "I8": "b", "I16": "h", "U16": "H", "I32": "i", "U32": "I", "I64": "q", "U64": "Q",
    "F16": "e", "F32": "f", "F64": "d",
}
PLAIN_LIMIT = 1 << 16  # elements; a larger tensor is read as an array (a Python list costs ~30x the bytes)


def read_plain(model: ModelFile, info: TensorInfo) -> list[float] | list[int]:
    """The tensor's values, flattened in C order, as Python ints or floats (BF16/FP8 widened as :meth:`ModelFile.read` does)."""
    if info.numel == 0:
        return []
    code = _STRUCT_CODES.get(info.dtype)
    if code is None or info.numel > PLAIN_LIMIT:
        return model.read(info).reshape(-1).tolist()
    return list(struct.unpack(f"<{info.numel}{code}", model.read_bytes(info)))


def wrong_positions(values: list[float] | list[int]) -> tuple[int, ...]:
    """Indices ``i`` whose value, read as the WebUI reads position_ids (``.to(torch.int64)``: floats
    truncated toward zero, NaN as -1), is not ``i``; infinities are always wrong."""
    return tuple(i for i, v in enumerate(values) if not (math.isfinite(v) and math.trunc(v) == i))
