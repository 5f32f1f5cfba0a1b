"""The one rule every file the project writes goes through (models, plots, CSV, JSON).

An output is never a source, never a file the WebUI has loaded, and never an existing model
file unless the user asked to overwrite it. A report (a plot, a CSV) may replace an older
report of the same name, but never a model: whether a file is a model is told by its suffix
*and* by its first bytes, so ``--csv notes.txt`` cannot destroy a checkpoint renamed ``.txt``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..errors import OutputError
from ..report.advice import Remedy
from ..strenum import StrEnum
from .paths import native_path, same_file
from .sniff import MODEL_SUFFIXES, Format, sniff_bytes

__all__ = ["OutputKind", "check_output", "is_model_file", "MODEL_SUFFIXES"]

_MODEL_FORMATS = (Format.SAFETENSORS, Format.TORCH_ZIP, Format.TORCH_LEGACY)


class OutputKind(StrEnum):
    """What is written: a model (replaced only with ``overwrite``) or a report (plot, CSV, JSON)."""

    MODEL = "model"
    REPORT = "report"


def is_model_file(path: str) -> bool:
    """Whether ``path`` is (or looks like) a model file: a model suffix, or model bytes."""
    if path.lower().endswith(MODEL_SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return sniff_bytes(head, os.path.basename(path)) in _MODEL_FORMATS


def check_output(
    path: str,
    *,
    kind: OutputKind = OutputKind.MODEL,
    overwrite: bool = False,
    sources: Iterable[str] = (),
    protected: Iterable[str | None] = (),
) -> None:
    """Refuse an output that could lose data; call it before any long work.

    Args:
        path: the file about to be written.
        kind: a model, or a report that may replace an older report (never a model).
        overwrite: the user asked to replace an existing model file.
        sources: files read to make the output (never replaced, even with ``overwrite``).
        protected: files the program has loaded (the WebUI's model; never replaced).

    Raises:
        OutputError: one line saying why, and what to do instead.
    """
    target = native_path(os.path.abspath(path))  # Windows: a long path in its \\?\ form, or it "does not exist"
    for source in sources:
        if source and same_file(source, target):
            raise OutputError.worded("error.output.is_source", path=path, source=source)
    for loaded in protected:
        if loaded and same_file(loaded, target):
            raise OutputError.worded("error.output.loaded", path=path)
    if os.path.isdir(target):
        raise OutputError.worded("error.output.directory", path=path)
    if os.path.lexists(target):
        if kind is OutputKind.REPORT and is_model_file(target):
            raise OutputError(f"{path}: is a model file; choose another name for the {kind.value}")
        if kind is OutputKind.MODEL and not overwrite:
            raise OutputError.worded("error.output.exists", remedy=Remedy.OVERWRITE, path=path)
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise OutputError.worded("error.output.no_folder", path=path, folder=os.path.dirname(os.path.abspath(path)))
