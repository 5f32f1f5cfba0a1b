"""Regular files only: a FIFO, /dev/zero or another device is refused before it is read.

Opening a FIFO blocks until a writer comes and /dev/zero never ends, so each case runs the CLI in
a child with a timeout: a regression shows as a timeout, not a hung test run.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX special files")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lib_modeldoc", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "model.safetensors"
    os.mkfifo(path)
    return str(path)


@pytest.mark.parametrize("command", ["inspect", "hash"])
def test_fifo_is_refused_without_blocking(command, fifo):
    done = _cli(command, fifo)
    assert done.returncode == 2
    assert done.stderr == f"modeldoc: error: {fifo}: is a named pipe (FIFO), not a regular file; only regular files are read\n"


@pytest.mark.parametrize("command", ["inspect", "hash"])
def test_dev_zero_and_a_link_to_it_are_refused(command, tmp_path):
    link = tmp_path / "zero.ckpt"
    link.symlink_to("/dev/zero")
    for path in ("/dev/zero", str(link)):
        done = _cli(command, path)
        assert done.returncode == 2
        assert done.stderr == f"modeldoc: error: {path}: is a device, not a regular file; only regular files are read\n"


def test_audit_skips_a_fifo_in_the_folder(tmp_path, write_safetensors):
    import torch

    write_safetensors("ok.safetensors", {"w": torch.ones(2)})
    os.mkfifo(tmp_path / "pipe.safetensors")
    os.mkfifo(tmp_path / "pipe_without_suffix")
    done = _cli("audit", "--json", str(tmp_path))
    assert done.returncode in (0, 2), done.stderr
    assert "ok.safetensors" in done.stdout
    assert "internal error" not in done.stderr
