"""EMA, junk, precision, prediction markers, metadata and the pruned size, on real-shape files."""

from __future__ import annotations

import os
import pathlib
import re

import numpy as np
import pytest

from lib_modeldoc.arch.families import SCHEDULER_BUFFERS
from lib_modeldoc.arch.tables import table
from lib_modeldoc.checks import CHECKS
from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.samples import Spec, family_specs, write_demo_sample

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONTRACT = ROOT.parent / "shared" / "reference" / "cli-contract.md"

# The contract's finding ids, and the extra ones inspect adds (the contract allows additions).
CONTRACT_IDS = {
    "clip.position_ids.offset", "clip.position_ids.float", "clip.nai_layout", "junk", "ema",
    "precision.waste", "precision.fp64", "component.missing", "component.incomplete", "prediction.v",
    "prediction.ztsnr", "arch.unknown", "values.nonfinite", "values.zero",
}
EXTRA_IDS = {"arch.inspect_only", "format.pickle", "unknown.kept", "prediction.edm", "lora.summary",
             "lora.base_unknown", "embedding.summary", "sidecar.yaml_missing"}
SCAN_IDS = {"values.nonfinite", "values.zero"}  # only with --scan
FIT_IDS = {"adapter.fit"}  # only with --fit; its severity is the answer (fits or not)
SEVERITY = {
    "clip.position_ids.offset": "error", "clip.position_ids.float": "warning", "clip.nai_layout": "info",
    "junk": "warning", "ema": "info", "precision.waste": "info", "precision.fp64": "warning",
    "component.missing": "error", "component.incomplete": "error", "prediction.v": "info",
    "prediction.ztsnr": "info", "arch.unknown": "warning", "arch.inspect_only": "info", "format.pickle": "info",
    "unknown.kept": "info", "prediction.edm": "info", "lora.summary": "info", "lora.base_unknown": "info",
    "embedding.summary": "info", "sidecar.yaml_missing": "warning",
}


def good_ids(specs):
    return {s.key: np.arange(77, dtype=np.int64).reshape(1, 77) for s in specs if s.key.endswith("position_ids")}


def inspect_specs(sparse_model, specs, name="m.safetensors", metadata=None):
    return inspect_model(sparse_model(name, specs, good_ids(specs), metadata))


def ids_of(report) -> list[str]:
    for f in report.findings:  # every finding anywhere keeps its stable severity
        assert f.severity.value == SEVERITY[f.id], f.id
    return [f.id for f in report.findings]


def junk_specs(dtype="F32"):
    return [Spec(f"embedding_manager.embedder.transformer.text_model.{k}", dtype, s)
            for k, s in table("clip_l").shapes.items() if not k.endswith("position_ids")]


def buffer_specs(dtype="F32"):
    return [Spec(k, dtype, (1000,)) for k in sorted(SCHEDULER_BUFFERS)] + [
        Spec("model_ema.decay", "F32", ()), Spec("model_ema.num_updates", "I32", ())]


# EMA -----------------------------------------------------------------------------------------

def test_ema_keys_and_bytes(sparse_model):
    specs = family_specs("SD1", ema=True)
    ema = [s for s in specs if s.key.startswith("model_ema.diffusion_model")]
    report = inspect_specs(sparse_model, specs)
    assert report.architecture == "SD1"
    assert report.ema.to_dict() == {"keys": 686, "bytes": sum(s.nbytes for s in ema)}
    assert report.components["ema_unet"].complete
    assert report.junk.keys == 0
    assert ids_of(report) == ["ema"]
    [finding] = report.findings
    assert finding.bytes_affected == report.ema.bytes


def test_no_ema_reports_no_ema_component(sparse_model):
    report = inspect_specs(sparse_model, family_specs("SD1"))
    assert report.ema.to_dict() == {"keys": 0, "bytes": 0}
    assert "ema_unet" not in report.components
    assert ids_of(report) == []


# Precision -----------------------------------------------------------------------------------

def test_float64_tensors_are_reported(sparse_model):
    specs = family_specs("SD1")
    wide = {"model.diffusion_model.time_embed.0.weight", "model.diffusion_model.time_embed.2.weight"}
    specs = [Spec(s.key, "F64", s.shape) if s.key in wide else s for s in specs]
    specs += [Spec("alphas_cumprod", "F64", (1000,))]
    report = inspect_specs(sparse_model, specs)
    [finding] = [f for f in report.findings if f.id == "precision.fp64"]
    assert set(finding.keys) == wide | {"alphas_cumprod"}
    assert finding.bytes_affected == sum(s.nbytes for s in specs if s.dtype == "F64")
    assert report.junk.keys == 0


def test_fp32_weights_are_precision_waste(sparse_model):
    specs = family_specs("SD1", dtype="F32")
    report = inspect_specs(sparse_model, specs)
    [finding] = [f for f in report.findings if f.id == "precision.waste"]
    assert finding.bytes_affected == sum(s.nbytes // 2 for s in specs if s.dtype == "F32")
    assert ids_of(report) == ["precision.waste"]


def test_fp32_only_in_ema_junk_and_buffers_is_not_waste(sparse_model):
    specs = [s if s.key.startswith("model_ema") else Spec(s.key, "F16" if s.dtype == "F32" else s.dtype, s.shape)
             for s in family_specs("SD1", dtype="F32", ema=True)]
    report = inspect_specs(sparse_model, specs + junk_specs("F32") + buffer_specs("F32"))
    assert "precision.waste" not in ids_of(report)
    assert ids_of(report) == ["junk", "ema"]


def test_fp16_model_has_no_precision_finding(sparse_model):
    report = inspect_specs(sparse_model, family_specs("SDXL"))
    assert not [i for i in ids_of(report) if i.startswith("precision.")]


# Buffers and markers -------------------------------------------------------------------------

def test_scheduler_and_ema_buffers_are_not_junk(sparse_model):
    report = inspect_specs(sparse_model, family_specs("SD1") + buffer_specs())
    assert report.junk.to_dict() == {"keys": 0, "bytes": 0, "groups": []}
    # EMA bookkeeping goes with the EMA (--prune no-ema drops every model_ema.* key); alone, it is no finding.
    assert report.ema.to_dict() == {"keys": 2, "bytes": 8}
    assert ids_of(report) == []


@pytest.mark.parametrize("arch", ["SDXL", "SD2"])
def test_prediction_marker_tensors(sparse_model, arch):
    specs = family_specs(arch) + [Spec("v_pred", "F32", (0,)), Spec("ztsnr", "F32", (0,))]
    report = inspect_specs(sparse_model, specs, metadata={"format": "pt"})
    assert report.architecture == arch
    # AUTOMATIC1111 1.10 sees v-prediction in an SD2 file by itself, in an SDXL file only through NAME.yaml
    needs_yaml = ["sidecar.yaml_missing"] if arch == "SDXL" else []
    assert ids_of(report) == ["prediction.v", *needs_yaml, "prediction.ztsnr"]
    assert report.junk.to_dict() == {"keys": 0, "bytes": 0, "groups": []}
    # The markers survive a prune: same keys, same dtypes, so the pruned file is this file.
    # ... plus the short provenance note convert adds to the metadata.
    assert 0 <= report.pruned_size_bytes - report.size_bytes < 1024
    by_id = {f.id: f for f in report.findings}
    assert by_id["prediction.v"].keys == ("v_pred",) and by_id["prediction.ztsnr"].keys == ("ztsnr",)


@pytest.mark.parametrize(("metadata", "expected"), [
    ({"modelspec.prediction_type": "v"}, ["prediction.v"]),
    ({"modelspec.predict_key": "v"}, ["prediction.v"]),
    ({"ss_base_model_version": "sd_v2_768_v"}, ["prediction.v"]),
    ({"ss_zero_terminal_snr": "True"}, ["prediction.ztsnr"]),
    ({"modelspec.prediction_type": "v", "ss_zero_terminal_snr": "true"}, ["prediction.v", "prediction.ztsnr"]),
    ({"modelspec.prediction_type": "epsilon"}, []),
])
def test_prediction_from_metadata(sparse_model, metadata, expected):
    report = inspect_specs(sparse_model, family_specs("SD2"), metadata=metadata)
    assert ids_of(report) == expected


@pytest.mark.parametrize("arch", ["SD1", "SDXL"])
def test_v_model_without_its_yaml_is_flagged_until_the_yaml_is_there(sparse_model, tmp_path, arch):
    from lib_modeldoc.checks.diagnose import inspect_model

    path = sparse_model(f"{arch}-v.safetensors", family_specs(arch), metadata={"modelspec.prediction_type": "v"})
    by_id = {f.id: f for f in inspect_model(path).findings}
    assert by_id["sidecar.yaml_missing"].severity.value == "warning"
    assert f"{arch}-v.yaml" in by_id["sidecar.yaml_missing"].message
    with open(os.path.splitext(path)[0] + ".yaml", "w") as f:
        f.write("model:\n  params:\n    parameterization: v\n")
    assert "sidecar.yaml_missing" not in [f.id for f in inspect_model(path).findings]
    plain = sparse_model(f"{arch}-eps.safetensors", family_specs(arch))
    assert "sidecar.yaml_missing" not in [f.id for f in inspect_model(plain).findings]


def test_markers_are_never_junk_even_beside_real_junk(sparse_model):
    specs = family_specs("SDXL") + [Spec("v_pred", "F32", (0,)), Spec("ztsnr", "F32", (0,))]
    specs += [Spec("edm_vpred.sigma_max", "F32", ()), Spec("edm_vpred.sigma_min", "F32", ())]
    specs += [Spec("lora_te1_text_model_encoder_layers_0_mlp_fc1.alpha", "F16", ())]
    report = inspect_specs(sparse_model, specs)
    assert report.junk.keys == 1 and report.junk.bytes == 2
    assert "prediction.v" in ids_of(report)


# Pruned size ---------------------------------------------------------------------------------

@pytest.mark.parametrize("buffers", ["F32", "F64"])
def test_pruned_size_is_the_size_of_the_pruned_file(sparse_model, buffers):
    """fp32 + EMA + junk, pruned, is exactly an fp16 no-EMA no-junk file.

    Scheduler buffers keep their precision (they are not cast to fp16), except that float64 is
    narrowed to float32 as everywhere else.
    """
    source = family_specs("SD1", dtype="F32", ema=True) + junk_specs("F32") + buffer_specs(buffers)
    report = inspect_specs(sparse_model, source, name="fat.safetensors")
    assert report.ema.keys == 688 and report.junk.keys == 196  # EMA: 686 UNet copies + decay, num_updates

    expected = family_specs("SD1", dtype="F16") + [s for s in buffer_specs("F32") if not s.key.startswith("model_ema.")]
    path = sparse_model("pruned.safetensors", expected, good_ids(expected), {"format": "pt"})
    assert 0 <= report.pruned_size_bytes - os.path.getsize(path) < 1024  # + provenance note
    # And it is the fat file less EMA and junk, with weights at half size, give or take the header.
    weights = sum(s.nbytes for s in family_specs("SD1", dtype="F32") if s.dtype == "F32")
    estimate = report.size_bytes - report.ema.bytes - report.junk.bytes - weights // 2
    assert abs(report.pruned_size_bytes - estimate) < 256 * 1024


# Metadata ------------------------------------------------------------------------------------

def test_metadata_json_values_are_decoded(sparse_model):
    metadata = {
        "format": "pt",
        "sd_merge_recipe": '{"type": "webui", "interp_method": "Add difference", "multiplier": 1.0}',
        "sd_merge_models": '{"abc123": {"name": "a.safetensors", "legacy_hash": "deadbeef"}}',
        "ss_tag_frequency": ' [1, 2, 3] ',
        "notes": "{not json",
        "modelspec.title": "My model",
    }
    report = inspect_specs(sparse_model, family_specs("VAE"), metadata=metadata)
    assert report.metadata == {
        "format": "pt",
        "sd_merge_recipe": {"type": "webui", "interp_method": "Add difference", "multiplier": 1.0},
        "sd_merge_models": {"abc123": {"name": "a.safetensors", "legacy_hash": "deadbeef"}},
        "ss_tag_frequency": [1, 2, 3],
        "notes": "{not json",
        "modelspec.title": "My model",
    }


# Finding ids ---------------------------------------------------------------------------------

def test_checks_emit_only_known_ids():
    sources = "\n".join(p.read_text() for p in (ROOT / "lib_modeldoc" / "checks").glob("*.py"))
    used = set(re.findall(r'Finding(?:\.worded)?\(\s*"([a-z0-9_.]+)"', sources))
    assert used, "no Finding(...) ids found in lib_modeldoc/checks"
    assert used <= CONTRACT_IDS | EXTRA_IDS | FIT_IDS, used - CONTRACT_IDS - EXTRA_IDS - FIT_IDS
    assert CONTRACT_IDS - SCAN_IDS <= used
    assert set(SEVERITY) == (CONTRACT_IDS - SCAN_IDS) | EXTRA_IDS


@pytest.mark.skipif(not CONTRACT.is_file(), reason="needs the maintainers' CLI contract, kept outside this repository")
def test_contract_ids_match_the_contract_file():
    text = CONTRACT.read_text()
    section = text[text.index("Finding ids"):text.index("## convert")]
    assert set(re.findall(r"`([a-z0-9_]+(?:\.[a-z0-9_]+)*)`", section)) == CONTRACT_IDS


def test_findings_come_in_check_order(tmp_path):
    report = inspect_model(write_demo_sample(str(tmp_path)))
    assert ids_of(report) == ["clip.position_ids.offset", "junk", "ema", "precision.fp64", "precision.waste"]
    assert [c.__name__ for c in CHECKS][:3] == ["check_identity", "check_components", "check_position_ids"]


def test_ckpt_training_state_outside_state_dict_is_junk(write_ckpt):
    torch = pytest.importorskip("torch")
    one = torch.zeros(1, dtype=torch.float16)
    state = {s.key: one.expand(*s.shape) if s.shape else one[0] for s in family_specs("SD1")}
    state["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77).reshape(1, 77)
    optimizer = [{"state": {0: {"exp_avg": torch.zeros(320, 4, 3, 3)}}}]
    path = write_ckpt("trained.ckpt", {"state_dict": state, "global_step": 1, "optimizer_states": optimizer})
    report = inspect_model(path)
    assert report.architecture == "SD1"
    assert report.junk.keys == 1 and report.junk.bytes == 320 * 4 * 3 * 3 * 4
    assert report.junk.groups[0].pattern == "optimizer_states.* (outside state_dict)"
    assert ids_of(report) == ["junk", "format.pickle"]
