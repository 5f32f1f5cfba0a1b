"""``queue_lock`` and ``wrap_gradio_gpu_call`` with AUTOMATIC1111 1.10's contract."""

import html
import threading

from . import shared

queue_lock = threading.Lock()
calls = []
finished = set()  # task ids whose job has ended (what ./internal/progress reports as completed)


def wrap_gradio_gpu_call(func, extra_outputs=None):
    def f(*args, **kwargs):
        id_task = args[0] if args and isinstance(args[0], str) and args[0].startswith("task(") else None
        calls.append(id_task)
        try:
            with queue_lock:
                shared.state.begin(job=id_task)
                try:
                    res = list(func(*args, **kwargs))
                finally:
                    shared.state.end()
                    finished.add(id_task)
        except Exception as e:  # wrap_gradio_call: extra outputs + an error HTML
            return list(extra_outputs or [None]) + [f"<div class='error'>{html.escape(type(e).__name__ + ': ' + str(e))}</div>"]
        res[-1] += "<div class='performance'>time</div>"  # add_stats=True: the last output must be a string
        return res

    return f
