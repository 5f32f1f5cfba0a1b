"""The Model Doctor tab as a ``gr.Blocks``, built from the engine for any :class:`Host`.

The same function builds the WebUI tab (``scripts/modeldoc.py``) and the standalone page
(:mod:`lib_modeldoc.ui.standalone`). Works with gradio 3.41 and 4.x (see :mod:`.compat`).
Per-user state lives in a ``gr.State`` holding a :class:`~lib_modeldoc.ui.host.Session`.
"""

from __future__ import annotations

import os
from typing import Any

import gradio as gr

from ..convert import PRECISIONS, PRUNE_MODES
from ..errors import ModelDocError
from ..progress import Cancelled
from . import actions, views
from .compat import hidden_textbox, js_kwargs
from .host import Host, JobContext, Session

__all__ = ["build_ui", "TAB_TITLE", "TAB_ID"]

TAB_TITLE = "Model Doctor"
TAB_ID = "modeldoc"
PART_ACTIONS = ["convert", "copy", "delete"]
NO_VAE = "None"
INTRO = (
    "Pick a checkpoint (or paste any path) and press **Inspect**. With nothing picked, the loaded "
    "model's file is inspected. Nothing is written until you press a **Write** button."
)


def _labels(host: Host) -> list[str]:
    return [c.label for c in host.checkpoints() + host.vaes() + host.loras()]


def _vae_labels(host: Host) -> list[str]:
    return [NO_VAE] + [c.label for c in host.vaes()]


def build_ui(host: Host, *, css: str | None = None, title: str = TAB_TITLE, theme: Any = None) -> gr.Blocks:
    """Build the tab. ``css`` and ``theme`` are for the standalone page (the WebUI has its own)."""
    defaults = host.defaults()
    folders = host.folders()
    loaded = host.loaded_checkpoint()
    loaded_label = actions.label_for(loaded, host.checkpoints()) if loaded else None
    blocks_kwargs: dict[str, Any] = {"analytics_enabled": False, "title": title}
    if css:
        blocks_kwargs["css"] = css
    if theme is not None:
        blocks_kwargs["theme"] = theme
    with gr.Blocks(**blocks_kwargs) as blocks:
        session = gr.State(Session())
        task_id = hidden_textbox("modeldoc_task_id")
        gr.Markdown(INTRO, elem_id="modeldoc_intro")
        with gr.Row(elem_id="modeldoc_picker_row"):
            model = gr.Dropdown(
                choices=_labels(host), value=loaded_label or loaded, allow_custom_value=True,
                label="Model — a checkpoint, VAE or LoRA from the lists, or any path", elem_id="modeldoc_model", scale=8,
            )
            refresh = gr.Button("↻", elem_id="modeldoc_refresh", elem_classes=["modeldoc-tool"], scale=0, min_width=44)
            inspect_button = gr.Button("Inspect", variant="primary", elem_id="modeldoc_inspect", scale=1, min_width=110)
            loaded_button = gr.Button("Loaded model", elem_id="modeldoc_inspect_loaded", scale=1, min_width=130,
                                      visible=host.in_memory)
        status = gr.HTML(elem_id="modeldoc_status")
        verdict = gr.HTML(elem_id="modeldoc_verdict")
        chart = gr.HTML(elem_id="modeldoc_chart")
        with gr.Accordion("Details", open=False, elem_id="modeldoc_details_box"):
            details = gr.HTML(elem_id="modeldoc_details")
        with gr.Accordion("Metadata", open=False, elem_id="modeldoc_metadata_box"):
            metadata = gr.JSON(elem_id="modeldoc_metadata")

        with gr.Tabs(elem_id="modeldoc_actions"):
            with gr.Tab("Fix / prune / convert", elem_id="modeldoc_tab_convert"):
                convert = _convert_panel(host, defaults, folders.checkpoints)
            live = None
            if host.in_memory:
                with gr.Tab("Loaded model", elem_id="modeldoc_tab_loaded"):
                    live = _loaded_panel(host)

        # The right-click entry's way in: JavaScript writes a checkpoint title and clicks.
        with gr.Row(elem_id="modeldoc_bridge"):
            bridge_value = hidden_textbox("modeldoc_js_value")
            bridge_button = gr.Button("inspect", elem_id="modeldoc_js_inspect", elem_classes=["modeldoc-hidden"])

        inspect_outputs = [model, status, verdict, chart, details, metadata, convert["name"], convert["result"]]

        def show(path: str | None, session: Session, shown: str | None) -> list[Any]:
            if not path:
                message = views.message_html("No model picked and none loaded: pick one from the list or paste a path.", "warning")
                return [gr.update(), message, "", "", "", None, gr.update(), ""]
            found, error = actions.guard(lambda: actions.inspect_file(path))
            if error:
                return [gr.update(value=shown) if shown else gr.update(), error, "", "", "", None, gr.update(), ""]
            session.inspected = path
            fmt_name = actions.default_output_name(path)
            return [gr.update(value=shown) if shown else gr.update(), "", found.verdict, found.chart, found.details,
                    found.metadata, fmt_name, ""]

        def do_inspect(value: str | None, session: Session) -> list[Any]:
            path = actions.loaded_or_picked(host, value)
            shown = None if (value or "").strip() else (actions.label_for(path, host.checkpoints()) or path if path else None)
            return show(path, session, shown)

        def do_inspect_loaded(session: Session) -> list[Any]:
            path = host.loaded_checkpoint()
            return show(path, session, actions.label_for(path, host.checkpoints()) or path if path else None)

        def do_bridge(value: str | None, session: Session) -> list[Any]:
            path = host.resolve(value or "")
            label = actions.label_for(path, host.checkpoints()) if path else None
            return show(path, session, label or value)

        def do_refresh(value: str | None) -> list[Any]:
            host.refresh()
            return [gr.update(choices=_labels(host), value=value), gr.update(choices=_vae_labels(host))]

        inspect_button.click(do_inspect, [model, session], inspect_outputs)
        loaded_button.click(do_inspect_loaded, [session], inspect_outputs)
        bridge_button.click(do_bridge, [bridge_value, session], inspect_outputs)
        refresh.click(do_refresh, [model], [model, convert["bake_vae"]])
        _wire_convert(host, convert, model, session, task_id, show, inspect_outputs)
        if live is not None:
            _wire_loaded(host, live, session)
    return blocks


# --- Fix / prune / convert -------------------------------------------------------------------------

def _convert_panel(host: Host, defaults: Any, folder: str) -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row():
        c["precision"] = gr.Radio(list(PRECISIONS), value=defaults.precision, label="Precision of the weights",
                                  elem_id="modeldoc_precision")
        c["prune"] = gr.Radio(list(PRUNE_MODES), value=defaults.prune, label="EMA weights",
                              info="no-ema drops the EMA copy; ema-only makes it the UNet", elem_id="modeldoc_prune")
    with gr.Row():
        c["fix_clip"] = gr.Checkbox(value=defaults.fix_clip, label="Fix CLIP position_ids (reset to 0..76)",
                                    elem_id="modeldoc_fix_clip")
        c["keep_junk"] = gr.Checkbox(value=False, label="Keep unknown tensors (junk)", elem_id="modeldoc_keep_junk")
        c["strip_metadata"] = gr.Checkbox(value=False, label="Strip metadata", elem_id="modeldoc_strip_metadata")
    with gr.Accordion("Per part: convert to the precision above, copy as stored, or delete", open=False):
        with gr.Row():
            c["unet"] = gr.Dropdown(PART_ACTIONS, value="convert", label="UNet", elem_id="modeldoc_part_unet")
            c["vae"] = gr.Dropdown(PART_ACTIONS, value="convert", label="VAE", elem_id="modeldoc_part_vae")
            c["clip"] = gr.Dropdown(PART_ACTIONS, value="convert", label="Text encoders", elem_id="modeldoc_part_clip")
        c["bake_vae"] = gr.Dropdown(_vae_labels(host), value=NO_VAE, label="Bake in a VAE (replaces the model's own)",
                                    elem_id="modeldoc_bake_vae")
    with gr.Row():
        c["format"] = gr.Radio(["safetensors", "ckpt"], value=defaults.format, label="Format", elem_id="modeldoc_format")
        c["name"] = gr.Textbox(label="Output file name", elem_id="modeldoc_out_name", scale=2)
        c["folder"] = gr.Textbox(value=folder, label="Output folder", elem_id="modeldoc_out_folder", scale=3)
    with gr.Row():
        c["overwrite"] = gr.Checkbox(value=False, label="Overwrite an existing file", elem_id="modeldoc_overwrite")
        c["verify"] = gr.Checkbox(value=defaults.verify, label="Verify after writing (re-read every tensor)",
                                  elem_id="modeldoc_verify")
    with gr.Row():
        c["preview"] = gr.Button("Preview plan", elem_id="modeldoc_convert_preview")
        c["write"] = gr.Button("Write", variant="primary", elem_id="modeldoc_convert_write")
        c["interrupt"] = gr.Button("Interrupt", elem_id="modeldoc_convert_interrupt")
    with gr.Row():
        c["load"] = gr.Button("Load the new model", visible=False, elem_id="modeldoc_load_new")
        c["inspect_new"] = gr.Button("Inspect the new file", visible=False, elem_id="modeldoc_inspect_new")
    c["result"] = gr.HTML(elem_id="modeldoc_convert_result")
    return c


_CONVERT_FIELDS = ("precision", "prune", "fix_clip", "keep_junk", "unet", "vae", "clip", "bake_vae", "format",
                   "strip_metadata", "folder", "name", "overwrite", "verify")


def _request(host: Host, value: str | None, *fields: Any) -> actions.ConvertRequest:
    args = dict(zip(_CONVERT_FIELDS, fields))
    source = actions.loaded_or_picked(host, value)
    if not source:
        raise ModelDocError("no model picked and none loaded: pick one from the list or paste a path")
    bake = args.pop("bake_vae")
    bake_path = host.resolve(bake) if bake and bake != NO_VAE else None
    return actions.ConvertRequest(source=source, bake_vae=bake_path, **args)


def _wire_convert(host: Host, c: dict[str, Any], model: Any, session: Any, task_id: Any, show: Any,
                  inspect_outputs: list[Any]) -> None:
    fields = [c[name] for name in _CONVERT_FIELDS]
    hide = gr.update(visible=False)

    def do_preview(value: str | None, *values: Any) -> str:
        html, error = actions.guard(lambda: actions.preview_convert(_request(host, value, *values)))
        return error or html

    def do_write(job: JobContext, sess: Session, value: str | None, *values: Any) -> list[Any]:
        try:
            request = _request(host, value, *values)
            result = actions.run_convert(request, job)
        except Cancelled as exc:
            return [hide, hide, views.message_html(str(exc), "warning")]
        except ModelDocError as exc:
            return [hide, hide, views.message_html(str(exc), "error")]
        host.refresh()
        sess.written = result["output"]
        label = actions.label_for(result["output"], host.checkpoints())
        can_load = host.can_load_models and label is not None
        return [gr.update(visible=can_load), gr.update(visible=True), views.result_html(result, listed_as=label)]

    def do_load(sess: Session) -> str:
        if not sess.written:
            return views.message_html("Nothing written yet in this session.", "warning")
        try:
            return views.message_html(host.load_checkpoint(sess.written), "ok")
        except ModelDocError as exc:
            return views.message_html(str(exc), "error")

    def do_inspect_new(sess: Session) -> list[Any]:
        path = sess.written
        label = (actions.label_for(path, host.checkpoints()) or path) if path else None
        out = show(path, sess, label)
        out[0] = gr.update(choices=_labels(host), value=label)
        out[-1] = gr.update()  # keep "Wrote ..." in view
        return out

    def do_interrupt(sess: Session) -> None:
        host.interrupt(sess)

    c["preview"].click(do_preview, [model, *fields], [c["result"]])
    outputs = [c["load"], c["inspect_new"], c["result"]]
    c["write"].click(host.wrap_job(do_write, len(outputs), len(outputs) - 1), [task_id, session, model, *fields],
                     outputs, **js_kwargs(host.job_js))
    c["interrupt"].click(do_interrupt, [session], None, queue=False)
    c["load"].click(do_load, [session], [c["result"]])
    c["inspect_new"].click(do_inspect_new, [session], inspect_outputs)


# --- The loaded model ----------------------------------------------------------------------------

def _loaded_panel(host: Host) -> dict[str, Any]:
    p: dict[str, Any] = {}
    gr.Markdown(
        "Checks the CLIP position_ids of the model the program has **in memory**, and can reset them there "
        "without reloading or writing a file. The fix lasts until the model is reloaded; repair the file to make it permanent.",
        elem_id="modeldoc_loaded_intro",
    )
    with gr.Row():
        p["check"] = gr.Button("Check loaded model's CLIP", elem_id="modeldoc_live_check")
        p["fix"] = gr.Button("Fix in memory", elem_id="modeldoc_live_fix")
    p["result"] = gr.HTML(elem_id="modeldoc_live_result")
    return p


def _wire_loaded(host: Host, p: dict[str, Any], session: Any) -> None:
    def run(fix: bool) -> str:
        try:
            return views.live_clip_html(host.live_clip(fix=fix))
        except ModelDocError as exc:
            return views.message_html(str(exc), "error")

    p["check"].click(lambda _s: run(False), [session], [p["result"]])
    p["fix"].click(lambda _s: run(True), [session], [p["result"]])


def offline_theme() -> Any:
    """The default theme with system fonts: the page then loads nothing from the internet."""
    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    return gr.themes.Default(font=system, font_mono=["ui-monospace", "Consolas", "monospace"])


def read_css() -> str:
    """The tab's stylesheet (``style.css`` at the extension root, which the WebUI loads itself)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "style.css")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""
