"""The WebUI's SHA-256 cache: reuse a hash it already computed, and give it the ones we compute.

AUTOMATIC1111 and Forge remember each checkpoint's SHA-256 under the title ``checkpoint/NAME``
(NAME: the path below the checkpoint folder, subfolders and extension included) with the file's
mtime, and trust an entry only while the file's mtime is not newer (``shared/reference/formats.md``
section 3). Up to 1.8 the cache is ``cache.json`` (:class:`JsonHashCache` reads and writes that
format); from 1.9 it is a diskcache database that the WebUI adapter reaches through the WebUI's own
``modules.hashes``. Either way an entry is never used once the file has changed since it was made.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import OutputError
from ..io.atomic import atomic_output
from ..io.output_rule import OutputKind, check_output

__all__ = ["HashCache", "JsonHashCache", "checkpoint_title", "is_fresh"]

HASHES_SECTION = "hashes"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class HashCache(Protocol):
    """Where full-file SHA-256 values are remembered between runs."""

    def lookup(self, path: str) -> str | None:
        """The cached SHA-256 of ``path`` (64 lower-case hex) if it is still valid, else ``None``."""

    def store(self, path: str, sha256: str) -> None:
        """Remember ``sha256`` for ``path`` as it is now (its current mtime)."""


def checkpoint_title(path: str, checkpoint_dir: str) -> str | None:
    """The WebUI's cache title for a checkpoint, or ``None`` when it is not under ``checkpoint_dir``."""
    try:
        name = os.path.relpath(os.path.abspath(path), os.path.abspath(checkpoint_dir))
    except ValueError:  # another drive on Windows
        return None
    if name == os.pardir or name.startswith(os.pardir + os.sep):
        return None
    return f"checkpoint/{name}"


def is_fresh(entry: Any, path: str) -> str | None:
    """The SHA-256 an entry holds when it is still valid for ``path`` (the WebUI's rule), else ``None``."""
    if not isinstance(entry, dict):
        return None
    sha256, mtime = entry.get("sha256"), entry.get("mtime")
    if not isinstance(sha256, str) or not _SHA256.match(sha256) or not isinstance(mtime, (int, float)):
        return None
    try:
        on_disk = os.path.getmtime(path)
    except OSError:
        return None
    return sha256 if on_disk <= mtime else None


class JsonHashCache:
    """AUTOMATIC1111's ``cache.json`` (its ``hashes`` section), read and written in its own format.

    Args:
        cache_file: the ``cache.json`` path (``SD_WEBUI_CACHE_FILE`` in the WebUI).
        title_of: maps a model path to its title (e.g. :func:`checkpoint_title` bound to the
            checkpoint folder); a path without a title is neither looked up nor stored.

    Writes go to a temporary file renamed over ``cache_file`` (the WebUI does the same), other
    sections and entries are kept, and a cache file that cannot be parsed is never overwritten.
    """

    def __init__(self, cache_file: str, title_of: Callable[[str], str | None]) -> None:
        self.cache_file = cache_file
        self.title_of = title_of
        self._lock = threading.Lock()

    def lookup(self, path: str) -> str | None:
        title = self.title_of(path)
        if title is None:
            return None
        data = self._read()
        section = data.get(HASHES_SECTION) if isinstance(data, dict) else None
        return is_fresh(section.get(title), path) if isinstance(section, dict) else None

    def store(self, path: str, sha256: str) -> None:
        title = self.title_of(path)
        if title is None or not _SHA256.match(sha256):
            return
        try:
            mtime = os.path.getmtime(path)
        except OSError:
            return
        with self._lock:
            data = self._read(missing_ok=True)
            if data is None:  # unreadable: leave the WebUI's file alone
                return
            section = data.setdefault(HASHES_SECTION, {})
            if not isinstance(section, dict):
                return
            section[title] = {"mtime": mtime, "sha256": sha256}
            self._write(data)

    def _read(self, *, missing_ok: bool = True) -> dict[str, Any] | None:
        try:
            with open(self.cache_file, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {} if missing_ok else None
        except (OSError, ValueError, RecursionError):
            return None
        return data if isinstance(data, dict) else None

    def _write(self, data: dict[str, Any]) -> None:
        """Through the one output rule (never onto a model) and a temporary file renamed into place."""
        try:
            check_output(self.cache_file, kind=OutputKind.REPORT)
            with atomic_output(self.cache_file) as f:
                f.write(json.dumps(data, indent=4, ensure_ascii=False).encode("utf-8"))
        except OutputError:
            return  # a cache is an optimisation: failing to write it is not an error
