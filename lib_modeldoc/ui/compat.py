"""The few places where gradio 3.41 (AUTOMATIC1111 1.10) and gradio 4.x (Forge) differ.

The tab uses constructor keywords both versions accept, ``gr.update(...)`` for every update,
no ``.style()``, no ``gr.Box``, no ``(label, value)`` choices, and no ``elem_classes`` on
layout blocks (3.41 lacks it). What is left is here.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

__all__ = ["GRADIO_MAJOR", "js_kwargs", "js_call", "enable_queue", "hidden_textbox"]

GRADIO_MAJOR = int(gr.__version__.split(".")[0])


def js_kwargs(function: str | None) -> dict[str, Any]:
    """The keyword that runs a JavaScript function (a name or its source) before an event:
    ``_js`` (3.x) or ``js`` (4.x)."""
    if not function:
        return {}
    return {"_js": function} if GRADIO_MAJOR < 4 else {"js": function}


def js_call(function_name: str, n_inputs: int) -> dict[str, Any]:
    """Run the page's ``function_name(n_inputs, ...values)`` before an event; it returns the inputs.

    gradio 4 hands a ``js=`` function the values of the inputs *and then the outputs*, and takes
    what it returns as the inputs: more values than inputs leave a ``gr.State`` input empty and
    shift every later value by one. gradio 3.41 passes the same values and ignores extra ones.
    So the function is told how many inputs there are and returns exactly that many.
    """
    return js_kwargs(f"(...args) => {function_name}({int(n_inputs)}, ...args)")


def enable_queue(demo: gr.Blocks, concurrency: int) -> gr.Blocks:
    """Turn on the queue with ``concurrency`` events running at once."""
    if GRADIO_MAJOR < 4:
        return demo.queue(concurrency_count=concurrency)
    return demo.queue(default_concurrency_limit=concurrency)


def hidden_textbox(elem_id: str) -> gr.Textbox:
    """A textbox JavaScript can write to. ``visible=False`` would leave it out of the page in
    gradio 4, so it stays visible and the stylesheet hides it (``.modeldoc-hidden``)."""
    return gr.Textbox(value="", show_label=False, container=False, elem_id=elem_id, elem_classes=["modeldoc-hidden"])
