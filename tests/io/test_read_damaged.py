"""Damaged-input matrix: every broken or foreign file is refused with one exact line.

Each case starts from valid tiny files written by the independent writers
(``safetensors.torch.save_file``, ``torch.save``), damages a copy, and checks through
``expect_read_error``: exact ``ModelReadError`` type and text, one line, unchanged bytes, and the
CLI exiting 2 with ``modeldoc: error: ...``. The messages asserted here are the contract.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import random
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import pytest
import torch

from lib_modeldoc.errors import ModelReadError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please log in.</body></html>\n"
TEXT = b"These are my notes about the model.\nDownload it from the usual site.\n"
RANDOM = random.Random(7).randbytes(4096)


@pytest.fixture
def good(write_safetensors, write_ckpt):
    """Bytes of valid tiny files: ``st`` (safetensors), ``zip`` and ``legacy`` (torch.save)."""
    st = write_safetensors(
        "good.safetensors",
        {"a": torch.arange(4, dtype=torch.float32), "b": torch.ones(2, 2, dtype=torch.float16)},
        metadata={"format": "pt"},
    )
    state = {"state_dict": {"w": torch.ones(64, 64)}}
    zipped, legacy = write_ckpt("good_zip.ckpt", state), write_ckpt("good_legacy.ckpt", state, legacy=True)
    blobs = {}
    for name, path in (("st", st), ("zip", zipped), ("legacy", legacy)):
        with open(path, "rb") as f:
            blobs[name] = f.read()
    (n,) = struct.unpack("<Q", blobs["st"][:8])
    assert json.loads(blobs["st"][8 : 8 + n])["a"]["data_offsets"] == [0, 16]  # F32 first, then F16
    return SimpleNamespace(n=n, header=json.loads(blobs["st"][8 : 8 + n]), **blobs)


def _with_header(g, header_bytes: bytes) -> bytes:
    """The good safetensors file with its header replaced (space-padded to at least its old length)."""
    n = max(g.n, len(header_bytes))
    return struct.pack("<Q", n) + header_bytes.ljust(n, b" ") + g.st[8 + g.n :]


def _edit_header(g, key: str, **changes) -> bytes:
    header = json.loads(json.dumps(g.header))
    header[key].update(changes)
    return _with_header(g, json.dumps(header, separators=(",", ":")).encode())


def _zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


@dataclass(frozen=True)
class Case:
    id: str
    suffix: str
    build: Callable[..., bytes]  # good -> damaged bytes
    message: Callable[..., str]  # (path, damaged bytes, good) -> the exact error text


CASES = [
    Case("truncated", ".safetensors", lambda g: g.st[:-5],
         lambda p, b, g: f"{p}: file is truncated: its tensors need {len(g.st)} bytes but it has {len(g.st) - 5}"),
    Case("truncated_inside_header", ".safetensors", lambda g: g.st[:40],
         lambda p, b, g: f"{p}: safetensors header length {g.n} runs past the end of the file (40 bytes); "
                         "the file is truncated or damaged"),
    Case("truncated_to_5_bytes", ".safetensors", lambda g: g.st[:5],
         lambda p, b, g: f"{p}: too short to be a model file (5 bytes)"),
    Case("header_length_past_end", ".safetensors", lambda g: struct.pack("<Q", len(g.st)) + g.st[8:],
         lambda p, b, g: f"{p}: safetensors header length {len(g.st)} runs past the end of the file "
                         f"({len(g.st)} bytes); the file is truncated or damaged"),
    Case("header_length_over_100MB", ".safetensors", lambda g: struct.pack("<Q", 100_000_001) + g.st[8:],
         lambda p, b, g: f"{p}: safetensors header length 100000001 is over the 100 MB limit; the file is damaged"),
    Case("header_length_max_u64", ".safetensors", lambda g: b"\xff" * 8 + g.st[8:],
         lambda p, b, g: f"{p}: safetensors header length {2**64 - 1} is over the 100 MB limit; the file is damaged"),
    Case("header_not_json", ".safetensors", lambda g: _with_header(g, b'{"a": nope}'),
         lambda p, b, g: f"{p}: safetensors header is not valid JSON (Expecting value at character 6); "
                         "the file is damaged"),
    Case("header_padded_with_nul", ".safetensors", lambda g: _with_header(g, b'{"a":1}'.ljust(g.n, b"\0")),
         lambda p, b, g: f"{p}: safetensors header is not valid JSON (Extra data at character 7); "
                         "the file is damaged"),
    Case("header_not_utf8", ".safetensors", lambda g: _with_header(g, b'{"\xff\xfe": 1}'),
         lambda p, b, g: f"{p}: safetensors header is not valid UTF-8; the file is damaged"),
    Case("header_not_object", ".safetensors", lambda g: _with_header(g, b"[1, 2]"),
         lambda p, b, g: f"{p}: safetensors header is not a JSON object; the file is damaged"),
    Case("metadata_not_strings", ".safetensors",
         lambda g: _with_header(g, json.dumps({**g.header, "__metadata__": {"steps": 5}}).encode()),
         lambda p, b, g: f"{p}: safetensors __metadata__ must map strings to strings"),
    Case("offsets_overlap", ".safetensors", lambda g: _edit_header(g, "b", data_offsets=[8, 16]),
         lambda p, b, g: f"{p}: tensor 'b' starts at byte 8 of the data section, expected 16 "
                         "(overlaps the previous tensor); the file is damaged"),
    Case("offsets_gap", ".safetensors", lambda g: _edit_header(g, "b", data_offsets=[20, 28]),
         lambda p, b, g: f"{p}: tensor 'b' starts at byte 20 of the data section, expected 16 "
                         "(leaves a gap before it); the file is damaged"),
    Case("offsets_gap_at_start", ".safetensors", lambda g: _edit_header(g, "a", data_offsets=[4, 20]),
         lambda p, b, g: f"{p}: tensor 'a' starts at byte 4 of the data section, expected 0 "
                         "(leaves a gap before it); the file is damaged"),
    Case("offsets_malformed", ".safetensors", lambda g: _edit_header(g, "b", data_offsets=[24, 16]),
         lambda p, b, g: f"{p}: tensor 'b' has invalid data_offsets [24, 16]; the file is damaged"),
    Case("shape_mismatch", ".safetensors", lambda g: _edit_header(g, "b", shape=[2, 3]),
         lambda p, b, g: f"{p}: tensor 'b' holds 8 bytes but F16[2, 3] needs 12; the file is damaged"),
    Case("dtype_mismatch", ".safetensors", lambda g: _edit_header(g, "b", dtype="F32"),
         lambda p, b, g: f"{p}: tensor 'b' holds 8 bytes but F32[2, 2] needs 16; the file is damaged"),
    Case("dtype_unknown", ".safetensors", lambda g: _edit_header(g, "b", dtype="F12"),
         lambda p, b, g: f"{p}: tensor 'b' has unsupported dtype 'F12'"),
    Case("shape_negative", ".safetensors", lambda g: _edit_header(g, "b", shape=[-2, -2]),
         lambda p, b, g: f"{p}: tensor 'b' has an invalid shape [-2, -2]; the file is damaged"),
    Case("trailing_garbage", ".safetensors", lambda g: g.st + b"garbage",
         lambda p, b, g: f"{p}: 7 unexpected bytes after the last tensor; the file is damaged"),
    Case("empty", ".safetensors", lambda g: b"", lambda p, b, g: f"{p}: file is empty"),
    Case("empty_ckpt", ".ckpt", lambda g: b"", lambda p, b, g: f"{p}: file is empty"),
    Case("text_renamed", ".safetensors", lambda g: TEXT, lambda p, b, g: f"{p}: a text file, not a model file"),
    Case("html_renamed_safetensors", ".safetensors", lambda g: HTML,
         lambda p, b, g: f"{p}: an HTML page, not a model file (a failed download?)"),
    Case("html_renamed_ckpt", ".ckpt", lambda g: HTML,
         lambda p, b, g: f"{p}: an HTML page, not a model file (a failed download?)"),
    Case("random_bytes_safetensors", ".safetensors", lambda g: RANDOM,
         lambda p, b, g: f"{p}: safetensors header length {struct.unpack('<Q', b[:8])[0]} is over the "
                         "100 MB limit; the file is damaged"),
    Case("random_bytes_ckpt", ".ckpt", lambda g: RANDOM,
         lambda p, b, g: f"{p}: not a model file (neither safetensors nor a PyTorch checkpoint)"),
    Case("zip_not_checkpoint", ".ckpt", lambda g: _zip_of({"photos/readme.txt": b"hello"}),
         lambda p, b, g: f"{p}: a zip archive without data.pkl, not a PyTorch checkpoint"),
    Case("zip_renamed_safetensors", ".safetensors", lambda g: _zip_of({"photos/readme.txt": b"hello"}),
         lambda p, b, g: f"{p}: a zip archive without data.pkl, not a PyTorch checkpoint"),
    Case("zip_two_pickles", ".ckpt", lambda g: _zip_of({"a/data.pkl": b"", "b/data.pkl": b""}),
         lambda p, b, g: f"{p}: zip archive holds 2 data.pkl records; refusing an ambiguous checkpoint"),
    Case("zip_ckpt_truncated", ".ckpt", lambda g: g.zip[: len(g.zip) // 2],
         lambda p, b, g: f"{p}: zip archive is truncated or damaged (File is not a zip file)"),
    Case("legacy_ckpt_truncated_in_data", ".ckpt", lambda g: g.legacy[:-100],
         lambda p, b, g: f"{p}: file is truncated: storage {_legacy_storage_key(g.legacy)} runs past its end"),
    Case("legacy_ckpt_truncated_in_pickle", ".ckpt", lambda g: g.legacy[:300],
         lambda p, b, g: f"{p}: pickle is damaged or not a checkpoint (pickle data was truncated)"),
    Case("pickle_of_a_list", ".pt", lambda g: pickle.dumps([1, 2, 3], protocol=2),
         lambda p, b, g: f"{p}: the pickle holds a list, not a dict of tensors"),
]


def _legacy_storage_key(blob: bytes) -> str:
    """The storage key a legacy file lists after its object pickle (a heap address in torch 2.x)."""
    f = io.BytesIO(blob)
    for _ in range(4):  # magic, protocol, sys_info, the object: skipped opcode by opcode, never run
        for _op in pickletools.genops(f):
            pass
    (key,) = pickle.load(f)
    return key


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_damaged_file_is_refused_with_one_exact_line(case, good, tmp_path, expect_read_error):
    blob = case.build(good)
    path = tmp_path / f"damaged{case.suffix}"
    path.write_bytes(blob)
    expect_read_error(path, ModelReadError, case.message(str(path), blob, good))


def test_directory_is_refused(tmp_path, expect_read_error):
    folder = tmp_path / "model.safetensors"
    folder.mkdir()
    expect_read_error(folder, ModelReadError, f"{folder}: is a directory, not a model file")
    assert folder.is_dir() and not any(folder.iterdir())


@pytest.mark.parametrize("name", ["missing.safetensors", "missing.ckpt"])
def test_missing_path_is_refused(tmp_path, expect_read_error, name):
    path = tmp_path / name
    expect_read_error(path, ModelReadError, f"{path}: no such file")
    assert not path.exists()


def test_damage_is_caught_by_the_reference_parser_too(good, tmp_path):
    """Sanity check of the matrix itself: the official reader also rejects the offset damage."""
    from safetensors import SafetensorError, safe_open

    for case_id in ("offsets_overlap", "offsets_gap", "shape_mismatch", "trailing_garbage", "truncated"):
        case = next(c for c in CASES if c.id == case_id)
        path = tmp_path / f"{case_id}.safetensors"
        path.write_bytes(case.build(good))
        with pytest.raises(SafetensorError):
            safe_open(str(path), "np")


@pytest.mark.parametrize("case_id", ["truncated", "html_renamed_ckpt", "zip_not_checkpoint"])
def test_cli_subprocess_prints_one_line_and_no_traceback(case_id, good, tmp_path):
    case = next(c for c in CASES if c.id == case_id)
    blob = case.build(good)
    path = tmp_path / f"damaged{case.suffix}"
    path.write_bytes(blob)
    done = subprocess.run(
        [sys.executable, "-m", "lib_modeldoc", "inspect", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"modeldoc: error: {case.message(str(path), blob, good)}\n"
    assert "Traceback" not in done.stderr
