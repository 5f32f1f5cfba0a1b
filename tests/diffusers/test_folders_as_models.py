"""A diffusers folder inside a walked tree is one model: audit rows, duplicates, convert --batch, the walker."""

from __future__ import annotations

import os
import shutil

import pytest

from diffusers_support import _write_json, _write_shapes, diffusers, torch, write_sd1_folder
from lib_modeldoc.analysis.audit import audit_folder, find_model_files
from lib_modeldoc.io.folders import model_files
from lib_modeldoc.operations.batch import BatchAction, plan_batch
from lib_modeldoc.samples import family_specs, write_safetensors_sample

TINY_CONTROLNET = {"block_out_channels": (32, 64, 128, 128), "cross_attention_dim": 32, "attention_head_dim": 8}


def _controlnet(folder: str, *, tiny: bool) -> str:
    """A diffusers ControlNet folder: tiny random weights, or SD1 shapes as sparse zeros."""
    torch.manual_seed(0)
    if tiny:
        diffusers.ControlNetModel(**TINY_CONTROLNET).save_pretrained(folder)
        return folder
    with torch.device("meta"):
        model = diffusers.ControlNetModel(cross_attention_dim=768, attention_head_dim=8)
    _write_shapes(os.path.join(folder, "diffusion_pytorch_model.safetensors"), model, False)
    _write_json(os.path.join(folder, "config.json"), {"_class_name": "ControlNetModel", **dict(model.config)})
    return folder


@pytest.fixture
def tree(tmp_path, tiny_sd1_folder):
    """models/: a loose SD1 checkpoint, a pipeline folder and a ControlNet folder in subfolders."""
    root = tmp_path / "models"
    root.mkdir()
    write_safetensors_sample(str(root / "loose.safetensors"), family_specs("SD1"))
    shutil.copytree(tiny_sd1_folder, root / "diffusers" / "sd15")
    _controlnet(str(root / "ControlNet" / "canny"), tiny=True)
    return root


def test_the_walker_gives_each_diffusers_folder_once_and_none_of_its_files(tree):
    found = [path for path, _ in model_files(str(tree), diffusers=True)]
    assert [os.path.relpath(p, tree) for p in found] == [
        "loose.safetensors", os.path.join("ControlNet", "canny"), os.path.join("diffusers", "sd15")]
    # Without asking, the walker lists files only (VAE tests, anything that opens loose files).
    assert all(p.endswith(".safetensors") for p, _ in model_files(str(tree)))
    assert [os.path.relpath(p, tree) for p in find_model_files(tree)] == [os.path.relpath(p, tree) for p in found]


def test_audit_reports_a_pipeline_and_a_controlnet_folder_as_one_model_each(tmp_path):
    root = tmp_path / "models"
    write_sd1_folder(str(root / "diffusers" / "sd15"), tiny=False)  # real shapes, sparse: identified
    _controlnet(str(root / "ControlNet" / "canny"), tiny=False)
    result = audit_folder(root)
    assert not result.errors
    rows = {os.path.relpath(r.path, root): r for r in result.files}
    assert set(rows) == {os.path.join("diffusers", "sd15"), os.path.join("ControlNet", "canny")}
    pipeline, controlnet = rows[os.path.join("diffusers", "sd15")], rows[os.path.join("ControlNet", "canny")]
    assert pipeline.format == "diffusers" and pipeline.architecture == "SD1"
    assert controlnet.format == "diffusers" and controlnet.architecture == "ControlNet"
    inner = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root / "diffusers" / "sd15")
                for f in fs if f.endswith(".safetensors"))
    assert pipeline.size_bytes == inner  # the folder's weights, all components together
    assert result.to_dict()["summary"]["files"] == 2


def test_audit_of_a_pipeline_folder_itself_is_one_row(tiny_sd1_folder):
    result = audit_folder(tiny_sd1_folder)
    assert [r.path for r in result.files] == [tiny_sd1_folder] and not result.errors


def test_two_copies_of_a_pipeline_folder_are_file_duplicates_and_hashes_do_not_fail(tree):
    shutil.copytree(tree / "diffusers" / "sd15", tree / "old" / "sd15-copy")
    for hashes in (False, True):
        result = audit_folder(tree, hashes=hashes)
        assert not result.errors, result.errors
        files = [d for d in result.duplicates if d.kind == "file"]
        assert [tuple(os.path.relpath(p, tree) for p in d.paths) for d in files] == [
            (os.path.join("diffusers", "sd15"), os.path.join("old", "sd15-copy"))]
        assert files[0].bytes_each == next(r.size_bytes for r in result.files if r.path == files[0].paths[0])
        assert result.duplicate_bytes == files[0].bytes_each


def test_a_changed_copy_is_no_file_duplicate(tree):
    copy = tree / "old" / "sd15-copy"
    shutil.copytree(tree / "diffusers" / "sd15", copy)
    weights = copy / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one byte of the last tensor: same size, different content
    weights.write_bytes(bytes(data))
    result = audit_folder(tree)
    assert not [d for d in result.duplicates if d.kind == "file"]


def test_batch_takes_a_controlnet_folder_as_one_model_and_skips_it(tree, tmp_path):
    """A batch converts checkpoints; a ControlNet, a folder as a file, is skipped with its one-line note."""
    _controlnet(str(tree / "ControlNet" / "sd15-depth"), tiny=False)
    items = plan_batch(str(tree), str(tmp_path / "out"), ".safetensors")
    by_source = {os.path.relpath(i.source, tree): i for i in items}
    assert set(by_source) == {"loose.safetensors", os.path.join("ControlNet", "canny"),
                              os.path.join("ControlNet", "sd15-depth"), os.path.join("diffusers", "sd15")}
    skipped = by_source[os.path.join("ControlNet", "sd15-depth")]
    assert skipped.action is BatchAction.SKIP_NOT_CHECKPOINT and skipped.note == "ControlNet: not a checkpoint"
    assert by_source[os.path.join("diffusers", "sd15")].output == str(tmp_path / "out" / "diffusers" / "sd15.safetensors")


def test_batch_output_of_a_dotted_folder_name_keeps_the_whole_name(tmp_path, tiny_sd1_folder):
    root = tmp_path / "models"
    shutil.copytree(tiny_sd1_folder, root / "v1.5")
    [item] = plan_batch(str(root), str(tmp_path / "out"), ".safetensors", force=True)
    assert item.output == str(tmp_path / "out" / "v1.5.safetensors")


def test_audit_text_shows_a_diffusers_folder_as_one_line_ending_in_a_slash(cli, tree):
    rc, text, err = cli("audit", tree)
    assert rc == 0, err
    assert "3 model files" in text
    assert os.path.join("diffusers", "sd15") + os.sep in text and os.path.join("ControlNet", "canny") + os.sep in text
    assert "diffusion_pytorch_model" not in text and "text_encoder" not in text
