"""Fixtures of the UI tests: a sample library on disk, a folder host over it."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def library(tmp_path_factory):
    """The standalone server's sample library (sparse, a few hundred KB on disk)."""
    from lib_modeldoc.ui.standalone import write_sample_library

    return str(write_sample_library(str(tmp_path_factory.mktemp("library"))))
