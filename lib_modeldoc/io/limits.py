"""The documented ceilings on what a model file may ask of the reader.

Every reader checks these before it allocates, so a hostile or damaged file costs bounded time
and memory and ends in one :class:`~lib_modeldoc.errors.LimitExceededError` line. Each is far
above what real checkpoints need (in brackets); README.md, section "Limits", states them for users.
"""

from __future__ import annotations

__all__ = [
    "MAX_HEADER_BYTES", "MAX_HEADER_CONTAINERS", "MAX_HEADER_STRINGS", "MAX_HEADER_NUMBERS", "MAX_TENSORS", "MAX_DIMS", "MAX_DIM",
    "MAX_PICKLE_BYTES", "MAX_PICKLE_OPS", "MAX_PICKLE_OBJECTS", "MAX_NESTING", "MAX_INT_BYTES",
    "MAX_SMALL_RECORD_BYTES", "MAX_INFLATED_BYTES", "MAX_ZIP_ENTRIES",
]

MAX_HEADER_BYTES = 100_000_000
"""A safetensors header, in bytes: the reference implementation's own limit [SDXL: ~0.2 MB]."""

MAX_TENSORS = 50_000
"""Tensors (and storages) in one file [SDXL with EMA and optimizer state: ~10,000]."""

MAX_HEADER_CONTAINERS = 3 * MAX_TENSORS + 100_000
"""``[`` and ``{`` bytes in a safetensors header, counted before it is parsed: 3 per tensor and
room for metadata that embeds JSON (kohya's tag frequencies, bucket lists)."""

MAX_HEADER_STRINGS = 5 * MAX_TENSORS + 500_000
"""Strings in a safetensors header (an upper bound from its quote bytes): 5 per tensor and room
for metadata [kohya LoRA metadata: ~100]."""

MAX_HEADER_NUMBERS = 8 * MAX_TENSORS + 100_000
"""Numbers in a safetensors header, counted while it is parsed: shape and offsets [~6 per tensor]."""

MAX_DIMS = 32
"""Dimensions of one tensor: what numpy 1.x can represent [models: at most 5]."""

MAX_DIM = 1 << 48
"""One dimension, and the product of the non-empty ones [largest real tensor: ~2**30 elements]."""

MAX_PICKLE_BYTES = 64 << 20
"""A checkpoint's pickle (``data.pkl`` or the stream of a legacy file), inflated [SDXL: ~0.3 MB]."""

MAX_PICKLE_OPS = 4_000_000
"""Opcodes one pickle may execute [~25 per tensor: 2,500 tensors run ~60,000]."""

MAX_PICKLE_OBJECTS = 2_000_000
"""Objects and memo entries one pickle may create, counting the elements a call copies, and
the size of the unpickled object once shared parts are counted at every place they appear."""

MAX_NESTING = 64
"""Containers nested in containers [a Lightning checkpoint: ~6]."""

MAX_INT_BYTES = 32
"""Bytes of one pickled integer (256 bits) [the legacy magic number: 10]."""

MAX_SMALL_RECORD_BYTES = 64
"""Small zip records read whole (``byteorder``) ["little": 6 bytes]."""

MAX_INFLATED_BYTES = 256 << 20
"""Compressed tensor storages, in total, inflated once and kept while the file is open (torch
never compresses storages; this is for re-zipped archives)."""

MAX_ZIP_ENTRIES = MAX_TENSORS + 64
"""Records in a torch zip archive: one per storage, and a few more."""
