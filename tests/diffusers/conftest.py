"""Fixtures for the diffusers folder tests: the CLI as a function, folders built once per session."""

from __future__ import annotations

import pytest

from lib_modeldoc.cli import main


@pytest.fixture
def cli(capsys):
    """``cli(*argv) -> (exit status, stdout, stderr)`` through ``lib_modeldoc.cli.main``."""

    def run(*argv):
        capsys.readouterr()
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:
            rc = exc.code
        out, err = capsys.readouterr()
        return rc, out, err

    return run


@pytest.fixture(scope="session")
def tiny_sd1_folder(tmp_path_factory):
    """An SD1-structured diffusers folder with tiny random weights (diffusers' own save_pretrained)."""
    from diffusers_support import write_sd1_folder

    return write_sd1_folder(str(tmp_path_factory.mktemp("tiny") / "sd1"), tiny=True)


@pytest.fixture(scope="session")
def real_sd1_folder(tmp_path_factory):
    """An SD1 diffusers folder of real shapes, every tensor a sparse hole of zeros (a few KB on disk)."""
    from diffusers_support import write_sd1_folder

    return write_sd1_folder(str(tmp_path_factory.mktemp("real") / "sd1"), tiny=False)


@pytest.fixture(scope="session")
def tiny_sdxl_folder(tmp_path_factory):
    """An SDXL-structured diffusers folder with tiny random weights (two text encoders)."""
    from diffusers_support import write_sdxl_folder

    return write_sdxl_folder(str(tmp_path_factory.mktemp("tinyxl") / "sdxl"), tiny=True)
