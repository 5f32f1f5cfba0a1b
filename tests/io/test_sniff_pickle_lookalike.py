"""A safetensors file whose header length begins with a pickle protocol marker is still safetensors."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

from lib_modeldoc.io.sniff import Format, sniff_bytes
from lib_modeldoc.io.model import open_model


@pytest.mark.parametrize("length", [0x280, 0x380, 0x480, 0x580, 0x10280])
def test_header_length_that_looks_like_a_pickle_marker(tmp_path, length):
    # pad the metadata so the JSON header (with safetensors' own padding to 8) is exactly `length` bytes
    base = {"__metadata__": {"pad": ""}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    raw = json.dumps(base, separators=(",", ":"))
    base["__metadata__"]["pad"] = "x" * (length - len(raw))
    header = json.dumps(base, separators=(",", ":")).encode()
    assert len(header) == length
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", length) + header + np.ones(2, np.float32).tobytes())
    head = path.read_bytes()[:512]
    assert head[:1] == b"\x80" and 2 <= head[1] <= 5
    assert sniff_bytes(head, "w.bin") is Format.SAFETENSORS
    with open_model(str(path)) as model:
        assert model.format == "safetensors" and list(model) == ["w"]


def test_the_writer_of_safetensors_agrees(tmp_path):
    path = tmp_path / "v.safetensors"
    save_file({"v": np.zeros(3, np.float32)}, str(path), metadata={"k": "y" * 600})
    with open_model(str(path)) as model:
        assert model.format == "safetensors"
