"""Diffusers folders as entries of the tab's model list.

A1111 and Forge list model files only; users keep diffusers pipelines (and diffusers ControlNets)
under ``models/diffusers`` or among their checkpoints. Each such folder is one model to the tab:
one entry, labelled ``diffusers: NAME``, and none of the component files inside it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from ..io.folders import model_files
from .host import CHECKPOINTS, Choice

__all__ = ["DIFFUSERS_FOLDER", "DIFFUSERS_LABEL", "diffusers_choices", "is_folder_entry"]

DIFFUSERS_FOLDER = "diffusers"  # models/diffusers, where the WebUIs' users keep pipeline folders
DIFFUSERS_LABEL = "diffusers: "


def is_folder_entry(st: os.stat_result | None) -> bool:
    """Whether a walked entry (``model_files(..., diffusers=True)``) is a diffusers folder."""
    return st is not None and stat.S_ISDIR(st.st_mode)


def diffusers_choices(folders: Iterable[str], *, skip_dirs: Iterable[str] = ()) -> list[Choice]:
    """The diffusers folders under ``folders`` (each walked, links followed once), each once.

    Labels are ``diffusers: `` and the folder's path under the folder it was found in.
    """
    found: list[Choice] = []
    seen: set[str] = set()
    skip = tuple(skip_dirs)
    for folder in folders:
        if not folder or not os.path.isdir(folder):
            continue
        for path, st in model_files(folder, skip_dirs=skip, diffusers=True):
            real = os.path.normcase(os.path.realpath(path))
            if is_folder_entry(st) and real not in seen:
                seen.add(real)
                name = os.path.relpath(path, folder)
                name = os.path.basename(os.path.abspath(path)) if name == os.curdir else name  # the folder itself
                found.append(Choice(DIFFUSERS_LABEL + name, path, CHECKPOINTS))
    return found
