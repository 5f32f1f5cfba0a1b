"""``hash_file`` and ``hash``: every hash checked against hashlib/zlib run directly on the bytes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import sys
import types
import zlib

import numpy as np
import pytest
import torch

from lib_modeldoc.analysis import crc32 as crc_module
from lib_modeldoc.analysis import hashing
from lib_modeldoc.cli import main
from lib_modeldoc.analysis.crc32 import crc32_combine, crc32_of
from lib_modeldoc.errors import ModelReadError
from lib_modeldoc.analysis.hashing import FileHashes, civitai_crc32, hash_file

CONTRACT_FIELDS = {"sha256", "autov1", "autov2", "autov3", "crc32", "blake3"}
EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def expected(data: bytes, data_start: int | None = None) -> dict:
    """The contract's definitions, computed independently on the whole byte string."""
    sha = hashlib.sha256(data).hexdigest()
    return {
        "sha256": sha,
        "autov1": hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8],
        "autov2": sha[:10],
        "autov3": hashlib.sha256(data[data_start:]).hexdigest()[:12] if data_start is not None else None,
        "crc32": f"{zlib.crc32(data):08x}",
    }


def write_bytes(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def random_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def safetensors_data_start(path: str) -> int:
    with open(path, "rb") as f:
        return 8 + struct.unpack("<Q", f.read(8))[0]


@pytest.fixture(params=[(hashing.BLOCK_SIZE, "fast"), (100_003, "fast"), (100_003, "zlib")],
                ids=["default-block", "odd-block", "odd-block-zlib"])
def block_size(request, monkeypatch):
    """Run each case with the real block size and with one that cuts the AutoV1 window, the header
    and the data section across blocks (and, once, with zlib's CRC-32 even where libdeflate is)."""
    size, crc = request.param
    monkeypatch.setattr(hashing, "BLOCK_SIZE", size)
    if crc == "zlib":
        monkeypatch.setattr(crc_module, "_FAST", None)
    return size


@pytest.fixture
def no_blake3(monkeypatch):
    monkeypatch.setitem(sys.modules, "blake3", None)  # import fails as when the package is absent


# Plain files: the AutoV1 window --------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 11, 300_000, 0x100000, 0x100000 + 4097, 0x110000, 0x110001, 0x180000, 0x200000 + 5])
def test_plain_file_hashes(tmp_path, size, block_size, no_blake3):
    data = random_bytes(size, seed=size)
    path = write_bytes(tmp_path, "blob.bin", data)
    h = hash_file(path)
    want = expected(data)
    assert {k: getattr(h, k) for k in want} == want
    assert h.blake3 is None
    assert h.size_bytes == size
    assert h.path == path


def test_autov1_of_a_file_under_1_mib_is_the_hash_of_no_bytes(tmp_path, no_blake3):
    h = hash_file(write_bytes(tmp_path, "small.bin", random_bytes(300_000)))
    assert h.autov1 == EMPTY_SHA[:8]  # what the WebUI computes: the window holds nothing
    assert h.civitai()["autov1"] is None


def test_autov1_window_ends_at_0x110000(tmp_path, no_blake3):
    data = random_bytes(0x110000)
    h = hash_file(write_bytes(tmp_path, "exact.bin", data))
    assert h.autov1 == hashlib.sha256(data[-0x10000:]).hexdigest()[:8]
    # one more byte past the window changes nothing in AutoV1 but everything else
    h2 = hash_file(write_bytes(tmp_path, "plus1.bin", data + b"x"))
    assert h2.autov1 == h.autov1 and h2.sha256 != h.sha256


def test_between_1_and_2_mib_civitai_shows_no_autov1(tmp_path, no_blake3):
    data = random_bytes(0x100000 + 1000)
    h = hash_file(write_bytes(tmp_path, "mid.bin", data))
    assert h.autov1 == hashlib.sha256(data[0x100000:]).hexdigest()[:8]  # a partial window
    assert h.civitai()["autov1"] is None
    big = hash_file(write_bytes(tmp_path, "big.bin", random_bytes(0x200000)))
    assert big.civitai()["autov1"] == big.autov1.upper()


# safetensors and ckpt: AutoV3 -----------------------------------------------------------------------

def test_autov3_ignores_a_metadata_only_change(tmp_path, write_safetensors, block_size, no_blake3):
    tensors = {"a.weight": torch.randn(300, 700), "b.bias": torch.randn(513).half()}
    one = write_safetensors("one.safetensors", tensors, metadata={"format": "pt"})
    two = write_safetensors("two.safetensors", tensors, metadata={"format": "pt", "note": "x" * 150_000})
    h1, h2 = hash_file(one), hash_file(two)
    for path, h in ((one, h1), (two, h2)):
        data = open(path, "rb").read()
        want = expected(data, safetensors_data_start(path))
        assert {k: getattr(h, k) for k in want} == want
    assert h1.autov3 == h2.autov3
    assert h1.sha256 != h2.sha256 and h1.crc32 != h2.crc32
    if block_size == 100_003:
        assert safetensors_data_start(two) > block_size  # the header spans blocks


def test_ckpt_has_no_autov3(tmp_path, write_ckpt, no_blake3):
    path = write_ckpt("model.ckpt", {"state_dict": {"w": torch.randn(600, 600)}})
    data = open(path, "rb").read()
    h = hash_file(path)
    assert h.autov3 is None
    assert {k: getattr(h, k) for k in expected(data)} == expected(data)


def test_header_length_past_the_end_gives_no_autov3(tmp_path, no_blake3):
    data = struct.pack("<Q", 10_000) + b'{"__metadata__":{}}'
    h = hash_file(write_bytes(tmp_path, "cut.safetensors", data))
    assert h.autov3 is None
    assert h.sha256 == hashlib.sha256(data).hexdigest()


def test_safetensors_header_only_file_hashes_an_empty_data_section(tmp_path, no_blake3):
    header = b'{"__metadata__":{"a":"b"}}'
    data = struct.pack("<Q", len(header)) + header
    h = hash_file(write_bytes(tmp_path, "empty.safetensors", data))
    assert h.autov3 == EMPTY_SHA[:12]


# BLAKE3, progress, CRC helpers ---------------------------------------------------------------------

def test_blake3_when_the_package_is_present(tmp_path, monkeypatch, block_size):
    fake = types.ModuleType("blake3")
    fake.blake3 = lambda: hashlib.blake2b(digest_size=32)  # a stand-in with blake3's interface
    monkeypatch.setitem(sys.modules, "blake3", fake)
    data = random_bytes(0x180000)
    h = hash_file(write_bytes(tmp_path, "b.bin", data))
    assert h.blake3 == hashlib.blake2b(data, digest_size=32).hexdigest()
    assert h.sha256 == hashlib.sha256(data).hexdigest()
    assert h.civitai()["blake3"] == h.blake3.upper()


def test_blake3_is_null_when_the_package_is_absent(tmp_path, no_blake3):
    assert hash_file(write_bytes(tmp_path, "b.bin", b"abc")).blake3 is None


def test_progress_reports_bytes_up_to_the_total(tmp_path, monkeypatch, no_blake3):
    monkeypatch.setattr(hashing, "BLOCK_SIZE", 1 << 16)
    data = random_bytes(300_000)
    calls: list[tuple[int, int]] = []
    hash_file(write_bytes(tmp_path, "p.bin", data), progress=lambda done, total, message: calls.append((done, total)))
    assert calls[-1] == (len(data), len(data))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) >= 2
    assert all(total == len(data) and done % (1 << 16) == 0 for done, total in calls[:-1])


def test_crc32_combine_matches_zlib():
    rng = np.random.default_rng(3)
    for _ in range(50):
        a = random_bytes(int(rng.integers(0, 5000)), seed=int(rng.integers(1 << 30)))
        b = random_bytes(int(rng.integers(0, 5000)), seed=int(rng.integers(1 << 30)))
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


@pytest.mark.parametrize("backend", ["zlib", "libdeflate"])
def test_crc32_backends_agree_with_zlib(monkeypatch, backend):
    if backend == "zlib":
        monkeypatch.setattr(crc_module, "_FAST", None)
    elif crc_module.backend() != "libdeflate":
        pytest.skip("libdeflate is not installed here")
    data = bytearray(random_bytes(70_001, seed=5))
    for start, end in ((0, len(data)), (3, 4), (17, 65_553), (100, 100)):
        assert crc32_of(data, start, end) == zlib.crc32(data[start:end])


def test_civitai_crc32_reverses_the_bytes():
    assert f"{zlib.crc32(b'hello world'):08x}" == "0d4a1185"
    assert civitai_crc32("0d4a1185") == "85114A0D"


def test_errors_are_one_line_model_read_errors(tmp_path):
    with pytest.raises(ModelReadError, match=r"nope\.bin: no such file$"):
        hash_file(tmp_path / "nope.bin")
    with pytest.raises(ModelReadError, match=r": is a directory, not a file$"):
        hash_file(tmp_path)


def test_to_dict_is_the_contract_object(tmp_path, no_blake3):
    h = hash_file(write_bytes(tmp_path, "x.bin", b"x"))
    assert isinstance(h, FileHashes)
    assert set(h.to_dict()) == CONTRACT_FIELDS | {"path", "size_bytes"}


# CLI --------------------------------------------------------------------------------------------

def test_cli_json_fields(tmp_path, write_safetensors, capsys, no_blake3):
    path = write_safetensors("m.safetensors", {"w": torch.randn(64, 64)}, metadata={"format": "pt"})
    assert main(["hash", path, "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert CONTRACT_FIELDS <= set(obj)
    data = open(path, "rb").read()
    assert {k: obj[k] for k in expected(data)} == expected(data, safetensors_data_start(path))
    assert obj["blake3"] is None
    for name, length in (("sha256", 64), ("autov1", 8), ("autov2", 10), ("autov3", 12), ("crc32", 8)):
        assert re.fullmatch(f"[0-9a-f]{{{length}}}", obj[name]), name
    assert obj["path"] == path and obj["size_bytes"] == len(data)


def test_cli_several_paths_and_a_bad_one(tmp_path, capsys, no_blake3):
    a = write_bytes(tmp_path, "a.bin", b"hello world")
    missing = str(tmp_path / "missing.bin")
    assert main(["hash", a, missing, "--json"]) == 2
    out = capsys.readouterr()
    objs = json.loads(out.out)
    assert [o["path"] for o in objs] == [a, missing]
    assert objs[0]["crc32"] == "0d4a1185" and objs[0]["autov3"] is None
    assert out.err == f"modeldoc: error: {missing}: no such file\n"


def test_cli_missing_single_path_is_one_line_exit_2(tmp_path, capsys):
    missing = str(tmp_path / "missing.bin")
    assert main(["hash", missing]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err == f"modeldoc: error: {missing}: no such file\n"


def test_cli_text_shows_civitai_forms(tmp_path, capsys, no_blake3):
    small = write_bytes(tmp_path, "hw.txt", b"hello world")
    big_data = random_bytes(0x200000)
    big = write_bytes(tmp_path, "big.bin", big_data)
    assert main(["hash", small, big]) == 0
    text = capsys.readouterr().out
    small_part, big_part = text.split("\n\n")
    assert "0d4a1185" in small_part and "Civitai: 85114A0D" in small_part
    assert "Civitai: B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9" in small_part
    assert "Civitai: B94D27B993" in small_part
    assert "none for files under 2 MiB" in small_part
    assert "not a safetensors file" in small_part and "blake3" in small_part
    autov1 = hashlib.sha256(big_data[0x100000:0x110000]).hexdigest()[:8]
    assert f"Civitai: {autov1.upper()}" in big_part
    crc = f"{zlib.crc32(big_data):08x}"
    assert f"Civitai: {civitai_crc32(crc)}" in big_part
    assert os.path.basename(big) in big_part


@pytest.mark.parametrize("lookup", ["missing", "lookup fails", "windows dll that will not load", "wrong library"])
def test_libdeflate_lookup_falls_back_to_zlib_quietly(monkeypatch, caplog, capsys, lookup):
    """Windows and macOS name the library differently (libdeflate.dll, .dylib) or lack it: zlib, no noise."""
    asked = []

    def find_library(name):
        asked.append(name)
        if lookup == "lookup fails":
            raise OSError("no ldconfig, no gcc")
        if lookup == "windows dll that will not load":
            return "libdeflate.dll" if name == "libdeflate" else None
        if lookup == "wrong library":
            return crc_module.ctypes.util.find_library("c") if name == "deflate" else None
        return None

    monkeypatch.delenv("MODELDOC_NO_LIBDEFLATE", raising=False)
    monkeypatch.setattr(crc_module.ctypes.util, "find_library", find_library)
    assert crc_module._load_libdeflate() is None
    assert asked[0] == "deflate" and ("libdeflate" in asked or lookup == "wrong library")
    assert capsys.readouterr() == ("", "") and not caplog.records
    monkeypatch.setattr(crc_module, "_FAST", None)
    assert crc_module.backend() == "zlib"
    data = bytearray(random_bytes(10_000, seed=9))
    assert crc32_of(data, 5, 9_000) == zlib.crc32(data[5:9_000])


# A SHA-256 a cache already holds (the WebUI's): one SHA-256 stream instead of two ------------------

def _counting_sha256(monkeypatch) -> list:
    """hashlib.sha256 as hashing uses it, counting the streams it starts (AutoV1's window included)."""
    made = []
    real = hashlib.sha256

    def sha256(*args):
        made.append(args)
        return real(*args)

    monkeypatch.setattr(hashing.hashlib, "sha256", sha256)
    return made


def test_a_known_sha256_is_taken_and_only_autov3_is_streamed(tmp_path, write_safetensors, block_size, no_blake3,
                                                             monkeypatch):
    path = write_safetensors("m.safetensors", {"a.weight": torch.randn(300, 700), "b.bias": torch.randn(513).half()})
    data = open(path, "rb").read()
    want = expected(data, safetensors_data_start(path))
    made = _counting_sha256(monkeypatch)
    h = hash_file(path, known_sha256=want["sha256"].upper())
    assert {k: getattr(h, k) for k in want} == want  # CRC-32, AutoV1 and AutoV3 still from the bytes
    assert h.sha256_cached
    assert len([m for m in made if not m]) == 1  # one streamed SHA-256 (AutoV3), not two
    # taken as is, as the WebUI takes its own cache: a cache saying otherwise is believed
    other = "ab" * 32
    told = hash_file(path, known_sha256=other)
    assert (told.sha256, told.autov2, told.autov3, told.crc32) == (other, other[:10], want["autov3"], want["crc32"])


@pytest.mark.parametrize("size", [0, 0x100000 + 4097, 0x200000 + 5])
def test_a_known_sha256_of_a_plain_file_leaves_only_crc32_and_autov1(tmp_path, size, block_size, no_blake3, monkeypatch):
    data = random_bytes(size, seed=size)
    path = write_bytes(tmp_path, "blob.bin", data)
    want = expected(data)
    made = _counting_sha256(monkeypatch)
    h = hash_file(path, known_sha256=want["sha256"])
    assert {k: getattr(h, k) for k in want} == want
    assert not [m for m in made if not m]  # no streamed SHA-256 at all


@pytest.mark.parametrize("junk", ["", "abc", "g" * 64, "0" * 63])
def test_a_known_sha256_that_is_not_64_hex_is_ignored(tmp_path, junk, no_blake3):
    data = random_bytes(5000)
    h = hash_file(write_bytes(tmp_path, "blob.bin", data), known_sha256=junk)
    assert h.sha256 == hashlib.sha256(data).hexdigest() and not h.sha256_cached


def test_the_json_object_does_not_say_where_sha256_came_from(tmp_path, no_blake3):
    h = hash_file(write_bytes(tmp_path, "blob.bin", b"x"), known_sha256="cd" * 32)
    assert set(h.to_dict()) == CONTRACT_FIELDS | {"path", "size_bytes"}


def test_hash_on_a_terminal_draws_the_shared_progress_line_and_clears_it(tmp_path, monkeypatch, capsys):
    import io

    from lib_modeldoc.commands import hash_cmd

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(hash_cmd, "_PROGRESS_MIN_BYTES", 0)
    path = tmp_path / "blob.bin"
    path.write_bytes(b"x" * 4096)
    assert main(["hash", str(path)]) == 0
    drawn = terminal.getvalue()
    assert "\rhashing blob.bin: 100.0%  4.10 KB of 4.10 KB" in drawn  # StderrProgress's form: percent, bytes, rate
    assert drawn.endswith("\r" + " " * 80 + "\r")  # finished: the line is blanked, nothing left behind
    assert hashlib.sha256(b"x" * 4096).hexdigest() in capsys.readouterr().out
