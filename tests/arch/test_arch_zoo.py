"""Every family of issue 12 from a real-shape sparse file (``lib_modeldoc.samples.SAMPLES``):
identification, the verdict, and convert's plan; and the hard rule on each.
"""

from __future__ import annotations

import pytest

from lib_modeldoc.operations.convert import ConvertOptions, plan_convert
from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.errors import PlanError
from lib_modeldoc.arch.layout import JUNK, component_prefixes, layout_of
from lib_modeldoc.io.model import open_model
from lib_modeldoc.arch.parts import identify_model
from lib_modeldoc.report.render import verdict_lines
from lib_modeldoc.samples import SAMPLES, Spec, write_safetensors_sample, write_sample

NAMES = sorted(SAMPLES)


@pytest.fixture(scope="module")
def sample_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    return {name: write_sample(str(folder / f"{name}.safetensors"), name) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_sample_is_identified_and_healthy(sample_paths, name):
    report = inspect_model(sample_paths[name])
    assert report.architecture == SAMPLES[name].architecture, report.evidence
    assert report.junk.keys == 0
    v_sdxl = name == "noobai-xl-vpred"  # AUTOMATIC1111 1.10 needs NAME.yaml to see its v-prediction
    assert [f.id for f in report.findings if f.severity.value in ("error", "warning")] == (
        ["sidecar.yaml_missing"] if v_sdxl else []), report.findings
    if not v_sdxl:
        assert verdict_lines(report)[1] == "Verdict: healthy - nothing wrong found"
    if report.architecture in ("SD2-unCLIP", "AltDiffusion", "ControlNet-SD2", "ControlNet-SDXL"):
        assert all(c.complete for c in report.components.values()), report.components


@pytest.mark.parametrize("name", NAMES)
def test_default_plan_keeps_every_tensor(sample_paths, name):
    with open_model(sample_paths[name]) as model:
        ident = identify_model(model)
        keys = set(model)
        if not ident.prunable:
            with pytest.raises(PlanError, match="no tensor can be called junk"):
                plan_convert(model, ConvertOptions(), ident=ident)
            plan = plan_convert(model, ConvertOptions(keep_junk=True, precision="keep"), ident=ident)
        else:
            plan = plan_convert(model, ConvertOptions(), ident=ident)
    assert not plan.dropped, plan.dropped[:3]
    assert {e.key for e in plan.entries} == keys


def test_unclip_variants_are_told_apart(sample_paths):
    h = inspect_model(sample_paths["sd21-unclip-h"])
    l = inspect_model(sample_paths["sd21-unclip-l"])
    assert h.components["embedder"].table == "unclip_embedder_h" and h.components["unet"].table == "unet_sd2_unclip_h"
    assert l.components["embedder"].table == "unclip_embedder_l" and l.components["unet"].table == "unet_sd2_unclip_l"
    # 1.16 GB of image encoder (fp16 here) and label_emb: loaded by the WebUI, never junk.
    assert h.components["embedder"].bytes > 1_000_000_000


def test_altdiffusion_variants_are_told_apart(sample_paths):
    m9 = inspect_model(sample_paths["altdiffusion-m9"])
    m18 = inspect_model(sample_paths["altdiffusion-m18"])
    assert (m9.components["xlm_roberta"].table, m9.components["unet"].table) == ("xlmr_m9", "unet_sd1")
    assert (m18.components["xlm_roberta"].table, m18.components["unet"].table) == ("xlmr_m18", "unet_sd2")
    assert m9.components["xlm_roberta"].bytes > 900_000_000  # the 915 MB text encoder of the issue (fp16: 1.1 GB)


@pytest.mark.parametrize("name, label", [
    ("controlnet-sdxl-diffusers", "ControlNet (SDXL, diffusers layout)"),
    ("t2i-adapter-sdxl", "T2I-Adapter (SDXL)"),
    ("ip-adapter-sdxl", "IP-Adapter (SDXL)"),
    ("ip-adapter-sd15", "IP-Adapter (SD1)"),
    ("controlnet-flux-xlabs", "ControlNet (Flux)"),
    ("controlnet-sd3-diffusers", "ControlNet (SD3)"),
    ("flux1-dev-checkpoint", "FLUX.1 checkpoint"),
])
def test_signature_variants_name_the_base(sample_paths, name, label):
    assert inspect_model(sample_paths[name]).label == label


def test_edm_and_vpred_markers_are_reported_and_kept(sample_paths):
    edm = inspect_model(sample_paths["playground-v2.5-edm"])
    assert edm.has("prediction.edm")
    vpred = inspect_model(sample_paths["noobai-xl-vpred"])
    assert vpred.has("prediction.v") and vpred.has("prediction.ztsnr")
    for name in ("playground-v2.5-edm", "noobai-xl-vpred"):
        with open_model(sample_paths[name]) as model:
            plan = plan_convert(model, ConvertOptions(format="ckpt"))
        markers = {"edm_mean", "edm_std"} if name.startswith("playground") else {"v_pred", "ztsnr"}
        assert markers <= {e.key for e in plan.entries}


JUNK = (
    Spec("embedding_manager.embedder.transformer.text_model.final_layer_norm.weight", "F16", (768,)),
    Spec("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", "F16", (4, 320)),
)


@pytest.mark.parametrize("name", NAMES)
def test_property_nothing_under_a_recognised_prefix_is_planned_as_junk(tmp_path, name):
    specs = SAMPLES[name].specs()
    probe = write_safetensors_sample(str(tmp_path / "probe.safetensors"), specs)
    with open_model(probe) as model:
        prefixes = component_prefixes(identify_model(model))
    strays = [Spec(f"{p}zz_unclaimed.weight", "F16", (8, 8)) for p in prefixes]
    own = {s.key for s in specs}
    junk = [] if SAMPLES[name].architecture == "Embedding" else [s for s in JUNK if s.key not in own]
    path = write_safetensors_sample(str(tmp_path / "x.safetensors"), specs + strays + junk)
    with open_model(path) as model:
        ident = identify_model(model)
        assert ident.architecture == SAMPLES[name].architecture
        layout = layout_of(list(model), ident)
        plan = plan_convert(model, ConvertOptions(keep_junk=not ident.prunable), ident=ident)
    assert not [k for k, p in layout.parts.items() if p == JUNK and (not ident.prunable or k.startswith(prefixes))]
    dropped = {d.key for d in plan.dropped}
    assert dropped <= {s.key for s in JUNK}
    assert {s.key for s in specs} | {s.key for s in strays} <= {e.key for e in plan.entries}


@pytest.mark.parametrize("name, parts", [
    ("flux1-dev-checkpoint", {"transformer": "BF16", "clip_l": "BF16", "t5xxl": "BF16", "vae": "BF16"}),
    ("sd3-medium", {"transformer": "F16", "clip_l": "F16", "clip_g": "F16", "t5xxl": "F8_E4M3", "vae": "F16"}),
    ("flux1-dev-transformer", {"transformer": "BF16"}),
    ("flux1-schnell-transformer-fp8", {"transformer": "F8_E4M3"}),
])
def test_sd3_and_flux_files_list_their_parts(sample_paths, name, parts):
    from lib_modeldoc.dtypes import DTYPES

    report = inspect_model(sample_paths[name])
    assert set(report.components) == set(parts)
    for part, dtype in parts.items():
        found = [d for d in report.components[part].dtypes if d != "int64"]  # CLIP position_ids
        assert report.components[part].present and found == [DTYPES[dtype].label]
    assert sum(c.keys for c in report.components.values()) == report.tensors
