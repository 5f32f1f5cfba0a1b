"""CLIP position_ids read the way the WebUI reads them (int64), and the old NAI key layout."""

from __future__ import annotations

import numpy as np
import pytest

from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.samples import Spec, broken_position_ids, family_specs

SD1_TEXT = "cond_stage_model.transformer.text_model."
SD1_POS = SD1_TEXT + "embeddings.position_ids"
NAI_POS = "cond_stage_model.transformer.embeddings.position_ids"
XL_POS = "conditioner.embedders.0.transformer.text_model.embeddings.position_ids"


def with_ids(arch: str, key: str, dtype: str, *, nai: bool = False) -> list[Spec]:
    """The family's specs with its position_ids stored as ``dtype`` (and, for ``nai``, no text_model.)."""
    specs = []
    for s in family_specs(arch):
        k = s.key.replace(SD1_TEXT, "cond_stage_model.transformer.") if nai else s.key
        specs.append(Spec(k, dtype if k == key else s.dtype, s.shape))
    assert key in {s.key for s in specs}
    return specs


def clip_findings(report) -> list[tuple[str, str]]:
    return [(f.id, f.severity.value) for f in report.findings if f.id.startswith("clip.")]


def run(sparse_model, arch, key, dtype, values, *, nai=False):
    specs = with_ids(arch, key, dtype, nai=nai)
    return inspect_model(sparse_model("m.safetensors", specs, {key: values}))


def test_float32_offset_ids_are_wrong_at_41_and_76(sparse_model):
    report = run(sparse_model, "SD1", SD1_POS, "F32", broken_position_ids({76: 75.9975, 41: 40.9999}))
    assert report.architecture == "SD1"
    [ids] = report.clip_position_ids
    assert (ids.key, ids.dtype, ids.wrong) == (SD1_POS, "F32", (41, 76))
    assert ids.values == pytest.approx((40.9999, 75.9975), abs=1e-4)
    assert clip_findings(report) == [("clip.position_ids.offset", "error")]
    [finding] = [f for f in report.findings if f.id == "clip.position_ids.offset"]
    assert "41 (reads as 40" in finding.message and "76 (reads as 75" in finding.message
    assert finding.keys == (SD1_POS,) and finding.repair == "fix_clip"


def test_float_ids_with_right_values_are_only_a_float_warning(sparse_model):
    report = run(sparse_model, "SD1", SD1_POS, "F32", np.arange(77, dtype=np.float32).reshape(1, 77))
    assert report.clip_position_ids[0].wrong == ()
    assert clip_findings(report) == [("clip.position_ids.float", "warning")]


def test_int64_right_ids_give_no_finding(sparse_model):
    report = run(sparse_model, "SD1", SD1_POS, "I64", np.arange(77, dtype=np.int64).reshape(1, 77))
    [ids] = report.clip_position_ids
    assert (ids.dtype, ids.wrong) == ("I64", ())
    assert clip_findings(report) == []


def test_int64_wrong_ids_are_an_offset(sparse_model):
    values = np.array([list(range(76)) + [75]], dtype=np.int64)
    report = run(sparse_model, "SD1", SD1_POS, "I64", values)
    assert report.clip_position_ids[0].wrong == (76,)
    assert clip_findings(report) == [("clip.position_ids.offset", "error")]


def test_fp16_ids_truncate_like_the_webui(sparse_model):
    values = np.arange(77, dtype=np.float16).reshape(1, 77)
    values[0, 76] = np.float16(75.94)  # fp16 step near 76 is 1/16: stored 75.9375, read as 75
    report = run(sparse_model, "SD1", SD1_POS, "F16", values)
    assert report.clip_position_ids[0].wrong == (76,)
    assert clip_findings(report) == [("clip.position_ids.offset", "error")]


def test_nan_id_is_wrong_and_named(sparse_model):
    values = np.arange(77, dtype=np.float32).reshape(1, 77)
    values[0, 5] = np.nan
    report = run(sparse_model, "SD1", SD1_POS, "F32", values)
    assert report.clip_position_ids[0].wrong == (5,)
    [finding] = [f for f in report.findings if f.id == "clip.position_ids.offset"]
    assert "NaN" in finding.message


def test_sdxl_first_encoder_ids_are_checked(sparse_model):
    report = run(sparse_model, "SDXL", XL_POS, "F32", broken_position_ids())
    assert report.architecture == "SDXL"
    [ids] = report.clip_position_ids
    assert (ids.key, ids.wrong) == (XL_POS, (41, 76))
    assert clip_findings(report) == [("clip.position_ids.offset", "error")]


def test_nai_layout_is_sd1_with_its_ids_checked(sparse_model):
    report = run(sparse_model, "SD1", NAI_POS, "F32", broken_position_ids(), nai=True)
    assert report.architecture == "SD1"
    clip = report.components["clip_l"]
    assert clip.complete and clip.prefix == "cond_stage_model.transformer."
    assert report.junk.keys == 0
    [ids] = report.clip_position_ids
    assert (ids.key, ids.wrong) == (NAI_POS, (41, 76))
    assert clip_findings(report) == [("clip.position_ids.offset", "error"), ("clip.nai_layout", "info")]


def test_nai_layout_with_right_ids_is_only_a_note(sparse_model):
    report = run(sparse_model, "SD1", NAI_POS, "I64", np.arange(77, dtype=np.int64).reshape(1, 77), nai=True)
    assert clip_findings(report) == [("clip.nai_layout", "info")]


def test_standard_layout_has_no_nai_note(sparse_model):
    report = run(sparse_model, "SD1", SD1_POS, "I64", np.arange(77, dtype=np.int64).reshape(1, 77))
    assert not report.has("clip.nai_layout")


def test_bf16_ids_are_read_through_the_bf16_path(sparse_model):
    values = np.arange(77, dtype=np.float32).reshape(1, 77)
    values[0, 76] = 75.5  # exact in bf16 (step 0.5 near 76)
    bf16 = (values.view(np.uint32) >> 16).astype(np.uint16)
    report = run(sparse_model, "SD1", SD1_POS, "BF16", bf16)
    [ids] = report.clip_position_ids
    assert (ids.dtype, ids.wrong, ids.values) == ("BF16", (76,), (75.5,))
    assert clip_findings(report) == [("clip.position_ids.offset", "error")]


@pytest.mark.parametrize(("arch", "key"), [
    ("CLIP-SD1", "text_model.embeddings.position_ids"),
    ("CLIP-SDXL", "clip_l.text_model.embeddings.position_ids"),
])
def test_standalone_text_encoder_ids_are_checked(sparse_model, arch, key):
    report = run(sparse_model, arch, key, "F32", broken_position_ids())
    assert report.architecture == arch
    assert [(p.key, p.wrong) for p in report.clip_position_ids] == [(key, (41, 76))]


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_ckpt_ids_are_checked(write_ckpt, legacy):
    """A Lightning .ckpt at real shapes: every weight a stride-0 view of one element, so it stays tiny."""
    torch = pytest.importorskip("torch")
    one = torch.zeros(1, dtype=torch.float16)
    state = {s.key: one.expand(*s.shape) if s.shape else one[0] for s in family_specs("SD1")}
    state[SD1_POS] = torch.from_numpy(broken_position_ids())
    path = write_ckpt("merge.ckpt", {"state_dict": state, "global_step": 470000}, legacy=legacy)
    report = inspect_model(path)
    assert (report.format, report.architecture) == ("ckpt", "SD1")
    assert [(p.key, p.dtype, p.wrong) for p in report.clip_position_ids] == [(SD1_POS, "F32", (41, 76))]
    assert clip_findings(report) == [("clip.position_ids.offset", "error")]
    assert report.extras == {"global_step": 470000}
