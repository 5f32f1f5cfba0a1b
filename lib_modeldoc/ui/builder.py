"""The Model Doctor tab as a ``gr.Blocks``, built from the engine for any :class:`Host`.

The same function builds the WebUI tab (``scripts/modeldoc.py``) and the standalone page
(:mod:`lib_modeldoc.ui.standalone`). Works with gradio 3.41 and 4.x (see :mod:`.compat`).
Per-user state lives in a ``gr.State`` holding a :class:`~lib_modeldoc.ui.host.Session`.

Each action panel (fix/prune/convert, export, replace, build) is one function in
:mod:`.panels`; :func:`_wire_job` gives every panel the same preview, write (through the host's
queue and progress bar), interrupt, load and inspect buttons. The jobs that only read (inspect
with a scan or fingerprints, hashes, compare) go through the same queue with :func:`_wire_read`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..errors import Cancelled, ModelDocError, PlanError
from ..io.paths import same_file
from ..report.messages import text
from . import actions, metadata, views
from .compat import hidden_textbox, js_call, js_kwargs
from .host import Host, JobContext, Session
from .panels import (
    Panel, build_panel, convert_panel, export_panel, files_panel, labels, loaded_panel, metadata_panel, replace_panel,
)
from .wording import tab_error

__all__ = ["build_ui", "TAB_TITLE", "TAB_ID", "JOB_JS", "read_css", "read_script", "offline_theme"]

TAB_TITLE = "Model Doctor"
TAB_ID = "modeldoc"
# The page's job starter (javascript/modeldoc.js): a task id for the job, and in a WebUI its progress bar;
# and the interrupt buttons' helper, which names the task id of the job their section started.
JOB_JS = "modeldoc_start_job"
INTERRUPT_JS = "modeldoc_interrupt_job"
_INTRO_REST = ("Nothing is written until you press a **Write** button; **Preview plan** shows what will be written "
               "and its size first. The boxes below Inspect read the whole file (slower).")


def intro(host: Host) -> str:
    """The tab's first line, for the program it runs in: a WebUI inspects its loaded model when
    nothing is picked; the standalone page serves a folder and has no loaded model."""
    if host.in_memory:
        start = ("Pick a checkpoint (or paste any path) and press **Inspect**. With nothing picked, the loaded "
                 "model's file is inspected.")
    else:
        start = "Pick a model from the served folder (or paste a path inside it) and press **Inspect**."
    return f"{start} {_INTRO_REST}"


def build_ui(host: Host, *, css: str | None = None, title: str = TAB_TITLE, theme: Any = None,
             script: str | None = None, heading: str | None = None) -> gr.Blocks:
    """Build the tab. ``css``, ``theme``, ``script`` (``javascript/modeldoc.js``, run when the
    page loads) and ``heading`` are for the standalone page: a WebUI brings its own styles, loads
    the script itself and names the tab."""
    loaded = host.loaded_checkpoint() or host.start_model
    loaded_label = actions.label_for(loaded, host.checkpoints()) if loaded else None
    blocks_kwargs: dict[str, Any] = {"analytics_enabled": False, "title": title}
    if css:
        blocks_kwargs["css"] = css
    if theme is not None:
        blocks_kwargs["theme"] = theme
    with gr.Blocks(**blocks_kwargs) as blocks:
        session = gr.State(Session())
        task_id = hidden_textbox("modeldoc_task_id")
        if heading:
            gr.Markdown(f"# {heading}", elem_id="modeldoc_heading")
        gr.Markdown(intro(host), elem_id="modeldoc_intro")
        view = _inspect_area(host, loaded_label or loaded)
        tabs = _action_tabs(host)
        # The right-click entry's way in: JavaScript writes a checkpoint title and clicks.
        with gr.Row(elem_id="modeldoc_bridge"):
            view.bridge_value = hidden_textbox("modeldoc_js_value")
            view.bridge_button = gr.Button("inspect", elem_id="modeldoc_js_inspect", elem_classes=["modeldoc-hidden"])

        inspector = _Inspector(host, view, tabs)
        inspector.wire(blocks, session, task_id)
        for panel in tabs.panels:
            _wire_job(host, panel, view.model, session, task_id, inspector.show, inspector.outputs, inspector.lists)
        _wire_files(host, tabs.files, view.model, session, task_id)
        _wire_metadata(host, tabs.meta, view.model, session, task_id, inspector.lists)
        if tabs.live is not None:
            _wire_loaded(host, tabs.live, session)
        if script:
            blocks.load(None, None, None, **js_kwargs("() => {\n" + script + "\n}"))
    # The WebUI would otherwise freeze every labelled value into ui-config.json at first start and
    # override the settings section (and the loaded model) from then on.
    for block in blocks.blocks.values():
        block.do_not_save_to_config = True
    return blocks


# --- layout --------------------------------------------------------------------------------------

@dataclass
class _InspectView:
    """The model picker, the Inspect buttons and options, and what an inspection fills in."""

    model: Any
    refresh: Any
    inspect: Any
    deep: Any  # the same button once an option that reads the whole file is ticked: it runs as a job
    loaded: Any
    scan: Any
    identify: Any
    vae_test: Any
    deep_interrupt: Any
    deep_progress: Any
    status: Any
    leftovers: Any
    verdict: Any
    chart: Any
    details: Any
    metadata: Any
    bridge_value: Any = None
    bridge_button: Any = None


@dataclass
class _ActionTabs:
    """The action panels under the inspection."""

    convert: Panel
    export: Panel
    replace: Panel
    build: Panel
    files: dict[str, Any]
    meta: dict[str, Any]
    live: dict[str, Any] | None

    @property
    def panels(self) -> list[Panel]:
        return [self.convert, self.export, self.replace, self.build]


def _inspect_area(host: Host, picked: str | None) -> _InspectView:
    with gr.Row(elem_id="modeldoc_picker_row"):
        model = gr.Dropdown(
            choices=labels(host), value=picked, allow_custom_value=True,
            label="Model — a checkpoint, VAE or LoRA from the lists, or any path", elem_id="modeldoc_model", scale=8,
        )
        refresh = gr.Button("↻", elem_id="modeldoc_refresh", elem_classes=["modeldoc-tool"], scale=0, min_width=44)
        inspect_button = gr.Button("Inspect", variant="primary", elem_id="modeldoc_inspect", scale=1, min_width=110)
        deep_button = gr.Button("Inspect", variant="primary", elem_id="modeldoc_inspect_deep", scale=1, min_width=110,
                                visible=False)
        loaded_button = gr.Button("Loaded model", elem_id="modeldoc_inspect_loaded", scale=1, min_width=130,
                                  visible=host.in_memory)
    with gr.Row(elem_id="modeldoc_inspect_options"):
        scan = gr.Checkbox(value=False, label="Scan every value (NaN / Inf / zero)", elem_id="modeldoc_scan")
        identify = gr.Checkbox(value=False, label="Identify known components (fingerprints, toolkit metric)",
                               elem_id="modeldoc_identify")
        vae_test = gr.Checkbox(value=False, label="Test the VAE (runs it on a test image: fp16 overflow, PSNR)",
                               elem_id="modeldoc_vae_test")
        deep_interrupt = gr.Button("Interrupt", elem_id="modeldoc_inspect_interrupt", visible=False, scale=0,
                                   min_width=110)
    deep_progress = gr.HTML(elem_id="modeldoc_inspect_progress", elem_classes=["modeldoc-job-result"])
    status = gr.HTML(elem_id="modeldoc_status")
    leftovers = gr.HTML(views.leftovers_html(actions.leftovers(host), actions.host_language(host)), elem_id="modeldoc_leftovers")
    verdict = gr.HTML(elem_id="modeldoc_verdict")
    chart = gr.HTML(elem_id="modeldoc_chart")
    with gr.Accordion("Details", open=False, elem_id="modeldoc_details_box"):
        details = gr.HTML(elem_id="modeldoc_details")
    with gr.Accordion("Metadata", open=False, elem_id="modeldoc_metadata_box"):
        metadata = gr.JSON(elem_id="modeldoc_metadata")
    return _InspectView(model, refresh, inspect_button, deep_button, loaded_button, scan, identify, vae_test,
                        deep_interrupt, deep_progress, status, leftovers, verdict, chart, details, metadata)


def _action_tabs(host: Host) -> _ActionTabs:
    defaults = host.defaults()
    folders = host.folders()
    with gr.Tabs(elem_id="modeldoc_actions"):
        with gr.Tab("Fix / prune / convert", elem_id="modeldoc_tab_convert"):
            convert = convert_panel(host, defaults, folders)
        with gr.Tab("Components", elem_id="modeldoc_tab_components"):
            gr.Markdown("Export a part as its own file, replace a part from another file (a VAE from the VAE "
                        "list bakes it in), or build a checkpoint from part files. Parts are checked for fit first.")
            with gr.Accordion("Export a part", open=True, elem_id="modeldoc_export_box"):
                export = export_panel(host, defaults, folders)
            with gr.Accordion("Replace a part / bake a VAE", open=False, elem_id="modeldoc_replace_box"):
                replace = replace_panel(host, defaults, folders)
            with gr.Accordion("Build a checkpoint from parts", open=False, elem_id="modeldoc_build_box"):
                build = build_panel(host, defaults, folders)
        with gr.Tab("Hashes / compare", elem_id="modeldoc_tab_files"):
            files = files_panel(host)
        with gr.Tab("Metadata", elem_id="modeldoc_tab_metadata"):
            meta = metadata_panel(host)
        live = None
        if host.in_memory:
            with gr.Tab("Loaded model", elem_id="modeldoc_tab_loaded"):
                live = loaded_panel(host)
    return _ActionTabs(convert, export, replace, build, files, meta, live)


# --- what the picker and Inspect do --------------------------------------------------------------

class _Inspector:
    """The picker's events: inspect (quick, as a job, the loaded model, from the page's script),
    refresh the lists, and a page load. Every inspection fills :attr:`outputs`."""

    def __init__(self, host: Host, view: _InspectView, tabs: _ActionTabs) -> None:
        self.host = host
        self.view = view
        self.hash_cache = getattr(host, "hash_cache", None)  # optional: only a WebUI has one
        panels = tabs.panels
        self.outputs = [view.model, view.status, view.verdict, view.chart, view.details, view.metadata,
                        tabs.convert.fields["name"], *[p.result for p in panels]]
        self.clear = ["" for _ in panels]
        # The model picker first, then every other list of files (a written file joins them).
        self.lists: list[tuple[Any, Callable[[Host], list[str]]]] = (
            [(view.model, labels)] + [d for p in panels for d in p.dropdowns] + [(tabs.files["other"], labels)])
        self.settings = [s for p in panels for s in p.settings]

    def wire(self, blocks: gr.Blocks, session: Any, task_id: Any) -> None:
        v = self.view
        v.inspect.click(self.do_inspect, [v.model], self.outputs)
        for box in (v.scan, v.identify, v.vae_test):
            box.change(self.do_options, [v.scan, v.identify, v.vae_test], [v.inspect, v.deep, v.deep_interrupt],
                       queue=False)
        _wire_job_button(self.host, "inspect", v.deep, v.deep_interrupt, self.do_inspect_deep,
                         [task_id, session, v.model, v.scan, v.identify, v.vae_test], [*self.outputs, v.deep_progress])
        v.loaded.click(self.do_inspect_loaded, None, self.outputs)
        v.bridge_button.click(self.do_bridge, [v.bridge_value], self.outputs)
        v.refresh.click(self.do_refresh, [v.model], [c for c, _ in self.lists] + [v.leftovers])
        blocks.load(self.on_page_load, None, [c for c, _ in self.lists] + [c for c, _ in self.settings], queue=False)

    def show(self, path: str | None, shown: str | None,
             inspect: Callable[[str], actions.Inspection] | None = None) -> list[Any]:
        """Inspect ``path`` and fill :attr:`outputs`; ``shown`` goes into the picker."""
        inspect = inspect or (lambda p: actions.inspect_file(p, hash_cache=self.hash_cache, host=self.host))
        keep = gr.update(value=shown) if shown else gr.update()
        if not path:
            message = views.message_html(text("tab.no_model", actions.host_language(self.host)), "warning")
            return [gr.update(), message, "", "", "", None, gr.update(), *self.clear]
        found, error = actions.guard(lambda: inspect(path), actions.host_language(self.host))
        if error:
            return [keep, error, "", "", "", None, gr.update(), *self.clear]
        return [keep, "", found.verdict, found.chart, found.details, found.metadata,
                actions.default_output_name(path), *self.clear]

    def refused(self, exc: ModelDocError) -> list[Any]:
        return [gr.update(), actions.error_html(exc, language=actions.host_language(self.host)), "", "", "", None, gr.update(),
                *self.clear]

    def _shown(self, value: str | None, path: str | None) -> str | None:
        """What the picker shows after inspecting: unchanged when the user picked, else the loaded model."""
        if (value or "").strip() or not path:
            return None
        return actions.label_for(path, self.host.checkpoints()) or path

    def do_inspect(self, value: str | None) -> list[Any]:
        try:
            path = actions.loaded_or_picked(self.host, value)
        except ModelDocError as exc:  # a path the host does not serve
            return self.refused(exc)
        return self.show(path, self._shown(value, path))

    def do_inspect_deep(self, job: JobContext, _session: Session, value: str | None, scan: bool, identify: bool,
                        vae: bool) -> list[Any]:
        try:
            path = actions.loaded_or_picked(self.host, value)
        except ModelDocError as exc:
            return [*self.refused(exc), ""]
        progress = actions.job_progress(job, "inspect")
        vae_test = actions.vae_test_options(self.host) if vae else None
        out = self.show(path, self._shown(value, path), lambda p: actions.inspect_file(
            p, scan=bool(scan), identify_components=bool(identify), progress=progress, vae_test=vae_test,
            hash_cache=self.hash_cache, host=self.host))
        return [*out, ""]

    def do_options(self, scan: bool, identify: bool, vae: bool) -> list[Any]:
        deep = bool(scan or identify or vae)
        return [gr.update(visible=not deep), gr.update(visible=deep), gr.update(visible=deep)]

    def do_inspect_loaded(self) -> list[Any]:
        path = self.host.loaded_checkpoint()
        return self.show(path, self._shown(None, path))

    def do_bridge(self, value: str | None) -> list[Any]:
        try:
            path = self.host.resolve(value or "")
        except ModelDocError as exc:
            return self.refused(exc)
        label = actions.label_for(path, self.host.checkpoints()) if path else None
        return self.show(path, label or value)

    def _lists_now(self, value: str | None) -> list[Any]:
        return ([gr.update(choices=labels(self.host), value=value)]
                + [gr.update(choices=f(self.host)) for _, f in self.lists[1:]])

    def do_refresh(self, value: str | None) -> list[Any]:
        self.host.refresh()
        return self._lists_now(value) + [views.leftovers_html(actions.leftovers(self.host), actions.host_language(self.host))]

    def on_page_load(self) -> list[Any]:
        # A page (re)load shows the model loaded now and the settings as they are now, not as
        # they were when the WebUI started; and the lists as the folders hold them now.
        host = self.host
        host.refresh()
        now = host.loaded_checkpoint() or host.start_model
        label = (actions.label_for(now, host.checkpoints()) or now) if now else None
        defaults, folders = host.defaults(), host.folders()
        return self._lists_now(label) + [gr.update(value=value_of(defaults, folders)) for _, value_of in self.settings]


# --- what every panel's buttons do ---------------------------------------------------------------

def _wire_job(host: Host, panel: Panel, model: Any, session: Any, task_id: Any, show: Callable[..., list[Any]],
              inspect_outputs: list[Any], lists: list[tuple[Any, Callable[[Host], list[str]]]]) -> None:
    """``lists``: the model picker first, then every other list of files (a written file joins them)."""
    hide = gr.update(visible=False)
    b = panel.buttons
    same = [gr.update() for _ in lists]

    def do_preview(value: str | None, *values: Any) -> str:
        html, error = actions.guard(lambda: actions.preview(panel.request(host, value, *values), host),
                                     actions.host_language(host))
        return error or html

    def do_write(job: JobContext, sess: Session, value: str | None, *values: Any) -> list[Any]:
        try:
            result = actions.run(panel.request(host, value, *values), job, host)
        except Cancelled as exc:
            return [hide, hide, *same, actions.error_html(exc, "warning", actions.host_language(host))]
        except ModelDocError as exc:
            return [hide, hide, *same, actions.error_html(exc, language=actions.host_language(host))]
        host.refresh()
        sess.written = result["output"]
        label = actions.label_for(result["output"], host.checkpoints() + host.vaes())
        can_load = host.can_load_models and actions.label_for(result["output"], host.checkpoints()) is not None
        stamp = str(os.stat(result["output"]).st_mtime_ns) if os.path.exists(result["output"]) else ""
        listed = [gr.update(choices=labels(host), value=value)] + [gr.update(choices=f(host)) for _, f in lists[1:]]
        return [gr.update(visible=can_load), gr.update(visible=True), *listed,
                views.result_html(result, listed_as=label, stamp=stamp, language=actions.host_language(host))]

    def do_load(sess: Session) -> str:
        if not sess.written:
            return views.message_html(text("tab.nothing_written", actions.host_language(host)), "warning")
        try:
            message = host.load_checkpoint(sess.written)
        except ModelDocError as exc:
            return actions.error_html(exc, language=actions.host_language(host))
        title = actions.label_for(host.loaded_checkpoint() or sess.written, host.checkpoints())
        return views.loaded_html(message, title, str(time.time_ns()))

    def do_inspect_new(sess: Session) -> list[Any]:
        path = sess.written
        label = (actions.label_for(path, host.checkpoints() + host.vaes()) or path) if path else None
        out = show(path, label)
        out[0] = gr.update(choices=labels(host), value=label)
        mine = next(i for i, c in enumerate(inspect_outputs) if c is panel.result)
        out[mine] = gr.update()  # keep "Wrote ..." in view
        return out

    b["preview"].click(do_preview, [model, *panel.inputs], [panel.result])
    outputs = [b["load"], b["inspect_new"], *[c for c, _ in lists], panel.result]
    _wire_job_button(host, panel.prefix, b["write"], b["interrupt"], do_write, [task_id, session, model, *panel.inputs],
                     outputs)
    b["load"].click(do_load, [session], [panel.result])
    b["inspect_new"].click(do_inspect_new, [session], inspect_outputs)


def _wire_read(host: Host, name: str, button: Any, interrupt: Any, inputs: list[Any], result: Any,
               action: Callable[..., str]) -> None:
    """A job that reads files and shows one HTML result: queue, progress bar, interrupt."""

    def do_read(job: JobContext, sess: Session, *values: Any) -> list[Any]:
        try:
            return [action(job, *values)]
        except Cancelled as exc:
            return [actions.error_html(exc, "warning", actions.host_language(host))]
        except ModelDocError as exc:
            return [actions.error_html(exc, language=actions.host_language(host))]

    _wire_job_button(host, name, button, interrupt, do_read, inputs, [result])


def _wire_job_button(host: Host, name: str, button: Any, interrupt: Any, fn: Callable[..., list[Any]],
                     inputs: list[Any], outputs: list[Any]) -> None:
    """``button`` runs ``fn(job, session, *values)`` as the job ``modeldoc_<name>``; ``interrupt`` stops it,
    queued or running.

    ``inputs`` start with the task id box and the session; the last output shows progress and the
    result. The page's job starter fills in the task id; the interrupt button sends the id of the
    job its section started, so a job interrupted while it waits in the queue never runs.
    gradio's own progress overlay is hidden: the host shows one indicator at the button.
    """
    progress_index = len(outputs) - 1

    def run(job: JobContext, sess: Session, *values: Any) -> list[Any]:
        if job.cancelled():
            out: list[Any] = [gr.update() for _ in outputs]
            out[progress_index] = views.message_html(text("tab.interrupted_early", actions.host_language(host)), "warning")
            return out
        return fn(job, sess, *values)

    run.__name__ = f"modeldoc_{name}"
    button.click(host.wrap_job(run, len(outputs), progress_index), inputs, outputs, show_progress="hidden",
                 **js_call(JOB_JS, len(inputs)))
    task_id, session = inputs[:2]
    interrupt.click(lambda task, sess: host.interrupt(sess, task or None), [task_id, session], None, queue=False,
                    show_progress="hidden", **js_call(INTERRUPT_JS, 2))


def _wire_files(host: Host, p: dict[str, Any], model: Any, session: Any, task_id: Any) -> None:
    def picked(value: str | None) -> str:
        return _picked(host, value)

    def hashes(job: JobContext, value: str | None) -> str:
        return actions.hashes(picked(value), job, getattr(host, "hash_cache", None), actions.host_language(host))

    def compare(job: JobContext, value: str | None, other: str | None) -> str:
        second = host.resolve(other or "")
        if not second:
            raise tab_error(ModelDocError, "tab.error.pick_second")
        return actions.compare(picked(value), second, job, actions.host_language(host))

    _wire_read(host, "hash", p["hash"], p["hash_interrupt"], [task_id, session, model], p["hash_result"], hashes)
    _wire_read(host, "compare", p["compare"], p["compare_interrupt"], [task_id, session, model, p["other"]],
               p["compare_result"], compare)


def _picked(host: Host, value: str | None) -> str:
    path = actions.loaded_or_picked(host, value)
    if not path:
        raise tab_error(ModelDocError, "tab.error.no_model")
    return path


def _wire_metadata(host: Host, p: dict[str, Any], model: Any, session: Any, task_id: Any,
                   lists: list[tuple[Any, Callable[[Host], list[str]]]]) -> None:
    """Load metadata fills the form; Save writes it (a new file, or in place) and shows AutoV2 before and after."""
    boxes = list(p["fields"].values())
    names = list(p["fields"])
    form_outputs = [*boxes, p["other"], p["recipe"], p["name"], p["status"]]

    def do_load(job: JobContext, sess: Session, value: str | None) -> list[Any]:
        keep = [gr.update() for _ in form_outputs[:-1]]
        try:
            form = metadata.load_form(_picked(host, value), host, job)
        except Cancelled as exc:
            return [*keep, actions.error_html(exc, "warning", actions.host_language(host))]
        except ModelDocError as exc:
            return [*keep, actions.error_html(exc, language=actions.host_language(host))]
        sess.metadata_of = form.path
        return [*(form.fields[n] for n in names), form.other_json, form.recipe_html, form.output_name,
                metadata.loaded_html(form, actions.host_language(host))]

    def do_save(job: JobContext, sess: Session, value: str | None, *values: Any) -> list[Any]:
        same = [gr.update() for _ in lists]
        fields, (other, name, in_place) = dict(zip(names, values)), values[len(names):]
        try:
            source = _picked(host, value)
            if not sess.metadata_of or not same_file(sess.metadata_of, source):
                raise tab_error(PlanError, "tab.meta.load_first")
            result = metadata.save_form(source, fields, other, name, bool(in_place), host, job)
        except Cancelled as exc:
            return [*same, actions.error_html(exc, "warning", actions.host_language(host))]
        except ModelDocError as exc:
            return [*same, actions.error_html(exc, language=actions.host_language(host))]
        host.refresh()
        sess.written = None if in_place else result.output
        listed = [gr.update(choices=labels(host), value=value)] + [gr.update(choices=f(host)) for _, f in lists[1:]]
        stamp = str(os.stat(result.output).st_mtime_ns)
        return [*listed, metadata.saved_html(result, in_place=bool(in_place), stamp=stamp,
                                                 language=actions.host_language(host))]

    _wire_job_button(host, "meta_load", p["load"], p["load_interrupt"], do_load, [task_id, session, model],
                     form_outputs)
    _wire_job_button(host, "meta_save", p["save"], p["save_interrupt"], do_save,
                     [task_id, session, model, *boxes, p["other"], p["name"], p["in_place"]],
                     [*(c for c, _ in lists), p["result"]])


def _wire_loaded(host: Host, p: dict[str, Any], session: Any) -> None:
    def run(fix: bool) -> str:
        try:
            return views.live_clip_html(host.live_clip(fix=fix))
        except ModelDocError as exc:
            return actions.error_html(exc, language=actions.host_language(host))

    p["check"].click(lambda _s: run(False), [session], [p["result"]])
    p["fix"].click(lambda _s: run(True), [session], [p["result"]])


def offline_theme() -> Any:
    """The default theme with system fonts: the page then loads no fonts from the internet."""
    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    return gr.themes.Default(font=system, font_mono=["ui-monospace", "Consolas", "monospace"])


_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read(*parts: str) -> str:
    try:
        with open(os.path.join(_ROOT, *parts), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def read_css() -> str:
    """The tab's stylesheet (``style.css`` at the extension root, which the WebUI loads itself)."""
    return _read("style.css")


def read_script() -> str:
    """The tab's script (``javascript/modeldoc.js``, which the WebUI loads itself)."""
    return _read("javascript", "modeldoc.js")
