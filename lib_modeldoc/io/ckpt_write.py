"""Write a torch zip checkpoint (``.ckpt``) without torch, one tensor at a time.

The pickle is emitted opcode by opcode (protocol 2, as ``torch.save`` writes it) so nothing
needs importing, and the archive holds only the records every loader accepts —
``data.pkl``, ``data/<n>`` and ``version``. AUTOMATIC1111 1.10.1's safe loader refuses the
``.format_version`` / ``.storage_alignment`` records that recent torch adds.
Storages start on 64-byte boundaries, as torch aligns them.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable, Iterable
from typing import BinaryIO

from ..dtypes import DTYPES
from .safetensors_write import OutTensor

__all__ = ["write_torch_zip", "pickle_state_dict", "ARCHIVE_NAME"]

ARCHIVE_NAME = "archive"
ALIGNMENT = 64


class _Emitter:
    """Just enough of pickle protocol 2 to describe a dict of tensors."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")

    def text(self, value: str) -> None:
        raw = value.encode("utf-8")
        self.out += b"X" + struct.pack("<I", len(raw)) + raw

    def integer(self, value: int) -> None:
        if -(2**31) <= value < 2**31:
            self.out += b"J" + struct.pack("<i", value)
        else:
            raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            self.out += b"\x8a" + bytes([len(raw)]) + raw

    def ints(self, values: Iterable[int]) -> None:
        self.out += b"("
        for v in values:
            self.integer(v)
        self.out += b"t"

    def glob(self, module: str, name: str) -> None:
        self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def ordered_dict(self) -> None:
        self.glob("collections", "OrderedDict")
        self.out += b")R"

    def tensor(self, storage_key: str, t: OutTensor) -> None:
        legacy = DTYPES[t.dtype].storage
        rebuild = "_rebuild_tensor_v2" if legacy else "_rebuild_tensor_v3"
        self.glob("torch._utils", rebuild)
        self.out += b"("  # arguments of the rebuild function
        self.out += b"("  # persistent id: ('storage', type, key, location, numel)
        self.text("storage")
        if legacy:
            self.glob("torch", legacy)
        else:  # as torch.save names it: torch.load(weights_only=True) refuses torch.UntypedStorage
            self.glob("torch.storage", "UntypedStorage")
        self.text(storage_key)
        self.text("cpu")
        numel = 1
        for d in t.shape:
            numel *= d
        self.integer(numel if legacy else t.nbytes)
        self.out += b"tQ"
        self.integer(0)
        self.ints(t.shape)
        self.ints(_strides(t.shape))
        self.out += b"\x89"  # requires_grad False
        self.ordered_dict()  # backward hooks
        if not legacy:
            self.glob("torch", DTYPES[t.dtype].torch)
        self.out += b"tR"


def _strides(shape: tuple[int, ...]) -> list[int]:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= max(d, 1)
    return list(reversed(strides))


def pickle_state_dict(tensors: list[OutTensor], extras: dict[str, int] | None = None) -> bytes:
    """``data.pkl`` for ``{"state_dict": {key: tensor}, **extras}``; storage i holds tensor i."""
    e = _Emitter()
    e.out += b"}("
    e.text("state_dict")
    e.ordered_dict()
    e.out += b"("
    for index, t in enumerate(tensors):
        e.text(t.key)
        e.tensor(str(index), t)
    e.out += b"u"
    for key, value in (extras or {}).items():
        e.text(key)
        e.integer(value)
    e.out += b"u."
    return bytes(e.out)


def write_torch_zip(
    f: BinaryIO,
    tensors: list[OutTensor],
    *,
    extras: dict[str, int] | None = None,
    on_chunk: Callable[[OutTensor, bytes], None] | None = None,
) -> None:
    """Write ``tensors`` as a torch zip checkpoint into the seekable binary file ``f``."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        _record(archive, f, f"{ARCHIVE_NAME}/data.pkl", [pickle_state_dict(tensors, extras)])
        for index, t in enumerate(tensors):
            _record(archive, f, f"{ARCHIVE_NAME}/data/{index}", t.chunks(), t.nbytes, t, on_chunk)
        _record(archive, f, f"{ARCHIVE_NAME}/version", [b"3\n"])


def _record(
    archive: zipfile.ZipFile,
    f: BinaryIO,
    name: str,
    chunks: Iterable[bytes],
    size: int | None = None,
    tensor: OutTensor | None = None,
    on_chunk: Callable[[OutTensor, bytes], None] | None = None,
) -> None:
    chunks = list(chunks) if size is None else chunks
    if size is None:
        size = sum(len(c) for c in chunks)  # type: ignore[arg-type]
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = size
    zip64 = size * 1.05 > zipfile.ZIP64_LIMIT
    # Pad the local header with an extra field so the data starts on a 64-byte boundary.
    fixed = 30 + len(name.encode()) + (20 if zip64 else 0) + 4
    pad = -(f.tell() + fixed) % ALIGNMENT
    info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # "FB", as torch writes it
    with archive.open(info, "w", force_zip64=zip64) as out:
        written = 0
        for chunk in chunks:
            out.write(chunk)
            written += len(chunk)
            if on_chunk is not None and tensor is not None:
                on_chunk(tensor, chunk)
    if written != size:
        raise ValueError(f"{name}: produced {written} bytes, expected {size}")
