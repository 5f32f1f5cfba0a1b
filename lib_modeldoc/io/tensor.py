"""Where a tensor's bytes are, without reading them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..dtypes import DTYPES
from . import limits

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TensorInfo", "shape_problem"]


def shape_problem(shape: tuple[int, ...] | list[int]) -> str | None:
    """What makes a shape of non-negative ints unusable (numpy could not hold it), or ``None``."""
    if len(shape) > limits.MAX_DIMS:
        return f"{len(shape)} dimensions, over the limit of {limits.MAX_DIMS}"
    if any(d > limits.MAX_DIM for d in shape) or math.prod(d for d in shape if d) > limits.MAX_DIM:
        return f"a shape larger than any tensor can be ({list(shape)[:8]})"
    return None


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a model file, described but not loaded.

    Attributes:
        key: the tensor's name in the file's state dict.
        dtype: safetensors dtype code (``F16``, ``BF16``, ``I64`` ...).
        shape: the tensor's shape.
        data_offset: absolute byte offset of element 0 in the file, or ``-1`` when the tensor is
            held in memory (``array``) or stored in a compressed archive member.
        strides: element strides for a non-contiguous view, ``None`` when C-contiguous.
        span: bytes from ``data_offset`` that the view may touch (its storage's remainder).
        array: the value itself, for the rare tensors that live inside the pickle.
    """

    key: str
    dtype: str
    shape: tuple[int, ...]
    data_offset: int
    strides: tuple[int, ...] | None = None
    span: int = -1
    array: np.ndarray | None = None
    member: str | None = None  # compressed zip member holding the storage

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype].itemsize

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor's own elements (what a safetensors file stores)."""
        return self.numel * self.itemsize

    @property
    def is_float(self) -> bool:
        return DTYPES[self.dtype].is_float
