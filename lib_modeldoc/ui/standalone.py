"""The tab without a WebUI: a folder-based :class:`~lib_modeldoc.ui.host.Host` and ``serve``.

``python -m lib_modeldoc serve --models DIR`` lists the model files under ``DIR`` (using the
WebUI's ``Stable-diffusion`` / ``VAE`` / ``Lora`` sub-folders when they exist) and serves the
same tab the WebUI shows. Without ``--models`` it writes a small sample library first.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ModelDocError, OutputError
from ..io.folders import model_files
from ..report.messages import Language, language_from_locale
from ..samples import family_specs, write_demo_sample, write_safetensors_sample
from .confinement import Confinement
from .diffusers_choices import DIFFUSERS_FOLDER, diffusers_choices, is_folder_entry
from .host import CHECKPOINTS, LORA, VAE, Choice, ClipIds, Defaults, Folders, LiveClip, Session, resolve_choice

__all__ = ["FolderHost", "write_sample_library", "build_standalone", "serve", "default_library", "OutsideError"]

logger = logging.getLogger(__name__)

SUBFOLDERS = {CHECKPOINTS: "Stable-diffusion", VAE: "VAE", LORA: "Lora"}


# A running job's page pulls its progress every ~0.3 s. gradio 3.41 just stops pulling when the
# page goes (closed, reloaded, network lost) and keeps the paused generator referenced, so the
# generator is never closed: a job nobody pulled for this long has lost its page and stops.
ORPHAN_AFTER_S = 8.0


class _Job:
    """Progress and cancellation of one job, read by the polling generator."""

    def __init__(self, session: Session, orphan_after: float = ORPHAN_AFTER_S) -> None:
        self.session = session
        self.done, self.total, self.message = 0, 0, "starting"
        self.orphan_after = orphan_after
        self.last_pull = time.monotonic()

    def progress(self, done: int, total: int, message: str) -> None:
        self.done, self.total, self.message = done, total, message

    def pulled(self) -> None:
        """The page asked for progress: it is still there."""
        self.last_pull = time.monotonic()

    def cancelled(self) -> bool:
        if time.monotonic() - self.last_pull > self.orphan_after:
            self.session.interrupt()  # its page is gone
        return self.session.stopped()


class OutsideError(ModelDocError):
    """A path outside the served model folders (said the same whether or not it exists)."""


class FolderHost:
    """A :class:`Host` over a folder of model files. No model is ever loaded.

    Everything it reads or writes is confined to the served folder: a path is taken only when
    the listing offers it (a symbolic link in the folder is followed because the listing shows
    it) or when it resolves, links followed, inside the folder. Outputs go to one of
    :meth:`output_folders` only.
    """

    can_load_models = False
    in_memory = False
    clip_ids = ClipIds.NO_MODEL

    def __init__(
        self, models_dir: str, *, defaults: Defaults | None = None, name: str = "standalone", start_model: str | None = None
    ) -> None:
        self.name = name
        self.start_model = start_model
        self.language = language_from_locale()  # the words the page makes at run time follow the locale
        self.root = os.path.abspath(os.path.expanduser(models_dir))
        self._defaults = defaults or Defaults()
        self._lists: dict[str, list[Choice]] = {}
        self._lock = threading.Lock()
        self.refresh()

    def _folder(self, kind: str) -> str:
        sub = os.path.join(self.root, SUBFOLDERS[kind])
        return sub if os.path.isdir(sub) else ("" if kind == LORA else self.root)

    def folders(self) -> Folders:
        return Folders(checkpoints=self._folder(CHECKPOINTS), vae=self._folder(VAE), lora=self._folder(LORA))

    def defaults(self) -> Defaults:
        return self._defaults

    def refresh(self) -> None:
        folders = self.folders()
        special = {os.path.realpath(p) for p in (folders.vae, folders.lora) if p and p != folders.checkpoints}
        lists = {
            CHECKPOINTS: [Choice(rel, path, CHECKPOINTS) for rel, path in _scan(folders.checkpoints, skip=special)
                          if ".vae." not in os.path.basename(rel)],
            VAE: [],
            LORA: [],
        }
        if folders.vae != folders.checkpoints:
            lists[VAE] = [Choice(f"VAE: {rel}", path, VAE) for rel, path in _scan(folders.vae)]
        else:  # one flat folder: VAEs are told by name, as the WebUI does next to checkpoints
            lists[VAE] = [Choice(f"VAE: {c.label}", c.path, VAE) for c in _scan_choices(folders.checkpoints)
                          if ".vae." in os.path.basename(c.path) or "vae" in os.path.basename(c.path).lower()]
            lists[CHECKPOINTS] = [c for c in lists[CHECKPOINTS] if c.path not in {v.path for v in lists[VAE]}]
        if folders.lora:
            lists[LORA] = [Choice(f"LoRA: {rel}", path, LORA) for rel, path in _scan(folders.lora)]
        # Diffusers folders (pipelines, ControlNets) among the checkpoints and in models/diffusers: one entry each.
        lists[CHECKPOINTS] += diffusers_choices((folders.checkpoints, os.path.join(self.root, DIFFUSERS_FOLDER)),
                                                skip_dirs=special)
        with self._lock:
            self._lists = lists

    def checkpoints(self) -> list[Choice]:
        return list(self._lists.get(CHECKPOINTS, []))

    def vaes(self) -> list[Choice]:
        return list(self._lists.get(VAE, []))

    def loras(self) -> list[Choice]:
        return list(self._lists.get(LORA, []))

    def loaded_checkpoint(self) -> str | None:
        return None

    def resolve(self, value: str) -> str | None:
        """The file of a list label, or a path (relative to the library) inside the served folder.

        Raises:
            OutsideError: anything else, in one line that does not say whether it exists.
        """
        text = (value or "").strip().strip('"').strip("'")
        if not text:
            return None
        listed = self.checkpoints() + self.vaes() + self.loras()
        for choice in listed:
            if choice.label == text:
                return choice.path
        expanded = os.path.expanduser(text)
        path = os.path.abspath(expanded if os.path.isabs(expanded) else os.path.join(self.root, expanded))
        # offered by the listing (wherever its links lead), or inside the served folder
        if "\0" in path or not Confinement(tuple(c.path for c in listed), (self.root,)).allows(path):
            raise OutsideError(f"{text}: only files in the served model folder can be opened here")
        return path

    def output_folders(self) -> list[str]:
        """The folders the tab may write into: the served folder and its model sub-folders."""
        folders = self.folders()
        found = [self.root] + [f for f in (folders.checkpoints, folders.vae, folders.lora) if f]
        return list(dict.fromkeys(os.path.abspath(f) for f in found if os.path.isdir(f)))

    def confine_output(self, path: str) -> str:
        """``path`` if it is a file directly in one of :meth:`output_folders`.

        Raises:
            OutputError: anywhere else (links followed), in one line.
        """
        target = os.path.abspath(path)
        folder = os.path.realpath(os.path.dirname(target))
        allowed = {os.path.normcase(os.path.realpath(f)) for f in self.output_folders()}
        if os.path.normcase(folder) not in allowed:
            raise OutputError(f"{os.path.basename(target)}: the standalone server writes only into the served "
                              "model folders; pick one of them as the output folder")
        if os.path.islink(target):
            raise OutputError(f"{os.path.basename(target)}: is a symbolic link; choose another name")
        return target

    def load_checkpoint(self, path: str) -> str:
        return "The standalone server loads no models; open the file in your WebUI or ComfyUI."

    def live_clip(self, *, fix: bool) -> LiveClip:
        return LiveClip(False, "The standalone server has no model in memory; inspect and fix the file instead.")

    def interrupt(self, session: Session, task_id: str | None = None) -> None:
        session.interrupt(task_id)

    def wrap_job(self, fn: Callable[..., Sequence[Any]], n_outputs: int, progress_index: int) -> Callable[..., Any]:
        """A generator handler: the job runs in a thread while the page shows its progress."""
        import gradio as gr

        from .views import message_html, progress_html

        def handler(task_id: str, session: Session, *inputs: Any) -> Any:
            session.begin(task_id)
            job = _Job(session)
            box: dict[str, Any] = {}

            def work() -> None:
                try:
                    box["result"] = list(fn(job, session, *inputs))
                except Exception as exc:  # a bug: show one line rather than a silent failure
                    box["error"] = f"internal error ({type(exc).__name__}: {exc})"

            thread = threading.Thread(target=work, name="modeldoc-job", daemon=True)
            thread.start()
            try:
                while thread.is_alive():
                    thread.join(0.3)
                    if thread.is_alive():
                        out: list[Any] = [gr.update() for _ in range(n_outputs)]
                        out[progress_index] = progress_html(job.done, job.total, job.message)
                        yield out
                        job.pulled()
            finally:
                # Closed by gradio (gradio 4 when the page goes away) or by the garbage collector:
                # the job stops with its page rather than running on unseen (see ORPHAN_AFTER_S).
                if thread.is_alive():
                    session.interrupt()
                else:
                    session.end()
            if "error" in box:
                out = [gr.update() for _ in range(n_outputs)]
                out[progress_index] = message_html(box["error"], "error")
                yield out
            else:
                yield box["result"]

        return handler


def _scan(folder: str, skip: set[str] | None = None) -> list[tuple[str, str]]:
    """Model files under ``folder`` as ``(relative path, path)``; diffusers folders are not entered
    (:func:`.diffusers_choices.diffusers_choices` lists them, each as one model)."""
    found = []
    if not folder or not os.path.isdir(folder):
        return found
    for path, st in model_files(folder, skip_dirs=skip or (), diffusers=True):  # link loops end (each folder once)
        if not is_folder_entry(st):
            found.append((os.path.relpath(path, folder), path))
    return found


def _scan_choices(folder: str) -> list[Choice]:
    return [Choice(rel, path) for rel, path in _scan(folder)]


def default_library() -> str:
    """Where ``serve`` writes its sample library when no ``--models`` is given."""
    return os.path.join(tempfile.gettempdir(), "modeldoc-samples", "library")


def write_sample_library(folder: str) -> str:
    """A small model library in the WebUI's layout, every file real-size but sparse.

    ``Stable-diffusion/damaged-merge-sd15.safetensors`` (the demo's damaged merge),
    ``Stable-diffusion/sdxl-base-fp16.safetensors`` (a healthy SDXL checkpoint) and
    ``VAE/sd-vae-fp32.safetensors`` (a standalone VAE). Existing files are kept.
    """
    checkpoints = os.path.join(folder, SUBFOLDERS[CHECKPOINTS])
    vae = os.path.join(folder, SUBFOLDERS[VAE])
    os.makedirs(checkpoints, exist_ok=True)
    os.makedirs(vae, exist_ok=True)
    if not os.path.exists(os.path.join(checkpoints, "damaged-merge-sd15.safetensors")):
        write_demo_sample(checkpoints)
    sdxl = os.path.join(checkpoints, "sdxl-base-fp16.safetensors")
    if not os.path.exists(sdxl):
        specs = family_specs("SDXL", dtype="F16")
        ids = {s.key: np.arange(77, dtype=np.int64).reshape(s.shape) for s in specs if s.key.endswith("position_ids")}
        write_safetensors_sample(sdxl, specs, ids, metadata={"format": "pt", "modelspec.title": "sample SDXL base"})
    vae_file = os.path.join(vae, "sd-vae-fp32.safetensors")
    if not os.path.exists(vae_file):
        write_safetensors_sample(vae_file, family_specs("VAE", dtype="F32"))
    return folder


def build_standalone(models_dir: str | None = None) -> tuple[Any, FolderHost]:
    """The standalone page and its host (writes the sample library when ``models_dir`` is None)."""
    from .builder import TAB_TITLE, build_ui, offline_theme, read_css, read_script

    folder = models_dir or write_sample_library(default_library())
    # On the sample library the picker starts on the damaged merge: one click shows a verdict.
    start = None if models_dir else os.path.join(folder, SUBFOLDERS[CHECKPOINTS], "damaged-merge-sd15.safetensors")
    host = FolderHost(folder, start_model=start)
    script = page_translation(host.language) + read_script()
    return build_ui(host, css=read_css(), theme=offline_theme(), script=script, heading=TAB_TITLE), host


# The page speaks the locale's language the way a WebUI translates its tabs: the same
# localizations/<name>.json, every trimmed text node and placeholder that is a key, now and as the
# page changes. (No WebUI is there to do it; this is our own few lines, not the WebUI's script.)
_PAGE_FILES = {Language.ZH: "zh_CN", Language.RU: "ru_RU"}
_TRANSLATE_JS = """
window.localization = window.localization || %s;
(function() {
    var table = window.localization;
    function translate(root) {
        if (root.nodeType === 3) {
            var hit = table[root.textContent.trim()];
            if (hit !== undefined && root.parentElement && root.parentElement.nodeName !== "TEXTAREA") {
                root.textContent = hit;
            }
            return;
        }
        if (root.nodeType !== 1) return;
        if (root.placeholder && table[root.placeholder] !== undefined) root.placeholder = table[root.placeholder];
        var walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT), nodes = [], node;
        while ((node = walk.nextNode())) nodes.push(node);
        nodes.forEach(translate);
        root.querySelectorAll("[placeholder]").forEach(function(e) {
            if (table[e.placeholder] !== undefined) e.placeholder = table[e.placeholder];
        });
    }
    translate(document.body);
    new MutationObserver(function(changes) {
        changes.forEach(function(c) { c.addedNodes.forEach(translate); });
    }).observe(document.body, {childList: true, subtree: true});
})();
"""


def page_translation(language: Language) -> str:
    """The standalone page's translation script for ``language`` ("" for English)."""
    name = _PAGE_FILES.get(language)
    if name is None:
        return ""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        with open(os.path.join(root, "localizations", f"{name}.json"), encoding="utf-8") as f:
            table = json.load(f)
    except (OSError, ValueError):  # an install without the folder: the page stays English
        return ""
    return _TRANSLATE_JS % json.dumps(table, ensure_ascii=False)


def _checker(user: str, password: str) -> Callable[[str, str], bool]:
    """gradio's auth callable: compares in constant time (gradio 3.41 compares with ``==``)."""
    want_user, want_password = user.encode(), password.encode()

    def check(given_user: str, given_password: str) -> bool:
        same_user = hmac.compare_digest((given_user or "").encode(), want_user)
        same_password = hmac.compare_digest((given_password or "").encode(), want_password)
        return same_user and same_password

    return check


def serve(models_dir: str | None = None, *, host: str = "127.0.0.1", port: int = 7870, block: bool = True,
          log: Callable[[str], None] | None = None, auth: tuple[str, str] | None = None,
          allow_no_auth: bool = False, host_names: Sequence[str] = ()) -> Any:
    """Serve the tab on ``http://host:port/`` until interrupted (or return at once with ``block=False``).

    ``log`` receives the one line saying where it runs (the ``serve`` command prints it);
    without it the line goes to this module's logger. ``auth`` is a (user, password) login;
    listening beyond loopback needs it unless ``allow_no_auth``. Every request passes the
    :class:`~lib_modeldoc.ui.gate.Gate` (host, origin, closed file routes); ``host_names`` are
    more names (a DNS name, a reverse proxy's) the server may be reached by.

    Raises:
        ModelDocError: a non-loopback ``host`` without ``auth`` or ``allow_no_auth``.
    """
    from starlette.middleware import Middleware

    from .gate import Gate, HostPolicy, is_loopback

    if not is_loopback(host) and auth is None and not allow_no_auth:
        raise ModelDocError(f"listening on {host} would let other machines in without a login; "
                            "give auth=(user, password), or allow_no_auth=True to accept that")
    log = log or logger.info
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from .compat import enable_queue

    demo, folder_host = build_standalone(models_dir)
    enable_queue(demo, 4)
    gate = Middleware(Gate, hosts=HostPolicy.for_bind(host, host_names), auth=auth is not None)
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, show_error=True, quiet=True,
                inbrowser=False, auth=_checker(*auth) if auth else None, app_kwargs={"middleware": [gate]})
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    log(f"Model Doctor is running on http://{shown}:{port}/ (models: {folder_host.root}); press Ctrl+C to stop")
    if not block:
        return demo
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return demo
