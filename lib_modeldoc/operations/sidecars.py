"""The files a WebUI keeps beside a model, and carrying them over to a converted copy.

AUTOMATIC1111 reads ``NAME.yaml`` (the model's config, for SD2-v and custom models), a thumbnail
``NAME.preview.EXT`` or ``NAME.EXT`` and ``NAME.json`` (the user's description, activation text and
notes); Civitai Helper keeps ``NAME.civitai.info``. A model written under a new name loses all of
them unless they are copied too, so the model's card, preview and config follow it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from ..errors import OutputError
from ..io.atomic import atomic_output
from ..io.output_rule import OutputKind, check_output
from ..io.paths import same_file

__all__ = ["SIDECAR_SUFFIXES", "Sidecar", "find_sidecars", "carry_sidecars"]

_IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "gif")  # what the WebUI looks for as a preview
#: Suffixes appended to a model's name without its extension, most specific first.
SIDECAR_SUFFIXES: tuple[str, ...] = (
    ".yaml",
    *(f".preview.{ext}" for ext in _IMAGE_EXTENSIONS),
    *(f".{ext}" for ext in _IMAGE_EXTENSIONS),
    ".json",
    ".civitai.info",
)
_COPY_CHUNK = 4 << 20


@dataclass(frozen=True)
class Sidecar:
    """One sidecar: where it is, where it goes, and whether it was copied (or why not)."""

    source: str
    target: str
    copied: bool
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "target": self.target, "copied": self.copied, "note": self.note}


def find_sidecars(model_path: str | os.PathLike[str]) -> list[str]:
    """The sidecar files present beside ``model_path``, in :data:`SIDECAR_SUFFIXES` order."""
    stem = os.path.splitext(os.fspath(model_path))[0]
    return [stem + suffix for suffix in SIDECAR_SUFFIXES if os.path.isfile(stem + suffix)]


def carry_sidecars(
    source_model: str | os.PathLike[str], output_model: str | os.PathLike[str], *, overwrite: bool = False,
    dry_run: bool = False,
) -> list[Sidecar]:
    """Copy ``source_model``'s sidecars to ``output_model``'s name (its folder, its stem).

    An existing target is kept unless ``overwrite``; a target that is the sidecar itself (same
    name, same folder) is left alone. Each copy goes through a temporary file renamed into place.
    A sidecar that cannot be copied is reported in its :class:`Sidecar` (``copied=False``), never
    fatal: the model itself is already written.
    """
    out_stem = os.path.splitext(os.fspath(output_model))[0]
    result: list[Sidecar] = []
    for path in find_sidecars(source_model):
        suffix = path[len(os.path.splitext(os.fspath(source_model))[0]):]
        target = out_stem + suffix
        if os.path.exists(target):
            if same_file(path, target):
                continue
            if not overwrite:
                result.append(Sidecar(path, target, False, "kept the existing file"))
                continue
        if dry_run:
            result.append(Sidecar(path, target, False, "would copy"))
            continue
        try:
            check_output(target, kind=OutputKind.REPORT, sources=(os.fspath(source_model), path))
            _copy(path, target)
        except (OutputError, OSError) as exc:
            result.append(Sidecar(path, target, False, f"not copied ({exc})"))
            continue
        result.append(Sidecar(path, target, True))
    return result


def _copy(source: str, target: str) -> None:
    with open(source, "rb") as src, atomic_output(target, like=source) as dst:
        shutil.copyfileobj(src, dst, _COPY_CHUNK)
