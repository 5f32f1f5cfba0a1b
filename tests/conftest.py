"""Shared factories: real tiny model files written in tmp_path by independent writers."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# MODELDOC_FAKE_WINDOWS_IO=1 (the second CI run): the OS calls Windows lacks are removed before
# lib_modeldoc is imported, so every read and write path runs its portable branch here, and
# os.replace / os.rename refuse a file this process holds open, as Windows does.
FAKE_WINDOWS_IO = bool(os.environ.get("MODELDOC_FAKE_WINDOWS_IO"))
WINDOWS_MISSING = ("pread", "preadv", "pwrite", "pwritev", "statvfs", "fstatvfs")
if FAKE_WINDOWS_IO:
    import shutil

    _statvfs = os.statvfs

    def _disk_usage(path):  # Windows' shutil.disk_usage asks the OS directly (nt._getdiskusage)
        st = _statvfs(path)
        total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        return shutil._ntuple_diskusage(total, total - st.f_bfree * st.f_frsize, free)

    shutil.disk_usage = _disk_usage

    def _open_here(path) -> bool:
        """Whether this process holds ``path`` open (Linux: /proc/self/fd)."""
        try:
            real = os.path.realpath(path)
            for fd in os.listdir("/proc/self/fd"):
                try:
                    if os.readlink(f"/proc/self/fd/{fd}") == real:
                        return True
                except OSError:
                    continue
        except OSError:
            pass
        return False

    def _windows_rename(real):
        """Windows refuses to rename a file, or replace one, while a handle to it is open."""

        def rename(src, dst, *args, **kwargs):
            for path in (src, dst):
                if isinstance(path, (str, bytes, os.PathLike)) and _open_here(path):
                    raise PermissionError(13, "The process cannot access the file because it is being used "
                                              "by another process", os.fspath(path), 32)
            return real(src, dst, *args, **kwargs)

        return rename

    if os.path.isdir("/proc/self/fd"):
        os.replace, os.rename = _windows_rename(os.replace), _windows_rename(os.rename)
    for _name in WINDOWS_MISSING:
        if hasattr(os, _name):
            delattr(os, _name)
    assert "lib_modeldoc" not in sys.modules, "MODELDOC_FAKE_WINDOWS_IO must act before lib_modeldoc is imported"

from lib_modeldoc.arch.families import family  # noqa: E402
from lib_modeldoc.arch.tables import table  # noqa: E402
from lib_modeldoc.samples import Spec, family_specs, write_safetensors_sample  # noqa: E402


@pytest.fixture
def cli(capsys):
    """``cli(*argv) -> (exit status, stdout, stderr)`` through ``lib_modeldoc.cli.main``.

    Usage errors leave argparse through ``SystemExit`` (as a console script would); its code is
    returned like any other status.
    """
    from lib_modeldoc.cli import main

    def run(*argv):
        capsys.readouterr()
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:
            rc = exc.code
        out, err = capsys.readouterr()
        return rc, out, err

    return run


@pytest.fixture
def write_safetensors(tmp_path):
    """``write_safetensors(name, {key: torch tensor}, metadata=None) -> path`` via safetensors itself."""
    from safetensors.torch import save_file

    def write(name, tensors, metadata=None):
        path = tmp_path / name
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
        return str(path)

    return write


@pytest.fixture
def write_ckpt(tmp_path):
    """``write_ckpt(name, obj, legacy=False) -> path`` via torch.save."""
    import torch

    def write(name, obj, legacy=False):
        path = tmp_path / name
        torch.save(obj, str(path), _use_new_zipfile_serialization=not legacy)
        return str(path)

    return write


@pytest.fixture
def sparse_model(tmp_path):
    """``sparse_model(name, specs, values=None, metadata=None) -> path``: real shapes, zero data, sparse."""

    def write(name, specs, values=None, metadata=None):
        return write_safetensors_sample(str(tmp_path / name), specs, values, metadata=metadata)

    return write


__all__ = ["Spec", "family_specs", "family", "table", "np"]


@pytest.fixture(autouse=True)
def english_locale(monkeypatch):
    """Every test runs under an English locale, whatever the machine's: the CLI's text follows the
    locale (lib_modeldoc/report/messages.py). A test of another language sets its own."""
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


@pytest.fixture(autouse=True)
def free_the_disk(tmp_path):
    """Remove a test's temporary folder when it ends. Outputs written from sparse real-size samples are
    not sparse (2-7 GB each), and pytest keeps every folder of a run until a later run prunes it: a
    whole run left 17 GB behind, enough to fill a CI disk before the next pass (gradio 4, Windows I/O)."""
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)
