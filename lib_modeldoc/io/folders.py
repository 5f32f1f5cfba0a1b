"""Walk a model folder: links followed, every real folder entered once, so link loops end.

``os.walk(followlinks=True)`` enters ``models/loop -> ..`` again and again (two such links make
the walk exponential), which kept ``serve`` from starting and the tab from building. Here each
folder is known by its (device, inode) after links are resolved, and one reached a second time,
through a loop or a second link, is not entered again.

Asked with ``diffusers=True``, a diffusers folder (a pipeline's ``model_index.json``, or a
ControlNet's ``config.json``) is one model: it is listed among its parent's entries, like a file,
and not entered, so its component files are never taken for loose models.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Iterator

from .paths import native_path
from .sniff import MODEL_SUFFIXES

__all__ = ["walk_folders", "walk_files", "model_files", "is_regular", "is_model_entry"]

Entry = tuple[str, "os.stat_result | None"]


def is_regular(st: os.stat_result | None) -> bool:
    """Whether a stat result is a regular file (not a FIFO, device, socket or folder)."""
    return st is not None and stat.S_ISREG(st.st_mode)


def _is_diffusers_folder(path: str) -> bool:
    from .diffusers_folder import is_diffusers_folder  # imported late: it needs the model readers

    return is_diffusers_folder(native_path(path))


def is_model_entry(path: str, st: os.stat_result | None) -> bool:
    """Whether a walked entry is a model: a regular file with a model suffix, or (as ``walk_folders``
    lists it with ``diffusers=True``) a diffusers folder."""
    if st is not None and stat.S_ISDIR(st.st_mode):
        return True
    return is_regular(st) and path.lower().endswith(MODEL_SUFFIXES)


def walk_folders(root: str, *, skip_dirs: Collection[str] = (),
                 diffusers: bool = False) -> Iterator[tuple[str, list[Entry]]]:
    """Every folder under ``root`` (``root`` first), each once, with its non-folder entries.

    Yields ``(folder, [(path, stat), ...])``. Names starting with a dot are skipped; entries are
    in sorted order, subfolders walked depth first in sorted order. ``stat`` follows links and is
    ``None`` for a dangling link or an entry that cannot be read. ``skip_dirs``: real paths of
    folders not to enter. Folders that cannot be listed are yielded with no entries.
    ``diffusers``: a diffusers folder is an entry (its stat a folder's), not entered; ``root``
    itself, when it is one, is yielded as ``(root, [(root, stat)])``.
    """
    skip = {os.path.realpath(d) for d in skip_dirs}
    try:
        top = os.stat(native_path(root))
    except OSError:
        return
    if diffusers and stat.S_ISDIR(top.st_mode) and _is_diffusers_folder(root):
        yield root, [(root, top)]
        return
    entered = {(top.st_dev, top.st_ino)}
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            names = sorted(n for n in os.listdir(native_path(folder)) if not n.startswith("."))
        except OSError:
            names = []
        entries: list[Entry] = []
        subfolders = []
        for name in names:
            path = os.path.join(folder, name)
            try:
                st: os.stat_result | None = os.stat(native_path(path))  # paths stay as the user's
            except (OSError, ValueError):
                st = None
            if st is not None and stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key not in entered and os.path.realpath(path) not in skip:
                    entered.add(key)
                    if diffusers and _is_diffusers_folder(path):
                        entries.append((path, st))  # one model, listed where its parent's files are
                    else:
                        subfolders.append(path)
                continue
            entries.append((path, st))
        yield folder, entries
        pending.extend(reversed(subfolders))


def walk_files(root: str, *, skip_dirs: Collection[str] = (), diffusers: bool = False) -> Iterator[Entry]:
    """Every non-folder entry under ``root``, recursively, as ``(path, stat)``.

    Within a folder, files come first, then subfolders, each in sorted order; the rest as
    :func:`walk_folders` (with ``diffusers``, diffusers folders are entries too).
    """
    for _, entries in walk_folders(root, skip_dirs=skip_dirs, diffusers=diffusers):
        yield from entries


def model_files(root: str, *, skip_dirs: Collection[str] = (), diffusers: bool = False) -> Iterator[Entry]:
    """The regular files under ``root`` named as models (:data:`~.sniff.MODEL_SUFFIXES`), as ``(path, stat)``.

    ``diffusers``: diffusers folders too, each as one model, and none of the files inside them.
    """
    for path, st in walk_files(root, skip_dirs=skip_dirs, diffusers=diffusers):
        if is_model_entry(path, st):
            yield path, st
