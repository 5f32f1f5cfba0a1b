"""The demo's damaged merge at real size (a sparse 4 GB SD1 with EMA, junk, float64 buffers and
broken position_ids): the plan agrees with inspect, and a real write reads back with safetensors.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from convert_support import SD1_POS, listing, read_safetensors
from lib_modeldoc.arch.families import KNOWN_BUFFERS
from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.io.model import open_model
from lib_modeldoc.samples import family_specs, write_demo_sample


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo_sample(str(tmp_path_factory.mktemp("demo")))


def test_dry_run_size_is_inspects_pruned_size(demo, cli, tmp_path):
    report = inspect_model(demo)
    assert report.architecture == "SD1"
    rc, stdout, _ = cli("convert", demo, "-o", tmp_path / "out.safetensors", "--dry-run", "--json")
    assert rc == 0 and listing(tmp_path) == []
    plan = json.loads(stdout)
    assert plan["size_bytes"] == report.pruned_size_bytes
    with open_model(demo) as model:
        junk = [k for k in model if k.startswith("embedding_manager.")]  # a copy of CLIP
    assert plan["dropped"]["junk"]["keys"] == len(junk) > 150
    assert plan["dropped"]["ema"]["keys"] == 688  # 686 UNet copies + decay, num_updates
    assert plan["keys"] == len(family_specs("SD1")) + 2  # + alphas_cumprod, betas


def test_real_write_without_the_unet(demo, cli, tmp_path):
    before = os.stat(demo)  # hashing 4 GB of holes would dominate the suite: size and mtime instead
    out = tmp_path / "fixed.safetensors"
    rc, stdout, err = cli("convert", demo, "-o", out, "--unet", "delete", "--fix-clip", "--verify", "--json")
    assert (rc, err) == (0, "")
    result = json.loads(stdout)
    assert result["verified"] is True and result["size_bytes"] == out.stat().st_size
    tensors, metadata = read_safetensors(out)
    parts = {s.key for s in family_specs("SD1", components=("vae", "clip_l"))}
    assert parts <= set(tensors) and set(tensors) - parts <= KNOWN_BUFFERS
    assert {"alphas_cumprod", "betas"} <= set(tensors)
    assert tensors[SD1_POS].dtype == torch.int64 and tensors[SD1_POS].flatten().tolist() == list(range(77))
    floats = {k: t.dtype for k, t in tensors.items() if k in parts and t.is_floating_point()}
    assert set(floats.values()) == {torch.float16}
    assert tensors["alphas_cumprod"].dtype == torch.float32
    assert json.loads(metadata["sd_merge_recipe"])["interp_method"] == "Add difference"
    after = os.stat(demo)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert listing(tmp_path) == ["fixed.safetensors"]
