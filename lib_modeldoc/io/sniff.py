"""Tell a file's format from its first bytes, never from its name."""

from __future__ import annotations

import os
import struct

from ..strenum import StrEnum

__all__ = ["Format", "sniff_bytes", "MODEL_SUFFIXES", "PICKLE_SUFFIXES"]

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = b"\x80"
# The first pickle of a legacy torch file is the magic number 0x1950a86a20f9469cfc6c.
LEGACY_TORCH_START = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
#: The names a model file goes by (``.sft`` is a short safetensors name some tools use).
MODEL_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES, ".sft")


class Format(StrEnum):
    """What a file's bytes say it is."""

    SAFETENSORS = "safetensors"
    """8-byte little-endian header length, then a JSON header."""
    TORCH_ZIP = "torch_zip"
    """A zip archive, as ``torch.save`` writes since torch 1.6."""
    TORCH_LEGACY = "torch_legacy"
    """A stream of pickles followed by raw storages (torch < 1.6) or a bare pickle."""
    HTML = "html"
    TEXT = "text"
    TAR = "tar"
    UNKNOWN = "unknown"


def sniff_bytes(head: bytes, name: str = "", tail: bytes = b"") -> Format:
    """Classify a file by its first bytes (at least 512 where the file has them).

    ``name`` is used only to keep a damaged safetensors header a safetensors problem, so the
    user hears what is wrong with it rather than "unknown format".
    """
    if head.startswith(ZIP_MAGIC):
        return Format.TORCH_ZIP
    if head.startswith(LEGACY_TORCH_START):
        return Format.TORCH_LEGACY
    # Before the pickle test: a safetensors header 640, 896, 1152 or 1408 bytes long (mod 65536)
    # starts with the bytes of a pickle protocol marker (0x80, 2..5).
    if len(head) >= 9 and head[8:9] == b"{":
        return Format.SAFETENSORS
    if head.startswith(PICKLE_PROTO) and len(head) > 1 and 2 <= head[1] <= 5:
        return Format.TORCH_LEGACY
    if len(head) >= 265 and head[257:262] == b"ustar":
        return Format.TAR
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")):
        return Format.HTML
    suffix = os.path.splitext(name)[1].lower()
    if suffix in PICKLE_SUFFIXES and head[:1] in (b"(", b"c", b"}", b"]") and tail.endswith(b"."):
        return Format.TORCH_LEGACY  # a protocol 0/1 pickle
    if suffix == ".safetensors" and len(head) >= 8:
        n = struct.unpack("<Q", head[:8])[0]
        if n > 2 and head[8:9] in (b" ", b"\t", b"\n", b"\r"):
            return Format.SAFETENSORS
        if _is_text(head):
            return Format.TEXT
        return Format.SAFETENSORS
    if _is_text(head):
        return Format.TEXT
    return Format.UNKNOWN


def _is_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of the sample
            return False
        text = head[: exc.start].decode("utf-8")
    return all(c.isprintable() or c in "\r\n\t" for c in text)
