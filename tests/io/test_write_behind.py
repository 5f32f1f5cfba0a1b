"""WriteBehind: writes land in order at their positions, errors surface, buffers are respected.

And the writer's side of the bargain: with a disk that lags, every chunk a conversion hands over
(read buffers and cast buffers taken in turn, across tensors) still reaches the file intact.
"""

from __future__ import annotations

import errno
import os
import threading
import time
import zipfile

import pytest
import torch
from safetensors.torch import load_file, save_file

from lib_modeldoc.errors import OutputError
from lib_modeldoc.io.buffers import BufferRing
from lib_modeldoc.io.model import open_model
from lib_modeldoc.io.write_behind import WriteBehind
from lib_modeldoc.operations import writer
from lib_modeldoc.operations.convert import ConvertOptions, plan_convert
from lib_modeldoc.operations.writer import write_plan


class SlowFile:
    """A real file whose writes take a while and note which thread made them."""

    def __init__(self, f, delay: float = 0.002, fail_after: int | None = None) -> None:
        self._f = f
        self._delay = delay
        self._fail_after = fail_after
        self.threads: set[str] = set()
        self.writes = 0

    def write(self, data) -> int:
        self.threads.add(threading.current_thread().name)
        time.sleep(self._delay)
        self.writes += 1
        if self._fail_after is not None and self.writes > self._fail_after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def test_writes_land_in_order_on_another_thread(tmp_path):
    path = tmp_path / "out.bin"
    with open(path, "wb") as f:
        slow = SlowFile(f)
        with WriteBehind(slow) as out:
            for i in range(50):
                assert out.write(bytes([i]) * (i + 1)) == i + 1
            assert out.tell() == sum(range(1, 51))
    assert path.read_bytes() == b"".join(bytes([i]) * (i + 1) for i in range(50))
    assert slow.threads and all(name.startswith("modeldoc-write") for name in slow.threads)


def test_write_returns_only_when_the_previous_write_is_done(tmp_path):
    """The bargain the pipeline relies on: after write(k) returns, write(k-1)'s buffer is free."""
    with open(tmp_path / "out.bin", "wb") as f:
        slow = SlowFile(f, delay=0.02)
        with WriteBehind(slow) as out:
            for k in range(1, 6):
                out.write(b"x" * 10)
                assert slow.writes >= k - 1


def test_seek_back_rewrites_in_place_as_zipfile_does(tmp_path):
    path = tmp_path / "out.zip"
    with open(path, "wb") as f, WriteBehind(SlowFile(f)) as out:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
            for i in range(5):
                with archive.open(f"member{i}", "w") as member:
                    member.write(os.urandom(1000) + bytes([i]))
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert [archive.read(f"member{i}")[-1] for i in range(5)] == list(range(5))


def test_a_failed_write_raises_in_the_caller(tmp_path):
    with open(tmp_path / "out.bin", "wb") as f:
        out = WriteBehind(SlowFile(f, fail_after=2))
        with pytest.raises(OSError) as caught, out:
            for _ in range(10):
                out.write(b"y" * 100)
    assert caught.value.errno == errno.ENOSPC


def test_an_error_of_the_caller_waits_for_the_write_in_flight_and_wins(tmp_path):
    with open(tmp_path / "out.bin", "wb") as f:
        slow = SlowFile(f, delay=0.05, fail_after=0)
        with pytest.raises(KeyError), WriteBehind(slow) as out:
            out.write(b"z")
            raise KeyError("the caller's own error")
        assert slow.writes == 1  # the write in flight ended before the block did


def test_a_buffer_ring_takes_turns_across_calls():
    ring = BufferRing(16, count=2)
    first, second, third = ring.next(), ring.next(), ring.next()
    assert len(ring) == 16 and first is third and first is not second


def test_buffer_ring_needs_a_size():
    with pytest.raises(ValueError):
        BufferRing(0)


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
def test_a_lagging_disk_gets_every_chunk_intact(tmp_path, monkeypatch, fmt):
    """Small chunks (a few per tensor), tensors cast and copied in turn, every write slow: a buffer
    reused before its write ended would show as wrong bytes in the output."""
    monkeypatch.setattr(writer, "CHUNK_BYTES", 4096)
    real_open = open

    def slow_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return SlowFile(f, delay=0.001) if "w" in mode else f

    import lib_modeldoc.io.atomic as atomic

    monkeypatch.setattr(atomic, "open", slow_open, raising=False)
    g = torch.Generator().manual_seed(5)
    tensors = {}
    for i in range(12):  # 3,000 to 14,000 bytes each: 1 to 4 chunks, fp32 (cast) and int64 (copied)
        tensors[f"w{i:02d}"] = torch.randn(750 + 250 * i, generator=g)
        tensors[f"i{i:02d}"] = torch.randint(0, 1 << 40, (400 + 100 * i,), generator=g)
    src = tmp_path / "src.safetensors"
    save_file(tensors, str(src))
    out = tmp_path / f"out.{fmt}"
    with open_model(src) as model:
        write_plan(plan_convert(model, ConvertOptions(keep_junk=True, format=fmt)), out)
    if fmt == "safetensors":
        back = load_file(str(out))
    else:
        back = torch.load(str(out), weights_only=True)["state_dict"]  # as the WebUI saves them
    for key, value in tensors.items():
        want = value.half() if value.is_floating_point() else value
        assert torch.equal(back[key], want), key


def test_disk_full_behind_the_caller_is_one_output_error(tmp_path, monkeypatch):
    import lib_modeldoc.io.atomic as atomic

    real_open = open
    monkeypatch.setattr(atomic, "open", lambda path, mode: SlowFile(real_open(path, mode), fail_after=3),
                        raising=False)
    src = tmp_path / "src.safetensors"
    save_file({f"w{i}": torch.ones(100) for i in range(10)}, str(src))
    out = tmp_path / "out.safetensors"
    with open_model(src) as model, pytest.raises(OutputError, match="disk full while writing; nothing was written"):
        write_plan(plan_convert(model, ConvertOptions(keep_junk=True)), out)
    assert sorted(os.listdir(tmp_path)) == ["src.safetensors"]
