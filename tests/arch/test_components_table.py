"""The components table (arch/components.py) agrees with the families and the front ends' words."""

from __future__ import annotations

import re

import pytest

from lib_modeldoc.arch.components import COMPONENTS, GROUPS, TEXT_ENCODERS, component_facts, component_name, group_of
from lib_modeldoc.arch.families import FAMILIES, family
from lib_modeldoc.ui import wording as tab_wording

SLOT_NAMES = {s.component for f in FAMILIES for s in f.slots}


def test_every_entry_is_a_slot_of_some_family():
    assert {c.id for c in COMPONENTS} <= SLOT_NAMES
    assert len({c.id for c in COMPONENTS}) == len(COMPONENTS)


@pytest.mark.parametrize("entry", [c for c in COMPONENTS if c.export_as], ids=lambda c: c.id)
def test_export_targets_are_standalone_families_with_the_slot(entry):
    for base, name in entry.export_as.items():
        target = family(name)
        assert target.kind == "component"
        assert target.slot(entry.export_slot) is not None, (entry.id, base, name)
        # the source base is one some checkpoint family has this component in
        assert any(f.base == base or base == "SD" for f in FAMILIES if f.kind == "checkpoint" and f.slot(entry.id))


def test_groups_and_text_encoders():
    assert TEXT_ENCODERS == ("clip_l", "clip_h", "clip_g")
    assert {c.group for c in COMPONENTS} <= set(GROUPS)
    assert (group_of("ema_unet"), group_of("clip_g"), group_of("junk"), group_of("depth")) == ("unet", "clip", "other", "other")


def test_block_rules_have_one_group():
    for entry in COMPONENTS:
        if entry.blocks:
            assert re.compile(entry.blocks).groups == 1, entry.id


def test_metric_selection():
    assert component_facts("unet").metric.selects("input_blocks.0.0.weight")
    vae = component_facts("vae").metric
    assert vae.selects("decoder.up.0.block.0.conv1.weight") and not vae.selects("quant_conv.weight")
    clip = component_facts("clip_l").metric
    assert clip.selects("encoder.layers.3.mlp.fc1.weight")
    assert not clip.selects("encoder.layers.23.mlp.fc1.weight") and not clip.selects("encoder.layers.3.self_attn.q_proj.weight")
    assert component_facts("clip_g").metric is None


def test_tab_words_only_override_known_components():
    assert set(tab_wording.COMPONENTS) <= {c.id for c in COMPONENTS}
    assert tab_wording.component_text("clip_l") == "CLIP-L" and component_name("clip_l") == "CLIP-L text encoder"
    assert tab_wording.component_text("vae") == component_name("vae") == "VAE"
    assert tab_wording.component_text("other") == component_name("other") == "other"
