"""The hard rule: a tensor under a recognised component's prefix is never junk.

Junk is only a named group no WebUI loads (embedding_manager, LoRA leftovers, a stray
control_model, optimizer state); anything else no table claims is "unknown, kept" and dropped
only with ``drop_unknown``. Checked on real-shape sparse files, through inspect and convert's plan.
"""

from __future__ import annotations

import pytest

from lib_modeldoc.arch.families import FAMILIES, KNOWN_BUFFERS
from lib_modeldoc.operations.convert import ConvertOptions, plan_convert
from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.arch.layout import JUNK, UNKNOWN, component_prefixes, layout_of
from lib_modeldoc.io.model import open_model
from lib_modeldoc.arch.parts import identify_model
from lib_modeldoc.samples import Spec, family_specs

# Junk no WebUI loads, one key per named group.
JUNK_SPECS = (
    Spec("embedding_manager.embedder.transformer.text_model.final_layer_norm.weight", "F16", (768,)),
    Spec("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", "F16", (4, 320)),
    Spec("lora_te_text_model_encoder_layers_0_mlp_fc1.alpha", "F32", ()),
    Spec("control_model.zero_convs.0.0.weight", "F16", (320, 320, 1, 1)),
    Spec("optimizer_states.0.state.exp_avg", "F32", (16,)),
)


def plan_for(path, **options):
    with open_model(path) as model:
        ident = identify_model(model)
        plan = plan_convert(model, ConvertOptions(**options), ident=ident)
        return ident, plan


def dropped(plan, reason=None):
    return {d.key for d in plan.dropped if reason is None or d.reason == reason}


def written(plan):
    return {e.key for e in plan.entries}


# -- the failing cases of issue 12 ------------------------------------------------------------

UNCLIP_H_EXTRA = (
    Spec("embedder.model.visual.conv1.weight", "F16", (1280, 3, 14, 14)),
    Spec("embedder.model.visual.transformer.resblocks.0.attn.in_proj_weight", "F16", (3840, 1280)),
    Spec("embedder.model.visual.proj", "F16", (1280, 1024)),
    Spec("embedder.model.ln_final.weight", "F16", (1024,)),
    Spec("embedder.model.token_embedding.weight", "F16", (49408, 1024)),
    Spec("model.diffusion_model.label_emb.0.0.weight", "F16", (1280, 2048)),
    Spec("model.diffusion_model.label_emb.0.0.bias", "F16", (1280,)),
    Spec("model.diffusion_model.label_emb.0.2.weight", "F16", (1280, 1280)),
    Spec("model.diffusion_model.label_emb.0.2.bias", "F16", (1280,)),
    Spec("noise_augmentor.betas", "F32", (1000,)),
)

ALT_EXTRA = (
    Spec("cond_stage_model.roberta.embeddings.word_embeddings.weight", "F16", (250002, 1024)),
    Spec("cond_stage_model.roberta.encoder.layer.0.attention.self.query.weight", "F16", (1024, 1024)),
    Spec("cond_stage_model.transformation.weight", "F16", (768, 1024)),
    Spec("cond_stage_model.transformation.bias", "F16", (768,)),
)

PARTIAL_UNET_EXTRA = (
    Spec("model.diffusion_model.input_blocks.1.2.temporal.weight", "F16", (320, 320)),
    Spec("model.diffusion_model.output_blocks.11.9.proj.weight", "F16", (640, 320)),
    Spec("model.diffusion_model.extra_head.weight", "F16", (1024, 1024)),
)


@pytest.mark.parametrize("arch, extra", [
    ("SD2", UNCLIP_H_EXTRA),
    ("SD1", ALT_EXTRA),
    ("SD1", PARTIAL_UNET_EXTRA),
], ids=["sd2-unclip-embedder-label_emb", "altdiffusion-text-encoder", "partial-unet"])
def test_loaded_parts_are_never_junk(sparse_model, arch, extra):
    base = [s for s in family_specs(arch) if not (arch == "SD1" and s.key.startswith("cond_stage_model.")
                                                  and extra is ALT_EXTRA)]
    path = sparse_model("model.safetensors", base + list(extra))
    report = inspect_model(path)
    extra_keys = {s.key for s in extra}
    assert report.junk.keys == 0, report.junk
    assert not report.has("junk")
    assert report.unknown.keys >= 1 or report.architecture not in ("SD1", "SD2")
    ident, plan = plan_for(path)
    assert extra_keys <= written(plan), sorted(extra_keys - written(plan))
    assert not dropped(plan)
    # Dropped only when the user asks for it.
    _, asked = plan_for(path, drop_unknown=True)
    unknown = extra_keys & dropped(asked, "unknown")
    assert unknown == extra_keys - {k for s in ident.slots for k in s.keys} - KNOWN_BUFFERS


def test_named_junk_groups_are_still_junk(sparse_model):
    path = sparse_model("merge.safetensors", family_specs("SD1") + list(JUNK_SPECS))
    report = inspect_model(path)
    assert report.junk.keys == len(JUNK_SPECS)
    groups = " ".join(g.group for g in report.junk.groups)
    for name in ("embedding_manager", "LoRA leftovers", "control_model", "optimizer state"):
        assert name in groups
    _, plan = plan_for(path)
    assert dropped(plan, "junk") == {s.key for s in JUNK_SPECS}
    _, kept = plan_for(path, keep_junk=True)
    assert {s.key for s in JUNK_SPECS} <= written(kept)


def test_no_ema_leaves_no_model_ema_key(sparse_model):
    specs = family_specs("SD1", ema=True) + [Spec("model_ema.decay", "F32", ()), Spec("model_ema.num_updates", "I32", ())]
    path = sparse_model("ema.safetensors", specs)
    _, plan = plan_for(path, prune="no-ema")
    assert not [k for k in written(plan) if k.startswith("model_ema.")]
    assert {"model_ema.decay", "model_ema.num_updates"} <= dropped(plan, "ema")
    _, only = plan_for(path, prune="ema-only")
    assert not [k for k in written(only) if k.startswith("model_ema.")]
    _, kept = plan_for(path, prune="none")
    assert {"model_ema.decay", "model_ema.num_updates"} <= written(kept)


def _checkpoint_families():
    return [f for f in FAMILIES]


@pytest.mark.parametrize("fam", _checkpoint_families(), ids=lambda f: f.name)
def test_property_nothing_under_a_recognised_prefix_is_junk(sparse_model, fam):
    """Every family: unclaimed tensors under each of its prefixes are kept; only named groups go."""
    specs = family_specs(fam.name)
    path0 = sparse_model("probe.safetensors", specs)
    with open_model(path0) as model:
        ident = identify_model(model)
    assert ident.architecture == fam.name
    prefixes = component_prefixes(ident)
    strays = [Spec(f"{p}zz_unclaimed_{i}.weight", "F16", (8, 8)) for i, p in enumerate(prefixes)]
    strays += [Spec(f"{p}label_emb.9.0.weight", "F16", (16, 16)) for p in prefixes if p.endswith("diffusion_model.")]
    junk = [s for s in JUNK_SPECS if not (s.key.startswith("control_model.") and fam.name.startswith("ControlNet"))]
    path = sparse_model("prop.safetensors", specs + strays + junk)
    with open_model(path) as model:
        ident = identify_model(model)
        assert ident.architecture == fam.name
        layout = layout_of(list(model), ident)
        plan = plan_convert(model, ConvertOptions(), ident=ident)
    for key, part in layout.parts.items():
        if key.startswith(prefixes):
            assert part != JUNK, key
    assert {s.key for s in strays} <= set(layout.keys(UNKNOWN)) | ident.claimed()
    junk_dropped = dropped(plan, "junk")
    assert not [k for k in junk_dropped if k.startswith(prefixes)]
    assert junk_dropped <= {s.key for s in JUNK_SPECS}
    assert {s.key for s in strays} <= written(plan)
    assert {s.key for s in specs} <= written(plan)
