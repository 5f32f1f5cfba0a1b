"""The few places where gradio 3.41 (AUTOMATIC1111 1.10) and gradio 4.x (Forge) differ.

The tab uses constructor keywords both versions accept, ``gr.update(...)`` for every update,
no ``.style()``, no ``gr.Box``, no ``(label, value)`` choices, and no ``elem_classes`` on
layout blocks (3.41 lacks it). What is left is here.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

__all__ = ["GRADIO_MAJOR", "js_kwargs", "enable_queue", "hidden_textbox"]

GRADIO_MAJOR = int(gr.__version__.split(".")[0])


def js_kwargs(function_name: str | None) -> dict[str, Any]:
    """The keyword that runs a JavaScript function before an event: ``_js`` (3.x) or ``js`` (4.x)."""
    if not function_name:
        return {}
    return {"_js": function_name} if GRADIO_MAJOR < 4 else {"js": function_name}


def enable_queue(demo: gr.Blocks, concurrency: int) -> gr.Blocks:
    """Turn on the queue with ``concurrency`` events running at once."""
    if GRADIO_MAJOR < 4:
        return demo.queue(concurrency_count=concurrency)
    return demo.queue(default_concurrency_limit=concurrency)


def hidden_textbox(elem_id: str) -> gr.Textbox:
    """A textbox JavaScript can write to. ``visible=False`` would leave it out of the page in
    gradio 4, so it stays visible and the stylesheet hides it (``.modeldoc-hidden``)."""
    return gr.Textbox(value="", show_label=False, container=False, elem_id=elem_id, elem_classes=["modeldoc-hidden"])
