"""Windows paths (drive letters, backslashes, UNC, over 260 characters) and names in Chinese and
Cyrillic: the path rules unit-tested with ``ntpath``, then real files with such names on this
machine through the CLI and the tab's flow, which must leave no file handle open."""

from __future__ import annotations

import ntpath
import os
import types

import numpy as np
import pytest

from lib_modeldoc.io.paths import LONG_PATH, native_path
from lib_modeldoc.samples import Spec, write_safetensors_sample
from lib_modeldoc.ui import actions, host as host_module
from lib_modeldoc.ui.standalone import FolderHost, write_sample_library

LONG_DIR = "C:\\SD\\" + "\\".join(["模型-Модели-" + "я" * 30] * 7)
assert len(LONG_DIR) > 260


# The path rules, as Windows reads them --------------------------------------------------------

@pytest.mark.parametrize("given, expected", [
    ("C:\\models\\model.safetensors", "C:\\models\\model.safetensors"),  # short: as given
    (LONG_DIR + "\\m.safetensors", "\\\\?\\" + LONG_DIR + "\\m.safetensors"),
    (LONG_DIR.replace("\\", "/") + "/m.safetensors", "\\\\?\\" + LONG_DIR + "\\m.safetensors"),  # / normalised
    ("\\\\nas\\share\\" + "x" * 300 + "\\m.ckpt", "\\\\?\\UNC\\nas\\share\\" + "x" * 300 + "\\m.ckpt"),
    ("\\\\?\\" + LONG_DIR + "\\m.ckpt", "\\\\?\\" + LONG_DIR + "\\m.ckpt"),  # already extended
    ("\\\\nas\\share\\模型.safetensors", "\\\\nas\\share\\模型.safetensors"),
])
def test_long_windows_paths_get_the_extended_prefix(given, expected):
    assert native_path(given, os_name="nt") == expected
    assert native_path(given, os_name="posix") == given  # elsewhere untouched


def test_the_limit_is_windows_directory_limit():
    base = "C:\\" + "d" * (LONG_PATH - 4)
    assert native_path(base + "\\", os_name="nt") == base + "\\"  # 247 characters once normalised
    assert native_path(base + "dd", os_name="nt").startswith("\\\\?\\")


class _WindowsOs:
    """``os`` with Windows' path module, for the tab's pure path helpers."""

    path = ntpath
    sep = "\\"

    def __getattr__(self, name):
        return getattr(os, name)


@pytest.fixture
def windows_paths(monkeypatch):
    monkeypatch.setattr(actions, "os", _WindowsOs())
    monkeypatch.setattr(host_module, "os", _WindowsOs())


@pytest.mark.parametrize("source, output", [
    ("C:\\SD\\models\\Stable-diffusion\\merge.ckpt", "C:\\SD\\models\\Stable-diffusion\\merge-fixed.safetensors"),
    ("D:\\模型\\动漫 合并.safetensors", "D:\\模型\\动漫 合并-fixed.safetensors"),
    ("\\\\nas\\share\\Модели\\аниме.v2.ckpt", "\\\\nas\\share\\Модели\\аниме.v2-fixed.safetensors"),
    (LONG_DIR + "\\m.ckpt", LONG_DIR + "\\m-fixed.safetensors"),
])
def test_the_tab_names_outputs_beside_windows_sources(windows_paths, source, output):
    assert actions.ConvertRequest(source=source).output == output
    assert actions.ExportRequest(source=source).output == output.replace("-fixed", "-vae")


def test_the_tab_takes_a_typed_name_or_a_pasted_windows_path(windows_paths):
    folder = "E:\\Модели"
    assert actions.output_path(folder, "新的 模型.ckpt", "safetensors") == "E:\\Модели\\新的 模型.safetensors"
    # a whole path typed as the name keeps only its file name: the folder box says where
    assert actions.output_path(folder, "C:\\elsewhere\\x.safetensors", "ckpt") == "E:\\Модели\\x.ckpt"
    # Explorer's "Copy as path" puts quotes around it
    assert host_module.resolve_choice('"\\\\nas\\share\\模型.safetensors"', []) == "\\\\nas\\share\\模型.safetensors"
    assert host_module.resolve_choice("C:\\SD\\Модель.ckpt", []) == "C:\\SD\\Модель.ckpt"


# Real files with such names on this machine ----------------------------------------------------

@pytest.fixture
def long_folder(tmp_path):
    """A folder in Chinese and Cyrillic whose files' paths are over 260 characters."""
    folder = tmp_path.joinpath(*(["模型 Модели " + "я" * 30] * 6))
    folder.mkdir(parents=True)
    assert len(str(folder / "x.safetensors")) > 260
    return folder


def test_the_cli_on_long_chinese_and_cyrillic_paths(long_folder, cli):
    rng = np.random.default_rng(1)
    specs = [Spec(f"блок.{i}.权重", "F32", (32, 32)) for i in range(4)]
    source = write_safetensors_sample(str(long_folder / "动漫合并 аниме.safetensors"), specs,
                                      {s.key: rng.standard_normal(s.shape).astype(np.float32) for s in specs})
    rc, out, err = cli("inspect", source)
    assert rc == 0 and source in out, err
    rc, out, err = cli("hash", source, "--json")
    assert rc == 0 and '"sha256"' in out, err
    output = long_folder / "输出 вывод.safetensors"
    rc, out, err = cli("convert", source, "-o", output, "--force", "--keep-junk", "--verify")
    assert rc == 0, err
    assert output.exists() and output.stat().st_size < os.path.getsize(source)  # fp16
    rc, out, err = cli("compare", source, output)
    assert rc == 0, err
    rc, out, err = cli("audit", long_folder, "--hashes", "--json")
    assert rc == 0 and "动漫合并 аниме.safetensors" in out and "输出 вывод.safetensors" in out, err
    rc, out, err = cli("meta", source, "--json")
    assert rc == 0, err
    rc, out, err = cli("inspect", long_folder / "нет такого 文件.safetensors")
    assert rc == 2 and err.count("\n") == 1 and "нет такого 文件.safetensors: no such file" in err


class _Job:
    def __init__(self):
        self.seen = []

    def progress(self, done, total, message):
        self.seen.append(message)

    def cancelled(self):
        return False


def _open_handles(under: str) -> list[str]:
    """This process's open files under ``under`` (Linux: /proc/self/fd)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(under):
            found.append(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts handles through /proc/self/fd")
def test_the_tab_flow_leaves_no_handle_open(long_folder):
    """Inspect, scan, identify, hash, preview and write through the tab's actions, on a library in a
    long Chinese/Cyrillic folder: afterwards no file of it is open (Windows could not rename it)."""
    library = str(long_folder)
    write_sample_library(library)
    host = FolderHost(library)
    session = host_module.Session()
    [damaged] = [c.path for c in host.checkpoints() if "damaged" in c.path]
    assert damaged.startswith(library) and len(damaged) > 260  # listed from the long folder
    vae = next(c.path for c in host.vaes())
    assert _open_handles(library) == []

    inspection = actions.inspect_file(host.resolve(damaged), scan=True, identify_components=True,
                                      progress=actions.job_progress(_Job(), "scan"))
    assert inspection.report.path == damaged
    assert _open_handles(library) == []
    assert "SHA256" in actions.hashes(vae, _Job()).upper()
    assert _open_handles(library) == []
    request = actions.ConvertRequest(source=vae, precision="fp16", folder=library, name="VAE 半精度 половина")
    assert "VAE 半精度 половина.safetensors" in actions.preview(request)
    assert _open_handles(library) == []
    result = actions.run(request, _Job())
    session.written = result["output"]
    assert os.path.exists(session.written) and len(session.written) > 260
    assert _open_handles(library) == []
    # session state holds paths only
    assert all(isinstance(v, (str, type(None))) for k, v in vars(session).items() if k == "written")
    # and what Windows would refuse while a handle is open now works: renaming and deleting
    os.replace(damaged, damaged + ".moved")
    os.unlink(session.written)


# Replacing files, as Windows allows it --------------------------------------------------------

@pytest.fixture
def windows_replace(monkeypatch):
    """``os.replace`` refuses a file this process holds open, as Windows does (Linux allows it)."""
    from lib_modeldoc.io import atomic

    real = os.replace

    def replace(src, dst):
        for path in (src, dst):
            if _open_handles(os.path.realpath(path)):
                raise PermissionError(13, "being used by another process", path, 32)
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts handles through /proc/self/fd")
def test_in_place_metadata_edit_closes_the_source_before_replacing_it(long_folder, windows_replace, cli):
    source = write_safetensors_sample(str(long_folder / "合并 смесь.safetensors"), [Spec("w", "F16", (4, 4))],
                                      metadata={"modelspec.title": "old"})
    rc, out, err = cli("meta", source, "--title", "新 новый", "--in-place")
    assert rc == 0, err
    from lib_modeldoc.operations.meta import read_metadata

    assert read_metadata(source).fields["title"] == "新 новый"
    assert sorted(os.listdir(long_folder)) == ["合并 смесь.safetensors"]
