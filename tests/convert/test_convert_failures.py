"""What can go wrong while writing: each case leaves the source byte-identical, no output and no
temporary file in the folder, and the CLI prints exactly one line and exits 2.
"""

from __future__ import annotations

import builtins
import errno
import importlib
import os
import re
import shutil

import pytest
import torch
from safetensors.torch import save_file

from file_digest import sha256_of
from convert_support import listing, read_safetensors
from lib_modeldoc.errors import Cancelled, OutputError
from lib_modeldoc.io.model import open_model
from lib_modeldoc.operations.convert import ConvertOptions, plan_convert
from lib_modeldoc.operations.writer import write_plan

atomic = importlib.import_module("lib_modeldoc.io.atomic")


class FaultyFile:
    """A real output file whose writes fail with ENOSPC past ``limit`` bytes, or whose byte at
    offset ``corrupt_at`` is flipped on its way to disk (however the writes are cut)."""

    def __init__(self, f, *, limit: int | None = None, corrupt_at: int | None = None) -> None:
        self._f = f
        self._limit = limit
        self._corrupt_at = corrupt_at
        self._written = 0

    def write(self, data) -> int:
        data = bytearray(memoryview(data).cast("B"))
        if self._limit is not None and self._written + len(data) > self._limit:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        start = self._f.tell()
        if self._corrupt_at is not None and start <= self._corrupt_at < start + len(data):
            data[self._corrupt_at - start] ^= 0xFF
        self._written += len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def faulty_open(monkeypatch, **kwargs) -> None:
    """Make ``atomic_output`` write through a :class:`FaultyFile`."""
    monkeypatch.setattr(atomic, "open", lambda path, mode: FaultyFile(builtins.open(path, mode), **kwargs),
                        raising=False)


@pytest.fixture
def src(tmp_path):
    """A small model (converted with --keep-junk) in its own folder."""
    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "model.safetensors"
    g = torch.Generator().manual_seed(3)
    save_file({f"block.{i}.weight": torch.randn(64, 64, generator=g) for i in range(8)}, str(path),
              metadata={"title": "source"})
    return str(path)


@pytest.fixture
def refused(cli, src):
    """``refused(out, message, *options)``: exit 2, that exact line, nothing written anywhere."""

    def check(out, message, *options):
        out_dir = os.path.dirname(os.fspath(out))
        folders = {os.path.dirname(src), *([out_dir] if os.path.isdir(out_dir) else [])}
        before = {f: listing(f) for f in folders}
        digest = sha256_of(src)
        rc, stdout, err = cli("convert", src, "-o", out, "--keep-junk", *options)
        assert (rc, stdout) == (2, "")
        assert err == f"modeldoc: error: {message}\n"
        assert sha256_of(src) == digest
        assert {f: listing(f) for f in folders} == before

    return check


def test_existing_output_needs_overwrite(refused, cli, src, tmp_path):
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"precious")
    refused(out, f"{out}: already exists; pass --overwrite to replace it")
    assert out.read_bytes() == b"precious"
    assert cli("convert", src, "-o", out, "--keep-junk", "--overwrite")[0] == 0
    assert len(read_safetensors(out)[0]) == 8
    assert listing(tmp_path) == ["models", "out.safetensors"]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_output_is_the_source(refused, src, overwrite):
    refused(src, f"{src}: output is the same file as the source {src}; choose another name", *overwrite)


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_output_is_a_symlink_to_the_source(refused, src, tmp_path, overwrite):
    link = tmp_path / "link.safetensors"
    link.symlink_to(src)
    refused(link, f"{link}: output is the same file as the source {src}; choose another name", *overwrite)
    assert link.is_symlink() and os.readlink(link) == src


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_output_is_a_hardlink_to_the_source(refused, src, tmp_path, overwrite):
    hard = tmp_path / "hard.safetensors"
    os.link(src, hard)
    refused(hard, f"{hard}: output is the same file as the source {src}; choose another name", *overwrite)
    assert os.path.samefile(hard, src)


def test_output_is_the_source_through_a_relative_path(refused, src, monkeypatch):
    monkeypatch.chdir(os.path.dirname(src))
    message = f"./model.safetensors: output is the same file as the source {src}; choose another name"
    refused("./model.safetensors", message, "--overwrite")


def test_output_is_any_source_of_the_plan(plan, src, tmp_path):
    """A baked VAE (or any part taken from another file) is a source too: never overwritten."""
    other = tmp_path / "vae.safetensors"
    save_file({"w": torch.ones(2)}, str(other))
    digest = sha256_of(other)
    with open_model(other) as vae:
        plan.sources.append(vae)
        message = f"{other}: output is the same file as the source {other}; choose another name"
        with pytest.raises(OutputError, match=f"^{re.escape(message)}$"):
            write_plan(plan, other, overwrite=True)
    assert sha256_of(other) == digest
    assert listing(tmp_path) == ["models", "vae.safetensors"]


def test_output_folder_missing(refused, tmp_path):
    out = tmp_path / "missing" / "out.safetensors"
    refused(out, f"{out}: folder {tmp_path / 'missing'} does not exist")
    assert not (tmp_path / "missing").exists()


def test_output_is_a_folder(refused, tmp_path):
    folder = tmp_path / "folder.safetensors"
    folder.mkdir()
    refused(folder, f"{folder}: is a directory; give a file name for the output", "--overwrite")


def test_read_only_output_folder(refused, tmp_path, monkeypatch):
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        probe = folder / "probe"
        try:
            probe.touch()  # root ignores the mode: simulate what the kernel would answer
            probe.unlink()

            def denied(*args, **kwargs):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

            monkeypatch.setattr(atomic, "_new_partial", denied)
        except PermissionError:
            pass
        out = folder / "out.safetensors"
        refused(out, f"{out}: cannot write in {folder} (Permission denied)")
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
def test_disk_full_mid_write(refused, tmp_path, monkeypatch, fmt):
    out = tmp_path / f"out.{fmt}"
    faulty_open(monkeypatch, limit=40_000)  # the model is ~64 KB in fp16
    refused(out, f"{out}: disk full while writing; nothing was written")


def test_not_enough_free_space_is_refused_before_writing(refused, tmp_path, monkeypatch):
    real = shutil.disk_usage(tmp_path)  # what Windows has too (no os.statvfs there)
    asked = []

    def full(folder):
        asked.append(folder)
        return real._replace(free=0)

    monkeypatch.setattr(atomic.shutil, "disk_usage", full)
    out = tmp_path / "out.safetensors"
    refused(out, f"{out}: needs 0.00 GB but only 0.00 GB are free in {tmp_path}")
    assert asked == [str(tmp_path)]


def test_a_target_open_in_another_program_is_one_line_and_no_temp_file(refused, tmp_path, monkeypatch):
    """Windows: ``os.replace`` onto a file another process holds open raises PermissionError."""
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"the model the WebUI has loaded")
    real_replace = os.replace

    def held_open(src, dst):
        if os.path.exists(dst):
            raise PermissionError(13, "Access is denied", dst, 5)  # WinError 5, as Windows reports it
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", held_open)
    refused(out, f"{out}: cannot replace it: the file is open in another program or read-only "
                 "(Access is denied); close it and try again; nothing was written", "--overwrite")
    assert out.read_bytes() == b"the model the WebUI has loaded"


def test_verify_catches_bytes_that_do_not_read_back(cli, src, tmp_path, monkeypatch):
    out = tmp_path / "out.safetensors"
    with open_model(src) as model:
        plan = plan_convert(model, ConvertOptions(keep_junk=True))
    first = plan.entries[0].key
    faulty_open(monkeypatch, corrupt_at=plan.output_size - plan.data_bytes)  # the first tensor's first byte
    rc, stdout, err = cli("convert", src, "-o", out, "--keep-junk", "--verify")
    assert (rc, stdout) == (2, "")
    assert err == f"modeldoc: error: {out}: tensor '{first}' differs after writing; nothing was kept\n"
    assert listing(tmp_path) == ["models"]


# -- interrupted writes (API) --------------------------------------------------------------------

@pytest.fixture
def plan(src):
    with open_model(src) as model:
        yield plan_convert(model, ConvertOptions(keep_junk=True))


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
def test_cancel_leaves_nothing_and_keeps_an_existing_output(src, tmp_path, fmt):
    out = tmp_path / f"out.{fmt}"
    out.write_bytes(b"previous result")
    digest = sha256_of(src)
    with open_model(src) as model:
        plan = plan_convert(model, ConvertOptions(keep_junk=True, format=fmt))
        polls = []

        def progress(done, total, message):  # a job that is asked to stop raises from its progress
            polls.append(1)
            if len(polls) == 3:  # mid-way: the temporary file exists now
                assert len([n for n in listing(tmp_path) if n.endswith(".partial")]) == 1
                raise Cancelled("writing: interrupted")

        with pytest.raises(Cancelled, match=f"^{re.escape(f'{out}: interrupted; nothing was written')}$"):
            write_plan(plan, out, overwrite=True, progress=progress)
    assert len(polls) == 3
    assert out.read_bytes() == b"previous result"
    assert listing(tmp_path) == ["models", f"out.{fmt}"]
    assert sha256_of(src) == digest


def test_keyboard_interrupt_leaves_nothing(plan, src, tmp_path):
    out = tmp_path / "out.safetensors"
    digest = sha256_of(src)
    calls = []

    def progress(done, total, message):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_plan(plan, out, progress=progress)
    assert listing(tmp_path) == ["models"]
    assert sha256_of(src) == digest


def test_keyboard_interrupt_in_the_cli(cli, src, tmp_path, monkeypatch):
    from lib_modeldoc.commands import convert_cmd

    class Interrupting:
        def __init__(self, label):
            self.calls = 0

        def __call__(self, done, total, message=""):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt

        def finish(self):
            pass

    monkeypatch.setattr(convert_cmd, "StderrProgress", Interrupting)
    out = tmp_path / "out.safetensors"
    digest = sha256_of(src)
    rc, stdout, err = cli("convert", src, "-o", out, "--keep-junk")
    assert (rc, stdout) == (130, "")  # the shell convention for Ctrl-C, not "bad input"
    assert err == "modeldoc: error: interrupted; nothing was written\n"
    assert listing(tmp_path) == ["models"]
    assert sha256_of(src) == digest


def test_api_output_errors_are_output_errors(plan, src, tmp_path):
    message = f"{src}: output is the same file as the source {src}; choose another name"
    with pytest.raises(OutputError, match=f"^{re.escape(message)}$"):
        write_plan(plan, src, overwrite=True)
    missing = tmp_path / "nope" / "x.safetensors"
    with pytest.raises(OutputError, match=f"^{re.escape(f'{missing}: folder {missing.parent} does not exist')}$"):
        write_plan(plan, missing)


def test_temp_files_are_made_beside_the_target(plan, src, tmp_path, monkeypatch):
    """The temporary file lives in the output folder (so os.replace never crosses filesystems)."""
    os.chmod(src, 0o644)  # safetensors writes 0600; the output follows the source's mode
    seen = []
    real = atomic._new_partial

    def spy(*args, **kwargs):
        fd, name = real(*args, **kwargs)
        seen.append(name)
        return fd, name

    monkeypatch.setattr(atomic, "_new_partial", spy)
    out = tmp_path / "out.safetensors"
    write_plan(plan, out)
    [temp] = seen
    assert os.path.dirname(temp) == str(tmp_path) and os.path.basename(temp).startswith(".out.safetensors.")
    assert listing(tmp_path) == ["models", "out.safetensors"]
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)
