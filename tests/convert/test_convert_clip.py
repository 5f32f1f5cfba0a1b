"""CLIP repairs: position_ids (SD1 and SDXL) with and without --fix-clip, and the NAI key layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from convert_support import CLIP_KEY, CLIP_TEXT, NAI_PREFIX, SD1_POS, XL_POS, read_safetensors, slim_specs
from lib_modeldoc.operations.convert import ConvertOptions, plan_convert
from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.io.model import open_model
from lib_modeldoc.operations.plan import FIX
from lib_modeldoc.samples import Spec, broken_position_ids, family_specs

AS_WEBUI_READS = np.arange(77)
AS_WEBUI_READS[[41, 76]] = [40, 75]  # 40.9999 and 75.9975 truncated by .to(torch.int64)


def clip_findings(path) -> list[str]:
    return [f.id for f in inspect_model(str(path)).findings if f.id.startswith("clip.")]


@pytest.fixture
def broken_sd1(slim_model):
    return slim_model("broken.safetensors", extra=(Spec(SD1_POS, "F32", (1, 77)),),
                      values={SD1_POS: broken_position_ids({76: 75.9975, 41: 40.9999})})


def test_fix_clip_resets_position_ids_to_int64(broken_sd1, cli, tmp_path):
    assert clip_findings(broken_sd1) == ["clip.position_ids.offset"]
    out = tmp_path / "fixed.safetensors"
    rc, stdout, _ = cli("convert", broken_sd1, "-o", out, "--fix-clip", "--json")
    assert rc == 0
    tensors, _ = read_safetensors(out)
    ids = tensors[SD1_POS]
    assert ids.dtype == torch.int64 and ids.shape == (1, 77)
    assert ids.flatten().tolist() == list(range(77))
    assert ("fixed CLIP position_ids (cond_stage_model.transformer.text_model.embeddings.position_ids): "
            "reset to int64 0..76 (were wrong at [41, 76])") in json.loads(stdout)["changes"]
    assert clip_findings(out) == []


def test_without_fix_clip_ids_are_stored_as_the_webui_reads_them(broken_sd1, cli, tmp_path):
    out = tmp_path / "kept.safetensors"
    rc, stdout, _ = cli("convert", broken_sd1, "-o", out, "--json")
    assert rc == 0
    ids = read_safetensors(out)[0][SD1_POS]
    assert ids.dtype == torch.int64 and ids.shape == (1, 77)
    assert ids.flatten().tolist() == AS_WEBUI_READS.tolist()
    # JSON (and the file's provenance) hold the fact; the text the command line prints adds its remedy
    assert any(c.endswith("kept as the WebUI reads them, still wrong") for c in json.loads(stdout)["changes"])
    assert clip_findings(out) == ["clip.position_ids.offset"]  # same behaviour as the source, now int64
    rc, stdout, _ = cli("convert", broken_sd1, "-o", tmp_path / "again.safetensors", "--dry-run")
    assert rc == 0 and "kept as the WebUI reads them, still wrong; use --fix-clip to repair" in stdout


def test_right_float_ids_become_int64(slim_model, cli, tmp_path):
    ids = np.arange(77, dtype=np.float16).reshape(1, 77)
    src = slim_model(extra=(Spec(SD1_POS, "F16", (1, 77)),), values={SD1_POS: ids})
    assert clip_findings(src) == ["clip.position_ids.float"]
    out = tmp_path / "out.safetensors"
    assert cli("convert", src, "-o", out)[0] == 0
    ids = read_safetensors(out)[0][SD1_POS]
    assert ids.dtype == torch.int64 and ids.flatten().tolist() == list(range(77))
    assert clip_findings(out) == []


def test_right_int64_ids_are_copied_untouched(slim_model, tmp_path):
    src = slim_model(values={SD1_POS: np.arange(77, dtype=np.int64).reshape(1, 77)})
    with open_model(src) as model:
        plan = plan_convert(model, ConvertOptions(fix_clip=True))
    [entry] = [e for e in plan.entries if e.key == SD1_POS]
    assert (entry.action, entry.dtype) == ("copy", "I64")
    assert not any("position_ids" in c for c in plan.changes)


def test_wrong_int64_ids_are_fixed_only_when_asked(slim_model, cli, tmp_path):
    values = np.array([list(range(76)) + [75]], dtype=np.int64)
    src = slim_model(values={SD1_POS: values})
    out = tmp_path / "kept.safetensors"
    assert cli("convert", src, "-o", out)[0] == 0
    assert read_safetensors(out)[0][SD1_POS].tolist() == values.tolist()
    out2 = tmp_path / "fixed.safetensors"
    assert cli("convert", src, "-o", out2, "--fix-clip")[0] == 0
    assert read_safetensors(out2)[0][SD1_POS].flatten().tolist() == list(range(77))


@pytest.mark.parametrize("fix", [True, False])
def test_sdxl_position_ids(slim_model, cli, tmp_path, fix):
    src = slim_model("xl.safetensors", "SDXL", extra=(Spec(XL_POS, "F32", (1, 77)),),
                     values={XL_POS: broken_position_ids()})
    assert clip_findings(src) == ["clip.position_ids.offset"]
    out = tmp_path / "out.safetensors"
    assert cli("convert", src, "-o", out, *(["--fix-clip"] if fix else []))[0] == 0
    ids = read_safetensors(out)[0][XL_POS]
    assert ids.dtype == torch.int64
    assert ids.flatten().tolist() == (list(range(77)) if fix else AS_WEBUI_READS.tolist())


def test_sdxl_real_size_plan_fixes_position_ids(sparse_model):
    """A real-shape SDXL (7 GB sparse): the plan reads the 77 ids, nothing else."""
    specs = [Spec(s.key, "F32", s.shape) if s.key == XL_POS else s for s in family_specs("SDXL")]
    src = sparse_model("sdxl.safetensors", specs, {XL_POS: broken_position_ids()})
    with open_model(src) as model:
        plan = plan_convert(model, ConvertOptions(fix_clip=True))
    [entry] = [e for e in plan.entries if e.key == XL_POS]
    assert (entry.action, entry.dtype, entry.shape) == (FIX, "I64", (1, 77))
    assert entry.value.dtype == np.int64 and entry.value.flatten().tolist() == list(range(77))
    assert len(plan.entries) == len(specs)
    assert plan.output_size == sum(s.nbytes for s in specs) + len(plan.header()) - 77 * 4 + 77 * 8


# -- NAI layout --------------------------------------------------------------------------------

@pytest.fixture
def nai_sd1(sparse_model):
    specs = []
    for s in slim_specs(dtype="F32"):
        key = s.key.replace(CLIP_TEXT, NAI_PREFIX)
        specs.append(Spec(key, "F32" if key.endswith("position_ids") else s.dtype, s.shape))
    values = {NAI_PREFIX + "embeddings.position_ids": broken_position_ids(),
              NAI_PREFIX + "final_layer_norm.weight": np.linspace(0, 2, 768, dtype=np.float32)}
    return sparse_model("nai.safetensors", specs, values), specs


def test_nai_layout_is_renamed_to_the_standard_one(nai_sd1, cli, tmp_path):
    src, specs = nai_sd1
    assert "clip.nai_layout" in clip_findings(src)
    out = tmp_path / "out.safetensors"
    rc, stdout, _ = cli("convert", src, "-o", out, "--fix-clip", "--json")
    assert rc == 0
    tensors, _ = read_safetensors(out)
    clip_keys = {k for k in tensors if k.startswith("cond_stage_model.")}
    assert clip_keys == {s.key.replace(NAI_PREFIX, CLIP_TEXT) for s in specs if s.key.startswith(NAI_PREFIX)}
    assert all(k.startswith(CLIP_TEXT) for k in clip_keys)
    assert torch.equal(tensors[CLIP_KEY], torch.from_numpy(np.linspace(0, 2, 768, dtype=np.float32)).half())
    assert tensors[SD1_POS].dtype == torch.int64 and tensors[SD1_POS].flatten().tolist() == list(range(77))
    result = json.loads(stdout)
    assert "renamed NAI-layout CLIP keys to the standard layout" in result["changes"]
    assert result["renamed"] == len(clip_keys)
    report = inspect_model(str(out))
    assert report.architecture == "SD1"
    assert clip_findings(out) == []


def test_nai_rename_keeps_values_exactly_under_copy(nai_sd1, cli, tmp_path):
    src, _ = nai_sd1
    out = tmp_path / "out.safetensors"
    assert cli("convert", src, "-o", out, "--clip", "copy")[0] == 0
    tensors, _ = read_safetensors(out)
    assert tensors[CLIP_KEY].dtype == torch.float32
    assert torch.equal(tensors[CLIP_KEY], torch.from_numpy(np.linspace(0, 2, 768, dtype=np.float32)))
    assert tensors[SD1_POS].flatten().tolist() == AS_WEBUI_READS.tolist()
