"""The WebUI's page around an extension tab, as far as Model Doctor touches it.

AUTOMATIC1111 1.10 (gradio 3.41) renders a checkpoint dropdown ``#setting_sd_model_checkpoint`` in
``#quicksettings`` with a refresh button ``#refresh_sd_model_checkpoint``; Forge (gradio 4.40) has
its own dropdown ``#quicksettings .model_selection`` refreshed by ``#forge_refresh_checkpoint``.
Both have the hidden ``#change_checkpoint`` button that ``selectCheckpoint()`` clicks, the
``#settings_json`` box, ``POST ./internal/progress`` and the extension tabs inside ``#tabs``
(``interface.render()`` in a ``TabItem``). Extension scripts go into ``<head>``: the test loads
``webui.js`` (the page-side contract) and the extension's ``javascript/*.js`` as init scripts.
The page's flavour follows the gradio version, as the real WebUIs do.
"""

from __future__ import annotations

import json
import os

import gradio as gr

from modules import call_queue, sd_models, shared

FORGE_FLAVOUR = int(gr.__version__.split(".")[0]) >= 4
WEBUI_JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "webui.js")
# AUTOMATIC1111's rule for the progress bar (shared/reference/webui-field-notes.md): absolutely
# positioned, 14 px above the top of its nearest positioned ancestor.
PAGE_CSS = """
.progressDiv { position: absolute; height: 20px; top: -14px; left: 0; width: 100%; background: #b4c0cc; }
.progressDiv .progress { height: 20px; background: #0060df; color: white; }
#change_checkpoint, #settings_json, #webui_dummy { display: none !important; }
"""


def checkpoint_titles() -> list[str]:
    """The dropdown's choices: titles ("name [hash]") in AUTOMATIC1111, names in Forge."""
    if FORGE_FLAVOUR:
        return [info.name for info in sd_models.checkpoints_list.values()]
    return list(sd_models.checkpoints_list)


def build_page(tab: gr.Blocks, title: str, elem_id: str, extension_css: str = "") -> gr.Blocks:
    """The page with ``tab`` as an extension tab after a built-in one."""
    with gr.Blocks(css=PAGE_CSS + extension_css, analytics_enabled=False, title="Stable Diffusion") as demo:
        with gr.Row(elem_id="quicksettings"):
            if FORGE_FLAVOUR:
                selected = sd_models.get_closet_checkpoint_match(shared.opts.data.get("sd_model_checkpoint"))
                checkpoint = gr.Dropdown(choices=checkpoint_titles(), value=selected.name if selected else None,
                                         label="Checkpoint", elem_classes=["model_selection"])
                refresh = gr.Button("↻", elem_id="forge_refresh_checkpoint")
            else:
                checkpoint = gr.Dropdown(choices=checkpoint_titles(), value=shared.opts.data.get("sd_model_checkpoint"),
                                         label="Stable Diffusion checkpoint", elem_id="setting_sd_model_checkpoint")
                refresh = gr.Button("↻", elem_id="refresh_sd_model_checkpoint")
        settings_json = gr.Textbox(value="{}", elem_id="settings_json", show_label=False)
        dummy = gr.Textbox(value="", elem_id="webui_dummy", show_label=False)
        change = gr.Button("Change checkpoint", elem_id="change_checkpoint")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("txt2img", elem_id="tab_txt2img"):
                gr.Markdown("txt2img")
            with gr.Tab(title, id=elem_id, elem_id=f"tab_{elem_id}"):
                tab.render()

        def refreshed() -> dict:
            sd_models.list_models()
            return gr.update(choices=checkpoint_titles())

        def change_checkpoint(value: str, _dummy: str) -> list:
            if FORGE_FLAVOUR:  # Forge maps what it is given to the name its dropdown lists
                info = sd_models.get_closet_checkpoint_match(value)
                value = info.name if info is not None else value
            else:
                shared.opts.set("sd_model_checkpoint", value)
            return [gr.update(value=value), json.dumps(shared.opts.data)]

        js = "function(v, d){ var res = desiredCheckpointName; desiredCheckpointName = ''; return [res || v, null]; }"
        refresh.click(refreshed, [], [checkpoint], queue=False)
        change.click(change_checkpoint, [checkpoint, dummy], [checkpoint, settings_json],
                     **({"js": js} if FORGE_FLAVOUR else {"_js": js}))
    return demo


def add_progress_route(app) -> None:
    """``POST ./internal/progress`` as the WebUI answers it for a task id (a subset)."""

    def progress(body: dict) -> dict:
        task = body.get("id_task")
        active = shared.state.job == task
        return {"active": active, "queued": not active and task not in call_queue.finished,
                "completed": task in call_queue.finished, "progress": None, "eta": None,
                "textinfo": shared.state.textinfo if active else None}

    app.add_api_route("/internal/progress", progress, methods=["POST"])


def launch(demo: gr.Blocks, port: int) -> None:
    """Queue and launch as the WebUI does: ``demo.queue(64)`` (gradio 3: 64 workers; gradio 4: the
    first positional is the status update rate, each event keeps gradio's concurrency limit of 1)."""
    if FORGE_FLAVOUR:
        demo.queue(64)
    else:
        demo.queue(concurrency_count=64)
    app, _, _ = demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                            inbrowser=False)
    add_progress_route(app)  # the app that serves, as on_app_started receives it
