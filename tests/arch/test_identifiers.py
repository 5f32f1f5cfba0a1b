"""Identifiers are str-valued enums that read exactly as the strings they replaced."""

from __future__ import annotations

import json

import pytest

from lib_modeldoc.arch.families import FAMILIES, Base, ComponentId, Family, FamilyKind, KeyLayout, Mount, Slot
from lib_modeldoc.io.model import ModelFormat
from lib_modeldoc.operations.plan import Action
from lib_modeldoc.strenum import StrEnum

ENUMS = (FamilyKind, Base, ComponentId, KeyLayout, Action, ModelFormat)
MEMBERS = [m for e in ENUMS for m in e]


@pytest.mark.parametrize("member", MEMBERS, ids=lambda m: f"{type(m).__name__}.{m.name}")
def test_a_member_reads_as_its_value_everywhere(member):
    value = member.value
    assert member == value and hash(member) == hash(value) and {value: 1}[member] == 1
    assert str(member) == value and type(str(member)) is str
    assert f"{member}" == value and f"[{member:>12}]" == f"[{value:>12}]" and "%s" % member == value
    assert json.dumps({member: [member]}) == json.dumps({value: [value]})
    assert ", ".join([member, member]) == f"{value}, {value}"


def test_strings_are_checked_when_a_family_is_declared():
    assert Slot("clip_l", ("clip_l",), (Mount("x.", layout="nai"),)).mounts[0].layout is KeyLayout.NAI
    with pytest.raises(ValueError):
        Family("X", "checkpiont", "SD1", "typo", ())
    with pytest.raises(ValueError):
        Family("X", "checkpoint", "SD4", "unknown base", ())
    with pytest.raises(ValueError):
        Slot("clip", ("clip_h",), (Mount(""),))  # the slot names are clip_l / clip_h / clip_g
    with pytest.raises(ValueError):
        Mount("", layout="nia")


def test_every_declared_family_holds_members():
    for fam in FAMILIES:
        assert type(fam.kind) is FamilyKind and type(fam.base) is Base, fam.name
        for slot in fam.slots:
            assert type(slot.component) is ComponentId, fam.name
            assert all(type(m.layout) is KeyLayout for m in slot.mounts), fam.name


def test_the_base_class_is_what_every_identifier_enum_uses():
    assert all(issubclass(e, StrEnum) and issubclass(e, str) for e in ENUMS)


def test_a_plan_holds_its_output_format_as_a_member():
    from lib_modeldoc.operations.plan import Plan

    plan = Plan([], [], format="ckpt")  # as the builders pass the option on
    assert plan.format is ModelFormat.CKPT and json.dumps({"format": plan.format}) == '{"format": "ckpt"}'
    with pytest.raises(ValueError):
        Plan([], [], format="pt")
