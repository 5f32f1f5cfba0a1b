"""Model Doctor in AUTOMATIC1111's WebUI 1.10 and Forge: the thin adapter.

Registers the tab (``on_ui_tabs``), a settings section (``on_ui_settings``) and HTTP routes
(``on_app_started``). Everything else is the engine's: :func:`lib_modeldoc.ui.builder.build_ui`
builds the tab from a :class:`WebUIHost`, which is the only code that touches ``modules.*``.
Never imports ``ldm``, ``sgm`` or ``sd_models_config`` (Forge has none of them).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr
from modules import script_callbacks, sd_models, shared

from lib_modeldoc.errors import ModelDocError
from lib_modeldoc.io.folders import model_files
from lib_modeldoc.ui.diffusers_choices import DIFFUSERS_FOLDER, diffusers_choices, is_folder_entry
from lib_modeldoc.ui.host import Choice, ClipIds, Defaults, Folders, LiveClip, Session, resolve_choice

logger = logging.getLogger("modeldoc")

SECTION = ("modeldoc", "Model Doctor")


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # its parent package is missing
        return False


# Forge selects checkpoints through modules_forge.main_entry. reForge also ships a modules_forge
# package, without main_entry, and loads checkpoints the AUTOMATIC1111 way.
FORGE = _has_module("modules_forge.main_entry")
HOST_NAME = "Forge" if FORGE else "reForge" if _has_module("modules_forge") else "AUTOMATIC1111"
PRECISION_CHOICES = ["fp16", "bf16", "fp32", "fp8_e4m3fn", "fp8_e5m2", "keep"]

# option key -> (default, label, component, choices)
OPTIONS: dict[str, tuple[Any, str, Any, list[str] | None]] = {
    "modeldoc_precision": ("fp16", "Default precision of converted weights", gr.Radio, PRECISION_CHOICES),
    "modeldoc_prune": ("no-ema", "Default EMA handling", gr.Radio, ["none", "no-ema", "ema-only"]),
    "modeldoc_fix_clip": (True, "Fix CLIP position_ids by default", None, None),
    "modeldoc_format": ("safetensors", "Default output format", gr.Radio, ["safetensors", "ckpt"]),
    "modeldoc_verify": (True, "Verify every written file (re-read and compare every tensor)", None, None),
    "modeldoc_dir_checkpoints": ("", "Output folder for checkpoints (empty: the WebUI's checkpoint folder)", None, None),
    "modeldoc_dir_vae": ("", "Output folder for VAEs (empty: the WebUI's VAE folder)", None, None),
    # Forge lists text encoders (models/text_encoder) and UNets (the checkpoint folder) itself;
    # AUTOMATIC1111 lists neither, so its parts get a folder of their own.
    "modeldoc_dir_components": ("", "Output folder for exported UNets and text encoders (empty: text encoders to "
                                    "models/text_encoder, UNets to the checkpoint folder, where Forge lists them)"
                                if FORGE else "Output folder for exported UNets and text encoders "
                                "(empty: <models>/modeldoc-parts)", None, None),
}


def _opt(key: str) -> Any:
    return getattr(shared.opts, key, OPTIONS[key][0])


def _models_path() -> str:
    from modules import paths

    return paths.models_path


def _checkpoint_dir() -> str:
    return getattr(shared.cmd_opts, "ckpt_dir", None) or sd_models.model_path


def _vae_dir() -> str:
    return getattr(shared.cmd_opts, "vae_dir", None) or os.path.join(_models_path(), "VAE")


def _text_encoder_dir() -> str:
    """Where Forge lists text encoders (its "VAE / Text Encoder" box)."""
    return getattr(shared.cmd_opts, "text_encoder_dir", None) or os.path.join(_models_path(), "text_encoder")


def _lora_dir() -> str:
    return getattr(shared.cmd_opts, "lora_dir", None) or os.path.join(_models_path(), "Lora")


def _scan(folder: str) -> list[str]:
    """Model files under ``folder`` (links followed, each real folder once, so link loops end); the
    files inside a diffusers folder are not loose models."""
    if not folder or not os.path.isdir(folder):
        return []
    return [path for path, st in model_files(folder, diffusers=True) if not is_folder_entry(st)]


class _Job:
    """A job's link to the WebUI's progress bar (``shared.state``) and interrupt button."""

    def __init__(self, session: Session) -> None:
        self.session = session
        shared.state.job_count = 1
        shared.state.sampling_steps = 1000
        shared.state.sampling_step = 0

    def progress(self, done: int, total: int, message: str) -> None:
        shared.state.sampling_step = int(1000 * done / total) if total else 0
        shared.state.textinfo = message.splitlines()[0] if message else ""

    def cancelled(self) -> bool:
        return self.session.stopped() or bool(getattr(shared.state, "interrupted", False))


class WebUIHashCache:
    """The WebUI's own SHA-256 cache (``modules.hashes``: cache.json up to 1.8, diskcache since 1.9).

    Only checkpoints the WebUI lists have a title (``checkpoint/NAME``); an entry is used only
    while the file is not newer than it (the WebUI's rule, applied by ``sha256_from_cache``).
    Storing also gives the listed checkpoint its hash, so the WebUI shows it without rehashing.
    """

    @staticmethod
    def _info(path: str) -> Any:
        real = os.path.realpath(path)
        for info in list(sd_models.checkpoints_list.values()):
            if os.path.realpath(info.filename) == real:
                return info
        return None

    def lookup(self, path: str) -> str | None:
        from modules import hashes

        info = self._info(path)
        return hashes.sha256_from_cache(info.filename, f"checkpoint/{info.name}") if info is not None else None

    def store(self, path: str, sha256: str) -> None:
        from modules import hashes

        info = self._info(path)
        if info is None:
            return
        hashes.cache("hashes")[f"checkpoint/{info.name}"] = {"mtime": os.path.getmtime(info.filename), "sha256": sha256}
        hashes.dump_cache()
        if getattr(info, "sha256", None) != sha256 and hasattr(info, "calculate_shorthash"):
            info.calculate_shorthash()  # reads the entry just stored: the dropdown title gets its [hash]


class WebUIHost:
    """The :class:`~lib_modeldoc.ui.host.Host` of a running WebUI."""

    can_load_models = True
    in_memory = True
    # Forge builds CLIP without the file's position_ids (its loader drops that key).
    clip_ids = ClipIds.DROPPED if FORGE else ClipIds.READ
    start_model = None  # the picker starts on the loaded model

    def __init__(self) -> None:
        self.name = HOST_NAME
        self.hash_cache = WebUIHashCache()
        self._diffusers: list[Choice] | None = None  # walked on first use and on every refresh

    @property
    def language(self) -> Any:
        """The tab's run-time words follow Settings → User interface → Localization (a language pack's
        name such as ``zh_CN``, ``zh-Hans (Stable)``, ``ru_RU``), as the WebUI's own translation does."""
        from lib_modeldoc.report.messages import language_from_webui

        return language_from_webui(getattr(shared.opts, "localization", None))

    # -- lists -----------------------------------------------------------------------------------
    def checkpoints(self) -> list[Choice]:
        listed = [Choice(title, info.filename) for title, info in list(sd_models.checkpoints_list.items())]
        return listed + self._diffusers_folders()

    def _diffusers_folders(self) -> list[Choice]:
        """Diffusers folders among the checkpoints and in models/diffusers (the WebUI lists files only)."""
        found = self._diffusers
        if found is None:
            found = diffusers_choices((_checkpoint_dir(), os.path.join(_models_path(), DIFFUSERS_FOLDER)))
            self._diffusers = found
        return list(found)

    def vaes(self) -> list[Choice]:
        try:
            from modules import sd_vae

            items = dict(sd_vae.vae_dict)
        except Exception:  # a fork without sd_vae.vae_dict: list the folder
            items = {os.path.basename(p): p for p in _scan(_vae_dir())}
        return [Choice(f"VAE: {name}", path, "vae") for name, path in items.items()]

    def loras(self) -> list[Choice]:
        folder = _lora_dir()
        return [Choice(f"LoRA: {os.path.relpath(p, folder)}", p, "lora") for p in _scan(folder)]

    def folders(self) -> Folders:
        checkpoints = _opt("modeldoc_dir_checkpoints") or _checkpoint_dir()
        chosen = _opt("modeldoc_dir_components")
        if FORGE:  # parts go where Forge lists them, unless a folder is set
            components, text_encoders = chosen or checkpoints, chosen or _text_encoder_dir()
        else:
            components = chosen or os.path.join(_models_path(), "modeldoc-parts")
            text_encoders = components
        return Folders(
            checkpoints=checkpoints,
            vae=_opt("modeldoc_dir_vae") or _vae_dir(),
            lora=_lora_dir(),
            components=components,
            text_encoders=text_encoders,
        )

    def defaults(self) -> Defaults:
        return Defaults(precision=_opt("modeldoc_precision"), prune=_opt("modeldoc_prune"),
                        fix_clip=bool(_opt("modeldoc_fix_clip")), format=_opt("modeldoc_format"),
                        verify=bool(_opt("modeldoc_verify")))

    def refresh(self) -> None:
        sd_models.list_models()
        self._diffusers = None
        try:
            from modules import sd_vae

            sd_vae.refresh_vae_list()
        except Exception as exc:  # a fork without it: the VAE list just stays as it is
            logger.debug("VAE list not refreshed: %s", exc)

    def compute_device(self) -> str:
        """The WebUI's torch device (the VAE test runs there: native fp16 on a GPU); ``cpu`` if unknown."""
        try:
            from modules import devices

            return str(devices.device)
        except Exception:  # a fork without modules.devices.device
            return "cpu"

    def find_listed(self, name: str) -> str | None:
        """A list entry's file (a label, or a title/name the WebUI's own lookup knows); never a bare path."""
        from lib_modeldoc.ui.routes import listed_file

        def closest(text: str) -> str | None:
            info = sd_models.get_closet_checkpoint_match(text)
            return getattr(info, "filename", None)

        return listed_file(name, self.checkpoints() + self.vaes() + self.loras(), closest)

    def model_folders(self) -> list[str]:
        """The folders whose files the routes may read (besides what the WebUI lists)."""
        folders = self.folders()
        return [f for f in (_models_path(), _checkpoint_dir(), _vae_dir(), _lora_dir(), folders.checkpoints,
                            folders.vae, folders.components, folders.text_encoders) if f]

    # -- the loaded model ------------------------------------------------------------------------
    def _model(self) -> Any:
        # model_data.sd_model, not shared.sd_model: the latter loads a model when none is loaded.
        return getattr(getattr(sd_models, "model_data", None), "sd_model", None)

    def loaded_checkpoint(self) -> str | None:
        info = getattr(self._model(), "sd_checkpoint_info", None)
        if info is None:  # Forge loads lazily: the selected checkpoint is what will run
            params = getattr(getattr(sd_models, "model_data", None), "forge_loading_parameters", None) or {}
            info = params.get("checkpoint_info") if isinstance(params, dict) else None
        if info is None:
            selected = getattr(shared.opts, "sd_model_checkpoint", None)
            info = sd_models.get_closet_checkpoint_match(selected) if selected else None
        path = getattr(info, "filename", None)
        return path if path and os.path.isfile(path) else None

    def resolve(self, value: str) -> str | None:
        text = (value or "").strip()
        if not text:
            return None
        choices = self.checkpoints() + self.vaes() + self.loras()
        if any(c.label == text for c in choices) or os.path.exists(os.path.expanduser(text)):
            return resolve_choice(text, choices)
        info = sd_models.get_closet_checkpoint_match(text)  # a title, a name, "name [hash]"
        return info.filename if info is not None else resolve_choice(text, choices)

    def load_checkpoint(self, path: str) -> str:
        self.refresh()
        info = next((i for i in sd_models.checkpoints_list.values()
                     if os.path.realpath(i.filename) == os.path.realpath(path)), None)
        if info is None:
            raise ModelDocError(f"{path}: not in the WebUI's checkpoint list; put it in {_checkpoint_dir()}")
        if FORGE:
            from modules_forge import main_entry

            try:
                main_entry.checkpoint_change(info.title)
            except TypeError:  # a fork whose checkpoint_change takes more arguments (e.g. a preset)
                return f"{info.title} is in the checkpoint list; select it in the Checkpoint dropdown to load it."
            return f"Selected {info.title}; Forge loads it at the next generation."
        shared.opts.set("sd_model_checkpoint", info.title)  # its onchange reloads the weights
        title = getattr(shared.opts, "sd_model_checkpoint", None) or info.title  # with its hash once loaded
        return f"Loaded {title}."

    def live_clip(self, *, fix: bool) -> LiveClip:
        model = self._model()
        if model is None or getattr(model, "sd_checkpoint_info", None) is None:
            return LiveClip(False, "No model is loaded yet; generate once or pick a checkpoint, then check again.")
        if hasattr(model, "forge_objects"):
            return LiveClip(False, "Forge loads CLIP without the file's position_ids (it ignores that key), so the "
                                   "loaded model is not affected; repair the file for other programs.")
        import torch

        if not isinstance(model, torch.nn.Module):
            return LiveClip(False, "This WebUI keeps the model as a diffusers pipeline, which rebuilds position_ids "
                                   "itself; nothing to fix in memory.")
        from lib_modeldoc.checks.live import check_position_ids, fix_position_ids

        name = model.sd_checkpoint_info.title
        if not fix:
            wrong = check_position_ids(model)
            if not wrong:
                return LiveClip(True, f"{name}: no CLIP position_ids in memory to check.")
            bad = {k: v for k, v in wrong.items() if v}
            if not bad:
                return LiveClip(True, f"{name}: CLIP position_ids in memory are correct (0..76).", wrong)
            shown = "; ".join(f"{k.split('.embeddings')[0]}: wrong at {list(v)}" for k, v in bad.items())
            return LiveClip(True, f"{name}: CLIP position_ids in memory are shifted ({shown}); "
                                  "prompts lose words until fixed.", wrong)
        from modules.call_queue import queue_lock

        with queue_lock:  # never while an image is being generated
            fixed = fix_position_ids(model)
        if not fixed:
            return LiveClip(True, f"{name}: nothing to fix; CLIP position_ids in memory are correct.")
        positions = sum(len(v) for v in fixed.values())
        return LiveClip(True, f"{name}: reset {positions} CLIP position(s) in memory. This lasts until the model is "
                              "reloaded; fix the file to make it permanent.", {k: () for k in fixed}, fixed=len(fixed))

    # -- jobs ------------------------------------------------------------------------------------
    def wrap_job(self, fn: Callable[..., Sequence[Any]], n_outputs: int, progress_index: int) -> Callable[..., Any]:
        from modules.call_queue import wrap_gradio_gpu_call

        def job(task_id: str, session: Session, *inputs: Any) -> list[Any]:
            session.begin(task_id)  # under the queue lock: an interrupt while queued is kept
            try:
                return list(fn(_Job(session), session, *inputs))
            finally:
                session.end()

        job.__name__ = getattr(fn, "__name__", "modeldoc_job")
        return wrap_gradio_gpu_call(job, extra_outputs=[gr.update() for _ in range(n_outputs - 1)])

    def interrupt(self, session: Session, task_id: str | None = None) -> None:
        stopped = session.interrupt(task_id)
        if stopped is not None and stopped == session.task_id and getattr(shared.state, "job", None) == stopped:
            shared.state.interrupt()  # our job is the one running: stop it, never someone else's


# --- callbacks -------------------------------------------------------------------------------------

def on_ui_tabs() -> list[tuple[Any, str, str]]:
    from lib_modeldoc.ui.builder import TAB_ID, TAB_TITLE, build_ui

    return [(build_ui(WebUIHost()), TAB_TITLE, TAB_ID)]


def on_ui_settings() -> None:
    for key, (default, label, component, choices) in OPTIONS.items():
        args = {"choices": choices} if choices else None
        info = shared.OptionInfo(default, label, component, args, section=SECTION)
        shared.opts.add_option(key, info)


def on_app_started(demo: Any, app: Any) -> None:
    """``/modeldoc/*`` routes, behind the WebUI's own ``--api-auth`` (see :mod:`lib_modeldoc.ui.routes`)."""
    from lib_modeldoc.ui.routes import add_routes

    opts = shared.cmd_opts
    add_routes(app, WebUIHost(), api_auth=getattr(opts, "api_auth", None),
               cors_allow_origins=getattr(opts, "cors_allow_origins", None),
               cors_allow_origins_regex=getattr(opts, "cors_allow_origins_regex", None))


script_callbacks.on_ui_tabs(on_ui_tabs)
script_callbacks.on_ui_settings(on_ui_settings)
script_callbacks.on_app_started(on_app_started)
