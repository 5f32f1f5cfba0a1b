"""Identification against a given set of families and tables: as parameters, or for a block of engine calls."""

from __future__ import annotations

import threading
from types import MappingProxyType

import numpy as np
from toy_components import FAMILIES as TOY_FAMILIES
from toy_components import TABLES as TOY_TABLES
from toy_components import checkpoint, save_safetensors, toy_architectures, toy_values

from lib_modeldoc.arch.identify import identify, known_architectures
from lib_modeldoc.arch.tables import Table
from lib_modeldoc.checks.diagnose import inspect_model


def _shapes(tensors):
    return {k: tuple(v.shape) for k, v in tensors.items()}


TOY = _shapes(checkpoint(toy_values()))


def test_families_and_tables_as_parameters():
    assert identify(TOY).architecture == "unknown"  # the shipped families know no toy
    ident = identify(TOY, families=TOY_FAMILIES, tables=TOY_TABLES.__getitem__)
    assert ident.architecture == "TOY" and {s.component for s in ident.slots if s.complete} == {"unet", "vae", "clip_l"}
    assert identify(TOY).architecture == "unknown"  # nothing stays behind


def test_two_tables_of_one_id_are_told_apart():
    """What is derived from a table is cached by the object: a table of the same id with other keys
    (a trimmed copy, a toy) is laid out anew, never served the first one's keys."""
    vae = TOY_TABLES["toy_vae"]
    fewer = Table(vae.id, MappingProxyType(dict(list(vae.shapes.items())[:4])), vae.optional)
    file = {"first_stage_model." + k: s for k, s in fewer.shapes.items()}
    slot = identify(file, families=TOY_FAMILIES[:1], tables={**TOY_TABLES, "toy_vae": fewer}.__getitem__).slot("vae")
    assert slot.complete and slot.missing == ()
    slot = identify(file, families=TOY_FAMILIES[:1], tables=TOY_TABLES.__getitem__).slot("vae")
    assert not slot.complete and len(slot.missing) == len(vae.shapes) - 4
    assert slot.missing[0] == "first_stage_model." + list(vae.shapes)[4]


def test_the_engine_sees_the_known_architectures_in_the_block_only(tmp_path):
    path = save_safetensors(tmp_path / "toy.safetensors", checkpoint(toy_values()))
    assert inspect_model(path).architecture == "unknown"
    with toy_architectures():
        assert inspect_model(path).architecture == "TOY"
        seen = []  # in every thread: the WebUI runs the engine in workers
        worker = threading.Thread(target=lambda: seen.append(inspect_model(path).architecture))
        worker.start()
        worker.join()
        assert seen == ["TOY"]
        with known_architectures(TOY_FAMILIES[1:], TOY_TABLES.__getitem__):  # the toy VAE family alone
            assert inspect_model(path).architecture == "unknown"
        assert inspect_model(path).architecture == "TOY"
    assert inspect_model(path).architecture == "unknown"
