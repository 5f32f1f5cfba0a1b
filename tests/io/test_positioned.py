"""The positioned-read layer: the same bytes with ``os.pread`` and without it (Windows), under threads."""

from __future__ import annotations

import hashlib
import os
import random
import threading

import numpy as np
import pytest

from lib_modeldoc.arch.identify import identify_model
from lib_modeldoc.errors import ModelReadError
from lib_modeldoc.analysis.hashing import hash_file
from lib_modeldoc.io import positioned
from lib_modeldoc.io.positioned import PositionedFile
from lib_modeldoc.arch.layout import layout_of
from lib_modeldoc.io.model import open_model
from lib_modeldoc.samples import Spec, family_specs
from lib_modeldoc.analysis.scan import scan_model

FAKE_WINDOWS_IO = bool(os.environ.get("MODELDOC_FAKE_WINDOWS_IO"))

STRATEGIES = ["pread", "locked seek"]


@pytest.fixture(params=STRATEGIES)
def strategy(request, monkeypatch):
    """Run a test once per read strategy (``pread`` only where this OS has it)."""
    if request.param == "pread":
        if not (hasattr(os, "pread") and hasattr(os, "preadv")):
            pytest.skip("this Python has no os.pread / os.preadv")
        monkeypatch.setattr(positioned, "HAS_PREAD", True)
        monkeypatch.setattr(positioned, "HAS_PREADV", True)
    else:
        monkeypatch.setattr(positioned, "HAS_PREAD", False)
        monkeypatch.setattr(positioned, "HAS_PREADV", False)
    assert positioned.strategy() == request.param
    return request.param


@pytest.fixture
def data_file(tmp_path):
    payload = np.random.default_rng(7).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()
    path = tmp_path / "blob.bin"
    path.write_bytes(payload)
    return str(path), payload


def test_the_switch_removes_what_windows_lacks():
    if FAKE_WINDOWS_IO:
        assert not hasattr(os, "pread") and not hasattr(os, "preadv") and not hasattr(os, "statvfs")
        assert positioned.strategy() == "locked seek"
    else:
        assert positioned.strategy() == ("pread" if hasattr(os, "pread") else "locked seek")


def test_reads_at_offsets_and_stops_short_only_at_the_end(strategy, data_file):
    path, payload = data_file
    with PositionedFile(path) as f:
        assert f.size() == len(payload)
        assert f.read_at(0, 8) == payload[:8]
        assert f.read_at(12345, 1000) == payload[12345:13345]
        assert f.read_at(len(payload) - 10, 100) == payload[-10:]
        assert f.read_at(len(payload) + 5, 10) == b""
        assert f.read_at(5, 0) == b""
        buffer = bytearray(4096)
        assert f.readinto_at(buffer, 777) == 4096 and bytes(buffer) == payload[777:777 + 4096]
        assert f.readinto_at(buffer, len(payload) - 100) == 100 and bytes(buffer[:100]) == payload[-100:]
        assert f.readinto_at(memoryview(buffer)[:16], 1) == 16 and bytes(buffer[:16]) == payload[1:17]
    assert f.closed


def test_large_requests_are_split_and_continued(strategy, data_file, monkeypatch):
    """Reads over the per-call cap (2 GiB on Linux, 32-bit counts on Windows) come back whole."""
    path, payload = data_file
    monkeypatch.setattr(positioned, "_MAX_READ", 1000)
    with PositionedFile(path) as f:
        assert f.read_at(3, 10_500) == payload[3:10_503]
        buffer = bytearray(9_999)
        assert f.readinto_at(buffer, 50) == 9_999 and bytes(buffer) == payload[50:10_049]


def test_threads_sharing_one_file_each_get_their_own_bytes(strategy, data_file):
    path, payload = data_file
    errors: list[str] = []
    with PositionedFile(path) as f:

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            buffer = bytearray(20_000)
            for _ in range(300):
                offset = rng.randrange(0, len(payload) - 20_000)
                if rng.random() < 0.5:
                    got = f.read_at(offset, 20_000)
                else:
                    f.readinto_at(buffer, offset)
                    got = bytes(buffer)
                if got != payload[offset:offset + 20_000]:
                    errors.append(f"thread {seed}: wrong bytes at {offset}")

        threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_scan_hash_and_reads_agree_across_strategies(monkeypatch, sparse_model, tmp_path):
    """The same model read both ways: every tensor, the scan and every hash are identical."""
    specs = family_specs("VAE", dtype="F16")
    rng = np.random.default_rng(3)
    values = {s.key: rng.standard_normal(s.shape).astype(np.float16) for s in specs if np.prod(s.shape) < 1 << 16}
    values[specs[0].key] = np.full(specs[0].shape, np.nan, dtype=np.float16)
    path = sparse_model("vae.safetensors", specs, values)
    outcomes = []
    for flag in ([True, False] if hasattr(os, "pread") else [False]):
        monkeypatch.setattr(positioned, "HAS_PREAD", flag)
        monkeypatch.setattr(positioned, "HAS_PREADV", flag and hasattr(os, "preadv"))
        with open_model(path) as model:
            tensors = {k: model.read_bytes(k) for k in model}
            chunks = {k: b"".join(bytes(c) for c in model.read_chunks(k, 4096, buffer=bytearray(4096))) for k in model}
            layout = layout_of(list(model), identify_model(model))
            scan = scan_model(model, layout, workers=4)
        assert chunks == tensors
        outcomes.append((tensors, [(v.key, v.nan, v.max_abs) for v in scan.tensors], hash_file(path).to_dict()))
    assert all(o == outcomes[0] for o in outcomes)
    with open(path, "rb") as f:
        assert outcomes[0][2]["sha256"] == hashlib.sha256(f.read()).hexdigest()


def test_a_file_cut_short_after_opening_is_still_an_error_without_pread(monkeypatch, sparse_model):
    monkeypatch.setattr(positioned, "HAS_PREAD", False)
    monkeypatch.setattr(positioned, "HAS_PREADV", False)
    path = sparse_model("t.safetensors", [Spec("w", "F32", (64, 64))])
    with open_model(path) as model:
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 100)
        with pytest.raises(ModelReadError, match="truncated"):
            model.read_bytes("w")
        with pytest.raises(ModelReadError, match="truncated"):
            list(model.read_chunks("w", buffer=bytearray(1024)))
