"""``header_size`` counts the bytes ``build_header`` writes without building the JSON, and the header
reader parses small headers without a Python hook per number yet still refuses a flood of numbers."""

from __future__ import annotations

import json
import random
import struct

import pytest

from lib_modeldoc.dtypes import DTYPES
from lib_modeldoc.errors import LimitExceededError
from lib_modeldoc.io import limits, safetensors_read
from lib_modeldoc.io.safetensors_write import OutTensor, build_header, header_size

KEYS = ["model.diffusion_model.out.2.weight", 'a"quote', "back\\slash", "ctl\x01", "del\x7f", "tab\there",
        "ünïcødé", "日本語", "\u2028line-sep", "emoji😀", "", " space"]
METADATA = [None, {}, {"format": "pt"}, {"ü": '"x\n', "modelspec.title": "日本"}, {"k": "\x00"}]


def test_header_size_equals_the_built_header_on_awkward_keys_shapes_and_metadata():
    rng = random.Random(16)
    for _ in range(400):
        tensors = [
            OutTensor(rng.choice(KEYS) + str(i), rng.choice(list(DTYPES)),
                      tuple(rng.choice([0, 1, 9, 10, 77, 320, 1280, 49408, 10**12]) for _ in range(rng.randint(0, 4))))
            for i in range(rng.randint(0, 20))
        ]
        metadata = rng.choice(METADATA)
        assert header_size(tensors, metadata) == len(build_header(tensors, metadata)), (tensors, metadata)


def test_header_size_of_nothing():
    assert header_size([]) == len(build_header([])) == 16  # 8-byte length + "{}" padded to 8


def _header_file(tmp_path, header: dict) -> tuple[str, int]:
    raw = json.dumps(header).encode()
    path = tmp_path / "m.safetensors"
    data = sum(e["data_offsets"][1] - e["data_offsets"][0] for k, e in header.items() if k != "__metadata__")
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * data)
    return str(path), path.stat().st_size


def test_a_header_that_cannot_hold_too_many_numbers_is_parsed_without_the_number_hook(tmp_path, monkeypatch):
    path, size = _header_file(tmp_path, {"a": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]}})

    def refuse(*args, **kwargs):
        raise AssertionError("the per-number hook ran")

    monkeypatch.setattr(safetensors_read, "_NumberCounter", refuse)
    with open(path, "rb") as f:
        tensors, _ = safetensors_read.read_safetensors_header(f, size, path)
    assert tensors["a"].shape == (2, 3)


def test_numbers_past_the_limit_are_still_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_HEADER_NUMBERS", 10)
    monkeypatch.setattr(limits, "MAX_HEADER_CONTAINERS", 10**6)
    header = {"__metadata__": {}, "a": {"dtype": "U8", "shape": [1] * 5, "data_offsets": [0, 1]},
              "b": {"dtype": "U8", "shape": [1] * 5, "data_offsets": [1, 2]}}
    path, size = _header_file(tmp_path, header)
    assert safetensors_read._numbers_bound(open(path, "rb").read()[8:]) > 10
    with open(path, "rb") as f, pytest.raises(LimitExceededError, match="more than 10 numbers"):
        safetensors_read.read_safetensors_header(f, size, path)
