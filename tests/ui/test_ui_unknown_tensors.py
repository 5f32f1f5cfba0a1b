"""Fix / prune / convert and tensors no table describes: kept by default (the junk rule), dropped
only when "Drop unknown tensors" is ticked; "Keep junk tensors" is about the named junk groups.
Through the real event wiring (gradio 3.41 here, 4.40 in CI), on a real-shape sparse SD1 file."""

from __future__ import annotations

import os

import pytest
from safetensors import safe_open
from ui_helpers import Driver

gr = pytest.importorskip("gradio") if not os.environ.get("CI") else __import__("gradio")

from lib_modeldoc.samples import Spec, family_specs, write_safetensors_sample  # noqa: E402
from lib_modeldoc.ui.builder import build_ui  # noqa: E402
from lib_modeldoc.ui.standalone import FolderHost  # noqa: E402

UNKNOWN = "model.diffusion_model.extra_head.weight"  # under the UNet's prefix, in no table
JUNK = "embedding_manager.embedder.transformer.text_model.final_layer_norm.weight"


@pytest.fixture
def driver(tmp_path):
    folder = tmp_path / "models" / "Stable-diffusion"
    folder.mkdir(parents=True)
    specs = family_specs("SD1") + [Spec(UNKNOWN, "F16", (64, 64)), Spec(JUNK, "F16", (768,))]
    write_safetensors_sample(str(folder / "odd.safetensors"), specs)
    host = FolderHost(str(tmp_path / "models"))
    return Driver(build_ui(host)), str(folder)


def keys(path):
    with safe_open(path, "np") as f:
        return set(f.keys())


def test_the_labels_say_what_each_box_does(driver):
    drv, _ = driver
    keep = drv.blocks.blocks[drv.ids["modeldoc_keep_junk"]]
    drop = drv.blocks.blocks[drv.ids["modeldoc_drop_unknown"]]
    assert "unknown" not in keep.label.lower() and "junk" in keep.label.lower()
    assert drop.label.startswith("Drop unknown tensors") and drop.value is False


def test_unknown_tensors_are_kept_unless_drop_unknown_is_ticked(driver):
    drv, folder = driver
    given = dict(modeldoc_model="odd.safetensors", modeldoc_convert_out_folder=folder, modeldoc_convert_verify=False)
    kept = drv.click("modeldoc_convert_write", modeldoc_convert_out_name="kept", **given)["modeldoc_convert_result"]
    assert "Wrote" in kept, kept
    written = keys(os.path.join(folder, "kept.safetensors"))
    assert UNKNOWN in written and JUNK not in written  # unknown kept, named junk dropped by default
    preview = drv.click("modeldoc_convert_preview", modeldoc_drop_unknown=True, **given)["modeldoc_convert_result"]
    assert "unknown" in preview
    drv.click("modeldoc_convert_write", modeldoc_convert_out_name="dropped", modeldoc_drop_unknown=True, **given)
    dropped = keys(os.path.join(folder, "dropped.safetensors"))
    assert UNKNOWN not in dropped and JUNK not in dropped
    assert written - dropped == {UNKNOWN}
    drv.click("modeldoc_convert_write", modeldoc_convert_out_name="junk", modeldoc_keep_junk=True, **given)
    assert {UNKNOWN, JUNK} <= keys(os.path.join(folder, "junk.safetensors"))
