"""What the tab needs from the program it runs in: the :class:`Host` protocol.

The WebUI adapter (``scripts/modeldoc.py``) implements it with ``modules.*``; the standalone
server (:mod:`lib_modeldoc.ui.standalone`) implements it with plain folders. The UI builder only
talks to a ``Host``, so the same tab runs in both. Nothing here imports gradio.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

__all__ = ["Choice", "ClipIds", "Defaults", "Folders", "Host", "JobContext", "LiveClip", "Session", "resolve_choice"]

# Folder kinds the tab writes into and lists from.
CHECKPOINTS, VAE, LORA, COMPONENTS = "checkpoints", "vae", "lora", "components"


@dataclass(frozen=True)
class Choice:
    """One entry of a model list: what the dropdown shows and the file behind it."""

    label: str
    path: str
    kind: str = CHECKPOINTS  # checkpoints, vae, lora


@dataclass(frozen=True)
class Folders:
    """Where new files go (and, for the standalone server, where models are listed from)."""

    checkpoints: str
    vae: str
    lora: str = ""
    components: str = ""  # exported UNet / text encoders; defaults to ``checkpoints``
    text_encoders: str = ""  # exported text encoders, where the program lists them; defaults to ``components``

    def for_kind(self, kind: str) -> str:
        value = getattr(self, kind, "") or ""
        return value or self.checkpoints

    def for_part(self, part: str) -> str:
        """Where an exported part goes: a VAE to the VAE folder, a text encoder to the text
        encoders' folder, anything else (a UNet) to the parts folder."""
        if part == "vae":
            return self.vae or self.checkpoints
        if part.startswith("clip") or part == "t5xxl":
            return self.text_encoders or self.for_kind(COMPONENTS)
        return self.for_kind(COMPONENTS)


class ClipIds(Enum):
    """What a program does with the CLIP position_ids stored in a checkpoint it loads."""

    READ = "read"  # loads them into the model (AUTOMATIC1111): shifted ids shift prompt words
    DROPPED = "dropped"  # rebuilds them itself (Forge): the file's ids do not matter there
    NO_MODEL = "no model"  # loads no models (the standalone server)


@dataclass(frozen=True)
class Defaults:
    """Initial values of the action panels (the WebUI's settings section sets them)."""

    precision: str = "fp16"
    prune: str = "no-ema"
    fix_clip: bool = True
    format: str = "safetensors"
    verify: bool = True


@dataclass(frozen=True)
class LiveClip:
    """The loaded model's CLIP position_ids, as checked (or fixed) in memory.

    ``supported`` is False where the program does not allow the check (the message says why);
    ``wrong`` maps each position_ids buffer to the indices whose value is not the index.
    """

    supported: bool
    message: str
    wrong: dict[str, tuple[int, ...]] = field(default_factory=dict)
    fixed: int = 0  # buffers reset by a fix

    @property
    def damaged(self) -> bool:
        return any(self.wrong.values())


class JobContext(Protocol):
    """Handed to a long job: report progress, ask whether to stop."""

    def progress(self, done: int, total: int, message: str) -> None: ...

    def cancelled(self) -> bool: ...


class Host(Protocol):
    """The program the tab runs in (a WebUI, or the standalone server).

    Attributes:
        name: shown in the tab ("AUTOMATIC1111", "Forge", "standalone" ...).
        can_load_models: whether :meth:`load_checkpoint` does anything.
        in_memory: whether the program holds a loaded model (the "Loaded model" button and tab).
        clip_ids: what the program does with a file's CLIP position_ids (the verdict says so, and
            "Fix in memory" is offered only where the loaded model holds them).
        start_model: the file the picker starts on when no model is loaded (the standalone
            sample library opens on its damaged merge), or ``None``.

    A host may also have a ``hash_cache`` attribute (a :class:`~lib_modeldoc.analysis.hash_cache.HashCache`,
    the WebUI's): Inspect then shows a SHA-256 it already holds, and Hashes stores what it computes;
    and a ``language`` (:class:`~lib_modeldoc.report.messages.Language`) for the words the tab makes
    at run time (verdict, findings, status lines): the WebUI's Localization setting, the standalone
    page's locale. Without one the tab speaks English. Labels and buttons are translated by the
    WebUI itself from ``localizations/*.json``.
    """

    name: str
    can_load_models: bool
    in_memory: bool
    clip_ids: ClipIds
    start_model: str | None

    def checkpoints(self) -> list[Choice]:
        """The checkpoint list, as the program's own dropdown shows it."""

    def vaes(self) -> list[Choice]:
        """VAE files."""

    def loras(self) -> list[Choice]:
        """LoRA files (inspect only)."""

    def folders(self) -> Folders:
        """Output folders."""

    def defaults(self) -> Defaults:
        """Action defaults (the settings section)."""

    def refresh(self) -> None:
        """Rescan the model folders (after a file was written, or on the refresh button)."""

    def loaded_checkpoint(self) -> str | None:
        """The file of the loaded model, without loading one; ``None`` when none is loaded."""

    def resolve(self, value: str) -> str | None:
        """A file path for what the user picked or typed (a list label, a title, a path)."""

    def load_checkpoint(self, path: str) -> str:
        """Load (or select) a checkpoint; returns a one-line message for the tab."""

    def live_clip(self, *, fix: bool) -> LiveClip:
        """Check (and with ``fix`` reset) the loaded model's CLIP position_ids in memory."""

    def wrap_job(self, fn: Callable[..., Sequence[Any]], n_outputs: int, progress_index: int) -> Callable[..., Any]:
        """Turn ``fn(job, session, *inputs) -> outputs`` into a gradio event handler.

        The handler's first input is a task id (filled by the page's job starter,
        ``modeldoc_start_job`` in ``javascript/modeldoc.js``); the second is the
        :class:`Session`. ``outputs[progress_index]`` is the HTML element that shows progress
        and, in the WebUI, errors.
        """

    def interrupt(self, session: Session, task_id: str | None = None) -> None:
        """Stop ``session``'s job ``task_id`` (queued or running; without it, the running one),
        and never another session's."""


class Session:
    """Per-browser-session state, held in a ``gr.State`` (never in module globals).

    Jobs are known by the task id the page's job starter gives them when their button is pressed.
    An interrupt names that id, so it also stops a job still waiting in the queue: the job sees it
    when it starts (a flag cleared at the start would lose it). gradio deep-copies a State's
    initial value for each new session; ``__deepcopy__`` makes that a fresh, independent object.
    """

    _KEEP = 64  # interrupted ids remembered (an interrupt may come after its job has ended)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._interrupted: list[str] = []
        self.task_id: str | None = None  # the running job's
        self.written: str | None = None  # path of the last file written
        self.metadata_of: str | None = None  # the file whose metadata the editor's form holds

    def begin(self, task_id: str | None) -> None:
        """A job of this session starts (``task_id`` from the job starter; empty without one)."""
        with self._lock:
            self.task_id = task_id or f"local-{id(self)}-{len(self._interrupted)}"

    def end(self) -> None:
        with self._lock:
            if self.task_id in self._interrupted:
                self._interrupted.remove(self.task_id)
            self.task_id = None

    def interrupt(self, task_id: str | None = None) -> str | None:
        """Stop job ``task_id``, running or still queued; without one, the running job.
        Returns the id stopped, or ``None`` when there was nothing to stop."""
        with self._lock:
            target = task_id or self.task_id
            if target and target not in self._interrupted:
                self._interrupted = [*self._interrupted[-(self._KEEP - 1):], target]
            return target

    def stopped(self) -> bool:
        """Whether the running job was asked to stop (before or after it started)."""
        with self._lock:
            return self.task_id is not None and self.task_id in self._interrupted

    def __deepcopy__(self, memo: dict[int, Any]) -> Session:
        return Session()


def resolve_choice(value: str | None, choices: Sequence[Choice]) -> str | None:
    """Map a dropdown label to its file; anything else is taken as a path (``~`` expanded)."""
    text = (value or "").strip().strip('"').strip("'")
    if not text:
        return None
    for choice in choices:
        if choice.label == text:
            return choice.path
    return os.path.abspath(os.path.expanduser(text))
