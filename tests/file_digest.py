"""The digests tests compare files by: one SHA-256 helper for every test folder (conftest modules
cannot be imported, so this is a plain module beside them)."""

from __future__ import annotations

import hashlib
import os
import struct

__all__ = ["sha256_of", "autov3_of"]


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The whole file's SHA-256, read in 1 MiB blocks (an input must come out of a command untouched)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def autov3_of(path: str | os.PathLike[str]) -> str:
    """A safetensors file's data-section SHA-256 (Civitai's AutoV3 is its start)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        f.seek(8 + n)
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
