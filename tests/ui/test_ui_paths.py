"""The WebUI's routes and the right-click on model files in Chinese and Cyrillic folders whose
paths are over 260 characters: inspected by path and by the title the dropdown shows."""

from __future__ import annotations

import os

import pytest
from test_ui_webui_routes import _app  # noqa: F401
from test_ui_webui_script import DAMAGED, webui  # noqa: F401  (the fixture)

pytest.importorskip("fastapi")


def _long_copy(models):
    """A link to the damaged merge under ``Stable-diffusion/<long Chinese/Cyrillic folders>/``."""
    folder = models.joinpath("Stable-diffusion", *(["动漫 模型 Аниме " + "ж" * 30] * 5))
    folder.mkdir(parents=True)
    path = folder / "合并 смесь v2.safetensors"
    os.link(models / "Stable-diffusion" / DAMAGED, path)
    assert len(str(path)) > 260
    return path


def test_routes_inspect_long_unicode_paths_by_path_and_by_title(webui):
    module, models = webui
    from modules import sd_models

    path = _long_copy(models)
    sd_models.list_models()
    client = _app()
    for response in (client.get("/modeldoc/inspect", params={"path": str(path)}),
                     client.post("/modeldoc/inspect", json={"path": str(path)})):
        assert response.status_code == 200, response.text
        assert response.json()["path"] == str(path)
    # the right-click sends the dropdown's title: "subfolders/name.safetensors [hash]"
    info = next(i for i in sd_models.checkpoints_list.values() if i.filename == str(path))
    response = client.get("/modeldoc/inspect", params={"name": info.title})
    assert response.status_code == 200, response.text
    assert response.json()["path"] == str(path)
    # and the tab's picker, which the right-click fills with that title
    assert module.WebUIHost().resolve(info.title) == str(path)
