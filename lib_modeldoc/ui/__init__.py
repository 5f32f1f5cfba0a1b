"""The Model Doctor tab: one UI builder for the WebUI and the standalone server.

``host`` (the :class:`~lib_modeldoc.ui.host.Host` protocol), ``views`` and ``actions`` need no
gradio; ``builder``, ``compat`` and ``standalone`` import gradio, so nothing here imports them
eagerly (``python -m lib_modeldoc inspect`` never loads gradio).
"""
