"""Fixtures for the diffusers folder tests: folders built once per session (the CLI fixture is the root conftest's)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_tokenizer_cache(tmp_path_factory, monkeypatch):
    """An empty Hugging Face cache: what a test finds does not depend on this machine's cache."""
    empty = str(tmp_path_factory.mktemp("hf-cache"))
    for name in ("HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, empty)
    monkeypatch.delenv("TRANSFORMERS_CACHE", raising=False)
    return empty


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
