"""The checkpoint the WebUI has loaded is never overwritten by the tab, even with "Overwrite" ticked."""

from __future__ import annotations

import hashlib
import os

from test_ui_webui_script import DAMAGED, FakeModel, webui  # noqa: F401  (the fixture)
from ui_helpers import Driver

LOADED = "sdxl-base-fp16.safetensors"


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(1 << 20)).hexdigest(), os.stat(path).st_mtime_ns, os.path.getsize(path)


def test_write_refuses_to_replace_the_loaded_checkpoint(webui):
    module, models = webui
    from modules import script_callbacks, sd_models

    info = next(i for i in sd_models.checkpoints_list.values() if i.name == LOADED)
    sd_models.model_data.sd_model = FakeModel(info)
    loaded = str(models / "Stable-diffusion" / LOADED)
    before = _digest(loaded)
    drv = Driver(script_callbacks.callbacks["ui_tabs"][0]()[0][0])
    folder = str(models / "Stable-diffusion")
    for name in (LOADED, "sdxl-base-fp16"):  # with or without the extension the format adds
        given = dict(modeldoc_model=DAMAGED, modeldoc_convert_out_folder=folder, modeldoc_convert_out_name=name,
                     modeldoc_convert_overwrite=True)
        preview = drv.click("modeldoc_convert_preview", **given)["modeldoc_convert_result"]
        assert "loaded" in preview, preview
        out = drv.click("modeldoc_convert_write", "click", **given)
        result = out["modeldoc_convert_result"]
        assert "modeldoc-error" in result and "loaded" in result and "AUTOMATIC1111" in result, result
        assert "--" not in result
    # through a symbolic link to it, too
    if hasattr(os, "symlink") and os.name != "nt":
        os.symlink(loaded, models / "alias.safetensors")
        out = drv.click("modeldoc_convert_write", modeldoc_model=DAMAGED, modeldoc_convert_out_folder=str(models),
                        modeldoc_convert_out_name="alias", modeldoc_convert_overwrite=True)
        assert "loaded" in out["modeldoc_convert_result"], out["modeldoc_convert_result"]
    assert _digest(loaded) == before
    assert sorted(os.listdir(models / "Stable-diffusion")) == [DAMAGED, LOADED]  # no temp file left
