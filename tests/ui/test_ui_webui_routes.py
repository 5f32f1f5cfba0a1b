"""The ``/modeldoc/*`` routes ``scripts/modeldoc.py`` adds to the WebUI's app: they are closed the way the
WebUI's own API is (``--api-auth``), a POST cannot come from another site, what the WebUI lists is
inspectable by name (symlinks too) while traversal is refused, and bad input is a one-line 4xx."""

from __future__ import annotations

import base64
import os

import pytest
import torch
from test_ui_webui_script import DAMAGED, FakeModel, webui  # noqa: F401  (the fixture)

from lib_modeldoc.samples import write_demo_sample

pytest.importorskip("fastapi")
from fastapi import FastAPI  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

symlinks = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt",
                              reason="symbolic links need privileges on Windows")


def _app(api_auth=None, cors=None, cors_regex=None):
    """The WebUI's app as webui.py builds it: its API (with its auth), then the extensions' routes."""
    from modules import script_callbacks, shared
    from modules.api.api import Api

    shared.cmd_opts.api_auth, shared.cmd_opts.cors_allow_origins = api_auth, cors
    shared.cmd_opts.cors_allow_origins_regex = cors_regex
    app = FastAPI()
    Api(app)
    for callback in script_callbacks.callbacks["app_started"]:
        callback(None, app)
    return TestClient(app)


def _basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _loaded_damaged_model():
    from modules import sd_models

    info = next(i for i in sd_models.checkpoints_list.values() if i.name == DAMAGED)
    model = FakeModel(info)
    sd_models.model_data.sd_model = model
    return info, model


def _ids(model):
    return model.cond_stage_model.transformer.text_model.embeddings.position_ids


def _one_line_error(response, *statuses):
    assert response.status_code in statuses, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail and "Traceback" not in detail, detail
    return detail


ROUTES = [
    ("GET", "/modeldoc/models", {}),
    ("GET", "/modeldoc/inspect", {"params": {"name": DAMAGED}}),
    ("POST", "/modeldoc/inspect", {"json": {"name": DAMAGED}}),
    ("POST", "/modeldoc/live-clip", {"params": {"fix": "true"}}),
]


def test_routes_answer_401_without_the_api_credentials_like_the_webui_api(webui):
    _, model = _loaded_damaged_model()
    client = _app(api_auth="user:pass,other:word")
    assert client.get("/sdapi/v1/options").status_code == 401  # the WebUI's own API, for comparison
    for method, url, kwargs in ROUTES:
        for headers in ({}, _basic("user", "wrong"), _basic("nobody", "pass")):
            got = client.request(method, url, headers=headers, **kwargs)
            assert got.status_code == 401, (method, url, headers, got.status_code)
            assert got.headers["www-authenticate"] == "Basic"
    assert not torch.equal(_ids(model), torch.arange(77).reshape(1, 77)), "a refused POST changed the loaded model"
    for method, url, kwargs in ROUTES:
        for headers in (_basic("user", "pass"), _basic("other", "word")):
            got = client.request(method, url, headers=headers, **kwargs)
            assert got.status_code == 200, (method, url, got.status_code, got.text)
    assert torch.equal(_ids(model), torch.arange(77).reshape(1, 77))


def test_routes_are_open_when_the_webui_api_is(webui):
    client = _app()
    assert client.get("/sdapi/v1/options").status_code == 200
    for method, url, kwargs in ROUTES:
        assert client.request(method, url, **kwargs).status_code == 200, (method, url)
    # a VAE by the name the WebUI lists it under, or by the tab's label
    for name in ("sd-vae-fp32.safetensors", "VAE: sd-vae-fp32.safetensors"):
        got = client.get("/modeldoc/inspect", params={"name": name})
        assert got.status_code == 200 and got.json()["architecture"] == "VAE", (name, got.text)


def test_a_post_from_another_site_is_refused(webui):
    _, model = _loaded_damaged_model()
    client = _app(cors="http://tool.example:9000")
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Origin": "http://testserver.evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "http://127.0.0.1:7860", "Sec-Fetch-Site": "cross-site"}):
        for url, kwargs in (("/modeldoc/live-clip", {"params": {"fix": "true"}}),
                            ("/modeldoc/inspect", {"json": {"name": DAMAGED}})):
            got = client.post(url, headers=headers, **kwargs)
            assert "another site" in _one_line_error(got, 403), headers
    assert not torch.equal(_ids(model), torch.arange(77).reshape(1, 77)), "a cross-site POST changed the model"
    # the WebUI's own page (same origin), an origin the user allowed with --cors-allow-origins, and
    # programs that send no Origin (curl, scripts) may post
    assert client.post("/modeldoc/inspect", json={"name": DAMAGED},
                       headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert client.post("/modeldoc/inspect", json={"name": DAMAGED},
                       headers={"Origin": "http://tool.example:9000"}).status_code == 200
    assert client.post("/modeldoc/live-clip", params={"fix": "true"}).json()["fixed"] == 1
    assert torch.equal(_ids(model), torch.arange(77).reshape(1, 77))
    regex = _app(cors_regex=r"https://.*\.trusted\.example")
    assert regex.post("/modeldoc/inspect", json={"name": DAMAGED},
                      headers={"Origin": "https://ui.trusted.example"}).status_code == 200
    assert regex.post("/modeldoc/inspect", json={"name": DAMAGED},
                      headers={"Origin": "https://ui.trusted.example.evil"}).status_code == 403


@pytest.fixture
def linked(webui, tmp_path):
    """Models on "another disk" linked into the WebUI's checkpoint folder: one file, one folder; plus links to
    files outside that the WebUI does not list."""
    module, models = webui
    from modules import sd_models

    disk = tmp_path / "disk"
    write_demo_sample(str(disk))
    (disk / "folder").mkdir()
    os.link(disk / DAMAGED, disk / "folder" / "in-linked-folder.safetensors")  # a plain file (a copy is slow)
    (disk / "secret.txt").write_text("not for the web")
    sd = models / "Stable-diffusion"
    os.symlink(disk / DAMAGED, sd / "linked.safetensors")
    os.symlink(disk / "folder", sd / "other-disk", target_is_directory=True)
    os.symlink(disk / "secret.txt", sd / "notes.txt")  # not a model: the WebUI does not list it
    (models / "Unlisted").mkdir()
    os.symlink(disk / DAMAGED, models / "Unlisted" / "leak.safetensors")  # a folder no list covers
    sd_models.list_models()
    return models, disk


@symlinks
def test_what_the_webui_lists_is_inspectable_through_symlinks(linked):
    models, _ = linked
    from modules import sd_models

    client = _app()
    names = {i.name: i.title for i in sd_models.checkpoints_list.values()}
    assert {"linked.safetensors", os.path.join("other-disk", "in-linked-folder.safetensors")} <= set(names)
    for name in ("linked.safetensors", os.path.join("other-disk", "in-linked-folder.safetensors")):
        for value in (name, names[name]):
            got = client.get("/modeldoc/inspect", params={"name": value})
            assert got.status_code == 200 and got.json()["architecture"] == "SD1", (value, got.text)
        got = client.post("/modeldoc/inspect", json={"name": name})
        assert got.status_code == 200, got.text
    listed = str(models / "Stable-diffusion" / "linked.safetensors")
    assert client.get("/modeldoc/inspect", params={"path": listed}).status_code == 200


@symlinks
def test_traversal_and_unlisted_links_stay_refused(linked):
    models, disk = linked
    client = _app()
    sd = models / "Stable-diffusion"
    refused = [
        str(disk / DAMAGED),  # absolute, outside every model folder
        "/etc/passwd",
        f"{sd}/../../disk/{DAMAGED}",  # ../
        str(sd / "notes.txt"),  # a link to a file outside that the WebUI does not list
        str(models / "Unlisted" / "leak.safetensors"),
        os.path.relpath(disk / DAMAGED),  # relative to the WebUI's working folder
    ]
    for path in refused:
        got = client.get("/modeldoc/inspect", params={"path": path})
        _one_line_error(got, 403)
        assert client.post("/modeldoc/inspect", json={"path": path}).status_code == 403
    encoded = client.get(f"/modeldoc/inspect?path={sd}/%2e%2e/%2e%2e/disk/{DAMAGED}")
    _one_line_error(encoded, 403)
    # a name is looked up in the WebUI's lists only, never taken as a path
    for name in ("/etc/passwd", str(disk / DAMAGED), f"../../disk/{DAMAGED}", "notes.txt", "secret.txt"):
        _one_line_error(client.get("/modeldoc/inspect", params={"name": name}), 404)


def test_bad_input_is_a_one_line_4xx(webui):
    _, models = webui
    client = _app()
    sd = models / "Stable-diffusion"
    assert "NUL" in _one_line_error(client.get("/modeldoc/inspect", params={"path": f"{sd}/x\0.safetensors"}), 400)
    _one_line_error(client.post("/modeldoc/inspect", json={"path": f"{sd}/{DAMAGED}\0"}), 400)
    for body in ({"path": 5}, {"name": 5}, {"path": ["a"]}, {"name": {"x": 1}}, [DAMAGED], "x", 5):
        _one_line_error(client.post("/modeldoc/inspect", json=body), 422)
    _one_line_error(client.post("/modeldoc/inspect"), 400, 422)
    _one_line_error(client.post("/modeldoc/inspect", content=b"{not json", headers={"Content-Type": "application/json"}),
                    400, 422)
    _one_line_error(client.post("/modeldoc/inspect", json={"path": "a", "name": "b"}), 400, 422)
    assert "no model named" in _one_line_error(client.get("/modeldoc/inspect", params={"name": "nothing-like-it"}), 404)
    _one_line_error(client.post("/modeldoc/inspect", json={"name": "nothing-like-it"}), 404)
    _one_line_error(client.get("/modeldoc/inspect", params={"path": str(sd / "missing.safetensors")}), 404)
    _one_line_error(client.get("/modeldoc/inspect", params={"path": "x" * 5000}), 400, 403, 404)
    _one_line_error(client.post("/modeldoc/live-clip", params={"fix": "maybe"}), 422)
