"""Records registrations like AUTOMATIC1111's ``modules.script_callbacks``."""

callbacks: dict[str, list] = {"ui_tabs": [], "ui_settings": [], "app_started": [], "model_loaded": []}


def on_ui_tabs(callback, *, name=None):
    callbacks["ui_tabs"].append(callback)


def on_ui_settings(callback, *, name=None):
    callbacks["ui_settings"].append(callback)


def on_app_started(callback, *, name=None):
    callbacks["app_started"].append(callback)


def on_model_loaded(callback, *, name=None):
    callbacks["model_loaded"].append(callback)


def clear():
    for registered in callbacks.values():
        registered.clear()
