"""Which WebUI the adapter is in: Forge (``modules_forge.main_entry``), reForge (a ``modules_forge`` package
without ``main_entry``, loading checkpoints the AUTOMATIC1111 way) or AUTOMATIC1111. The journey found "Load the
new model" broken in reForge: ``ImportError: cannot import name 'main_entry' from 'modules_forge'``."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from test_ui_webui_script import DAMAGED, SCRIPT, webui  # noqa: F401  (the fixture)

FORGE_MAIN_ENTRY = '''
calls = []


def checkpoint_change(title):
    calls.append(title)
'''


def _load_script():
    spec = importlib.util.spec_from_file_location("modeldoc_fork", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fork(webui, tmp_path, monkeypatch):
    """Put a ``modules_forge`` package (with or without ``main_entry``) on sys.path, then load the script."""

    def make(with_main_entry):
        package = tmp_path / ("forge" if with_main_entry else "reforge") / "modules_forge"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        if with_main_entry:
            (package / "main_entry.py").write_text(FORGE_MAIN_ENTRY)
        _forget_modules_forge()
        monkeypatch.syspath_prepend(str(package.parent))
        return _load_script()

    yield make
    _forget_modules_forge()


def _forget_modules_forge():
    for name in [n for n in sys.modules if n == "modules_forge" or n.startswith("modules_forge.")]:
        del sys.modules[name]


def _damaged_file():
    from modules import sd_models

    return next(i for i in sd_models.checkpoints_list.values() if i.name == DAMAGED)


def test_reforge_loads_a_checkpoint_the_automatic1111_way(fork):
    module = fork(with_main_entry=False)
    from modules import shared

    host = module.WebUIHost()
    assert host.name == "reForge" and not module.FORGE
    info = _damaged_file()
    assert host.load_checkpoint(info.filename).startswith("Loaded")
    assert shared.opts.changes[-1] == ("sd_model_checkpoint", info.title)


def test_forge_selects_the_checkpoint_through_main_entry(fork):
    module = fork(with_main_entry=True)
    from modules_forge import main_entry

    host = module.WebUIHost()
    assert host.name == "Forge" and module.FORGE
    info = _damaged_file()
    assert "Forge loads it at the next generation" in host.load_checkpoint(info.filename)
    assert main_entry.calls == [info.title]


def test_automatic1111_without_modules_forge(webui):
    module, _ = webui
    assert module.WebUIHost().name == "AUTOMATIC1111" and not module.FORGE
