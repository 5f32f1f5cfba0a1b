"""Which files a batch conversion takes, where each one goes, and which it skips (and why).

A batch walks its folder recursively and mirrors the subfolder layout under the output folder.
A diffusers folder in it (pipeline or ControlNet) is one source, converted to one file.
It converts checkpoints only: LoRAs, embeddings, VAEs and other parts are skipped with a note,
not failed. A run that was stopped can be run again: an output that a previous run wrote (its
``modeldoc`` provenance names the same source) is skipped as done, since outputs only ever
appear complete (they are renamed into place after they are checked).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ..analysis.audit import find_model_files
from ..arch.families import CHECKPOINT_ARCHITECTURES
from ..arch.identify import identify_model
from ..errors import ModelDocError, PlanError
from ..io.model import open_model
from ..io.paths import same_file
from ..report.advice import Note, Remedy
from ..strenum import StrEnum

__all__ = ["BatchAction", "BatchItem", "plan_batch"]



class BatchAction(StrEnum):
    """What the batch does with one file."""

    CONVERT = "convert"
    SKIP_NOT_CHECKPOINT = "skip-not-checkpoint"  # a LoRA, embedding, VAE, CLIP, ControlNet …
    SKIP_DONE = "skip-done"  # a previous run wrote its output
    FAIL = "fail"  # unreadable, or its output place is taken by another file


@dataclass(frozen=True)
class BatchItem:
    """One file of the batch: its source, its output and what happens to it.

    Attributes:
        source: the model file.
        output: where its conversion goes (subfolders mirrored).
        action: a :class:`BatchAction`.
        note: why it is skipped or fails ("LoRA", "already converted", the error).
        architecture: the architecture id, when the file could be read.
    """

    source: str
    output: str
    action: BatchAction
    note: str = ""
    architecture: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "output": self.output, "action": self.action.value,
                "note": self.note, "architecture": self.architecture}


def plan_batch(folder: str, out_dir: str, suffix: str, *, overwrite: bool = False, force: bool = False) -> list[BatchItem]:
    """Every model file under ``folder`` with its output under ``out_dir`` and its action.

    Args:
        folder: the folder to convert (walked recursively, links followed once, hidden skipped).
        out_dir: the output folder; it may be ``folder`` itself or lie inside it (then it is not
            walked, so a second run does not convert its own outputs).
        suffix: the output suffix, ``.safetensors`` or ``.ckpt``.
        overwrite: convert again even when a previous run's output is there.
        force: convert files of unknown architecture too (``convert --force``).

    Raises:
        PlanError: ``folder`` is not a folder.
    """
    if not os.path.isdir(folder):
        raise PlanError(f"{folder}: not a folder")
    root = os.path.realpath(folder)
    out_root = os.path.realpath(out_dir)
    # A diffusers folder (pipeline or ControlNet) comes as one source: it converts as one model.
    sources = [p for p in find_model_files(folder) if not _inside(os.path.realpath(p), out_root, root)]
    outputs: dict[str, str] = {}
    items: list[BatchItem] = []
    for source in sources:
        output = os.path.join(out_dir, _output_name(source, folder) + suffix)
        items.append(_item(source, output, outputs, set(sources), overwrite=overwrite, force=force))
    return items


def _output_name(source: str, folder: str) -> str:
    """The output's path under the output folder, less its suffix: the source's, subfolders kept.

    A file loses its suffix; a diffusers folder keeps its whole name (``v1.5`` stays ``v1.5``), and
    the batch's folder itself, when it is one, gives its own name.
    """
    if os.path.isdir(source):
        if same_file(source, folder):
            return os.path.basename(os.path.abspath(folder))
        return os.path.relpath(source, folder)
    return os.path.splitext(os.path.relpath(source, folder))[0]


def _item(source: str, output: str, outputs: dict[str, str], sources: set[str], *, overwrite: bool, force: bool) -> BatchItem:
    key = os.path.normcase(os.path.abspath(output))
    if key in outputs:  # m.ckpt and m.safetensors in one folder both map to m.safetensors
        return BatchItem(source, output, BatchAction.FAIL, f"{os.path.basename(outputs[key])} already goes to {output}")
    outputs[key] = source
    try:
        with open_model(source) as model:
            architecture = identify_model(model).architecture
    except ModelDocError as exc:
        return BatchItem(source, output, BatchAction.FAIL, str(exc))
    if architecture not in CHECKPOINT_ARCHITECTURES and not (architecture == "unknown" and force):
        if architecture == "unknown":
            return BatchItem(source, output, BatchAction.FAIL,
                             Note(f"{source}: architecture not identified", Remedy.FORCE),
                             architecture)
        return BatchItem(source, output, BatchAction.SKIP_NOT_CHECKPOINT, f"{architecture}: not a checkpoint", architecture)
    if os.path.exists(output):
        if any(same_file(s, output) for s in sources):
            return BatchItem(source, output, BatchAction.FAIL,
                             f"{output}: is a source of this batch; choose another output folder", architecture)
        if not overwrite and _written_from(output, source):
            return BatchItem(source, output, BatchAction.SKIP_DONE, "already converted", architecture)
    return BatchItem(source, output, BatchAction.CONVERT, "", architecture)


def _written_from(output: str, source: str) -> bool:
    """Whether ``output`` is a complete model that Model Doctor wrote from a file named like ``source``."""
    try:
        with open_model(output) as model:
            provenance = model.metadata.get("modeldoc")
    except ModelDocError:
        return False
    if not provenance:
        return False
    try:
        recorded = json.loads(provenance).get("source")
    except (ValueError, AttributeError, RecursionError):
        return False
    return recorded == os.path.basename(source)


def _inside(path: str, folder: str, root: str) -> bool:
    """Whether ``path`` lies in ``folder`` when ``folder`` is a subfolder of the batch's ``root``."""
    if folder == root:
        return False
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives on Windows
        return False
