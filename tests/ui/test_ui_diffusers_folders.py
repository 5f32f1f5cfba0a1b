"""A diffusers folder in the model folders is one model to the tab: listed, typed, inspected, converted to
one file, and the path rules still confine it (standalone ``serve`` and the WebUI's routes)."""

from __future__ import annotations

import os
import shutil
import sys

import pytest
from ui_helpers import Driver

gr = pytest.importorskip("gradio") if not os.environ.get("CI") else __import__("gradio")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "diffusers"))
diffusers_support = pytest.importorskip("diffusers_support")

from lib_modeldoc import open_model  # noqa: E402
from lib_modeldoc.ui.actions import default_output_name  # noqa: E402
from lib_modeldoc.ui.builder import build_ui  # noqa: E402
from lib_modeldoc.ui.standalone import FolderHost, OutsideError, write_sample_library  # noqa: E402


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A tiny SD1 pipeline folder (diffusers' own save_pretrained)."""
    return diffusers_support.write_sd1_folder(str(tmp_path_factory.mktemp("pipe") / "sd15"), tiny=True)


@pytest.fixture(scope="module")
def controlnet(tmp_path_factory):
    """A diffusers ControlNet folder of SD1's real shapes, sparse zeros (identified as a ControlNet)."""
    torch, diffusers = diffusers_support.torch, diffusers_support.diffusers
    folder = str(tmp_path_factory.mktemp("cn") / "control-canny")
    with torch.device("meta"):
        model = diffusers.ControlNetModel(cross_attention_dim=768, attention_head_dim=8)
    diffusers_support._write_shapes(os.path.join(folder, "diffusion_pytorch_model.safetensors"), model, False)
    diffusers_support._write_json(os.path.join(folder, "config.json"),
                                  {"_class_name": "ControlNetModel", **dict(model.config)})
    return folder


@pytest.fixture
def models(tmp_path, pipeline, controlnet):
    """The sample library with a pipeline under models/diffusers and a ControlNet under Stable-diffusion."""
    root = tmp_path / "models"
    write_sample_library(str(root))
    shutil.copytree(pipeline, root / "diffusers" / "sd15")
    shutil.copytree(controlnet, root / "Stable-diffusion" / "control-canny")
    return root


def test_folder_host_lists_each_diffusers_folder_once_and_none_of_its_files(models):
    host = FolderHost(str(models))
    labels = [c.label for c in host.checkpoints()]
    assert "diffusers: control-canny" in labels and "diffusers: sd15" in labels
    assert not any("diffusion_pytorch_model" in label or "text_encoder" in label for label in labels)
    assert host.resolve("diffusers: sd15") == str(models / "diffusers" / "sd15")


def test_a_typed_folder_path_is_confined_like_a_file(models, tmp_path, pipeline):
    host = FolderHost(str(models))
    assert host.resolve(os.path.join("diffusers", "sd15")) == str(models / "diffusers" / "sd15")
    assert host.resolve(str(models / "diffusers" / "sd15")) == str(models / "diffusers" / "sd15")
    with pytest.raises(OutsideError):
        host.resolve(pipeline)  # the same kind of folder, outside the served one
    with pytest.raises(OutsideError):
        host.resolve(os.path.join("..", "..", os.path.relpath(pipeline, tmp_path.parent)))
    link = models / "Stable-diffusion" / "linked-out"
    link.symlink_to(pipeline, target_is_directory=True)
    host.refresh()  # a linked folder is listed, as a linked file is, so it may be opened as listed
    assert host.resolve("diffusers: linked-out") == str(link)
    with pytest.raises(OutsideError):  # but nothing inside it by a typed path
        host.resolve(str(link / "unet"))


def test_the_tab_inspects_a_pipeline_folder_and_converts_a_controlnet_folder_to_one_file(models):
    drv = Driver(build_ui(FolderHost(str(models))))
    out = drv.click("modeldoc_inspect", modeldoc_model="diffusers: sd15")
    assert "sd15" in out["modeldoc_verdict"] and "modeldoc-error" not in str(out.get("modeldoc_status", ""))
    out = drv.click("modeldoc_inspect", modeldoc_model=os.path.join("Stable-diffusion", "control-canny"))
    assert "ControlNet" in out["modeldoc_verdict"], out["modeldoc_verdict"]
    out = drv.click("modeldoc_convert_write", modeldoc_model="diffusers: control-canny")
    assert "Wrote" in out["modeldoc_convert_result"], out["modeldoc_convert_result"]
    written = models / "Stable-diffusion" / "control-canny-fixed.safetensors"
    with open_model(str(written)) as single, open_model(str(models / "Stable-diffusion" / "control-canny")) as folder:
        assert single.format == "safetensors" and set(single) == set(folder)


def test_default_output_name_keeps_a_dotted_folder_name(tmp_path):
    (tmp_path / "v1.5").mkdir()
    assert default_output_name(str(tmp_path / "v1.5")) == "v1.5-fixed.safetensors"
    assert default_output_name(str(tmp_path / "merge.ckpt")) == "merge-fixed.safetensors"


@pytest.fixture(params=["automatic1111", "forge"])
def webui_with_folders(request, tmp_path, monkeypatch, pipeline, controlnet):
    """The stand-in WebUI (A1111, then Forge) with a pipeline in models/diffusers and a ControlNet among the checkpoints."""
    from test_ui_webui_script import _webui

    run = _webui(tmp_path, monkeypatch, forge=request.param == "forge")
    module, models = next(run)
    shutil.copytree(pipeline, models / "diffusers" / "sd15")
    shutil.copytree(controlnet, models / "Stable-diffusion" / "control-canny")
    yield module, models
    run.close()


def test_the_webui_tab_lists_and_inspects_diffusers_folders(webui_with_folders):
    module, models = webui_with_folders
    from modules import script_callbacks

    blocks = script_callbacks.callbacks["ui_tabs"][0]()[0][0]
    drv = Driver(blocks)
    model = blocks.blocks[drv.ids["modeldoc_model"]]
    choices = [c[0] if isinstance(c, (list, tuple)) else c for c in model.choices]
    assert "diffusers: sd15" in choices and "diffusers: control-canny" in choices
    out = drv.click("modeldoc_inspect", modeldoc_model="diffusers: control-canny")
    assert "ControlNet" in out["modeldoc_verdict"], out["modeldoc_verdict"]
    typed = str(models / "diffusers" / "sd15")  # a typed path works as the listed entry does
    assert "sd15" in drv.click("modeldoc_inspect", modeldoc_model=typed)["modeldoc_verdict"]


def test_the_webui_routes_open_diffusers_folders_inside_the_model_folders_only(webui_with_folders, tmp_path, pipeline):
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    module, models = webui_with_folders
    from modules import script_callbacks

    app = FastAPI()
    script_callbacks.callbacks["app_started"][0](None, app)
    client = TestClient(app)
    inside = str(models / "diffusers" / "sd15")
    got = client.get("/modeldoc/inspect", params={"path": inside})
    assert got.status_code == 200 and got.json()["format"] == "diffusers", got.text
    got = client.post("/modeldoc/inspect", json={"name": "diffusers: control-canny"})
    assert got.status_code == 200 and got.json()["architecture"] == "ControlNet", got.text
    assert client.get("/modeldoc/inspect", params={"path": pipeline}).status_code == 403  # outside the folders
    escape = os.path.join(str(models / "diffusers"), "..", "..", os.path.relpath(pipeline, str(tmp_path)))
    assert client.get("/modeldoc/inspect", params={"path": escape}).status_code == 403
    listing = client.get("/modeldoc/models").json()
    assert any(c["path"] == inside for c in listing["checkpoints"])
