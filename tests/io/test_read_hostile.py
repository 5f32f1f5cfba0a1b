"""Hostile pickles: a global outside the allowlist stops the load before anything runs.

Every payload would create a marker file in ``tmp_path`` if it were unpickled naively (the control
test proves it). Written through each pickle container (torch zip, torch legacy, bare pickle at
protocols 0, 2 and 4), each must raise ``UnsafeCheckpointError`` naming the global as the pickle
records it, leave no marker, and make the CLI exit 2 with one line.
"""

from __future__ import annotations

import builtins
import os
import pickle
import shlex
import subprocess
import sys

import pytest
import torch

from lib_modeldoc.errors import UnsafeCheckpointError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# os.system lives in the C module ``posix`` (``nt`` on Windows); pickle records that name.
OS_SYSTEM = f"{os.system.__module__}.system"


class Reduce:
    """An object whose unpickling calls ``fn(*args)``: the classic pickle exploit."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args

    def __hash__(self):  # usable as a dict key
        return 1


def _touch_code(marker) -> str:
    return f"open({str(marker)!r}, 'w').close()"


PAYLOADS = {
    # id: (payload factory given the marker path, the global the message must name)
    "os_system": (lambda m: Reduce(os.system, f"touch {shlex.quote(str(m))}"), OS_SYSTEM),
    "builtins_exec": (lambda m: Reduce(builtins.exec, _touch_code(m)), "builtins.exec"),
    "builtins_eval": (lambda m: Reduce(builtins.eval, _touch_code(m)), "builtins.eval"),
    "subprocess_popen": (lambda m: Reduce(subprocess.Popen, ["touch", str(m)]), "subprocess.Popen"),
}


def _torch_zip(path, obj):
    torch.save(obj, path)


def _torch_legacy(path, obj):
    torch.save(obj, path, _use_new_zipfile_serialization=False)


def _pickle_writer(protocol):
    def write(path, obj):
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=protocol)

    return write


WRITERS = {
    "zip.ckpt": _torch_zip,
    "legacy.ckpt": _torch_legacy,
    "proto0.pt": _pickle_writer(0),
    "proto2.pt": _pickle_writer(2),
    "proto4.pt": _pickle_writer(4),
}


def _refusal(path, name: str) -> str:
    return f"{path}: refused to load: its pickle calls {name}, which no model file needs; nothing from the file was run"


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "MARKER"
    yield path
    assert not path.exists(), "a hostile payload ran"


@pytest.mark.parametrize("payload_id", PAYLOADS)
def test_payloads_are_live_when_unpickled_naively(payload_id, tmp_path):
    """Control: the same payload really creates the marker under plain ``pickle.loads``."""
    make, _ = PAYLOADS[payload_id]
    marker = tmp_path / "CONTROL"
    result = pickle.loads(pickle.dumps(make(marker), protocol=2))
    if isinstance(result, subprocess.Popen):
        result.wait()
    assert marker.exists()


@pytest.mark.parametrize("writer_id", WRITERS)
@pytest.mark.parametrize("payload_id", PAYLOADS)
def test_hostile_payload_is_refused_and_never_runs(payload_id, writer_id, tmp_path, marker, expect_read_error):
    make, name = PAYLOADS[payload_id]
    path = tmp_path / f"hostile_{writer_id}"
    obj = {"epoch": 1, "state_dict": {"model.w": [1.0, 2.0], "model.evil": make(marker)}}
    WRITERS[writer_id](str(path), obj)
    expect_read_error(path, UnsafeCheckpointError, _refusal(path, name))
    assert not marker.exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_payload_after_real_tensors_still_stops_the_load(legacy, write_ckpt, tmp_path, marker, expect_read_error):
    payload = Reduce(os.system, f"touch {marker}")
    state = {"state_dict": {"a.weight": torch.ones(4, 4), "b.weight": torch.zeros(2), "z": payload}}
    path = write_ckpt("tensors_then_payload.ckpt", state, legacy=legacy)
    expect_read_error(path, UnsafeCheckpointError, _refusal(path, OS_SYSTEM))


@pytest.mark.parametrize("protocol", [0, 2])
def test_top_level_payload_in_bare_pickle(protocol, tmp_path, marker, expect_read_error):
    path = tmp_path / "top.pt"
    path.write_bytes(pickle.dumps(Reduce(os.system, f"touch {marker}"), protocol=protocol))
    expect_read_error(path, UnsafeCheckpointError, _refusal(path, OS_SYSTEM))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_global_smuggled_as_a_dict_key(legacy, write_ckpt, expect_read_error):
    state = {"state_dict": {"w": torch.ones(2), os.system: "looks like a key"}}
    path = write_ckpt("key_global.ckpt", state, legacy=legacy)
    expect_read_error(path, UnsafeCheckpointError, _refusal(path, OS_SYSTEM))


def test_payload_smuggled_as_a_dict_key(write_ckpt, marker, expect_read_error):
    state = {"state_dict": {"w": torch.ones(2), Reduce(os.system, f"touch {marker}"): 1}}
    path = write_ckpt("key_payload.ckpt", state)
    expect_read_error(path, UnsafeCheckpointError, _refusal(path, OS_SYSTEM))


def test_hostile_pickle_renamed_safetensors_is_still_refused(tmp_path, marker, expect_read_error):
    """The format comes from the bytes: a renamed pickle is read as a pickle, safely."""
    path = tmp_path / "innocent.safetensors"
    path.write_bytes(pickle.dumps({"w": Reduce(builtins.exec, _touch_code(marker))}, protocol=2))
    expect_read_error(path, UnsafeCheckpointError, _refusal(path, "builtins.exec"))


def test_cli_subprocess_refuses_hostile_ckpt_without_traceback(write_ckpt, marker):
    path = write_ckpt("hostile.ckpt", {"state_dict": {"w": torch.ones(2), "x": Reduce(os.system, f"touch {marker}")}})
    done = subprocess.run(
        [sys.executable, "-m", "lib_modeldoc", "inspect", path],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"modeldoc: error: {_refusal(path, OS_SYSTEM)}\n"
    assert "Traceback" not in done.stderr
    assert not marker.exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_whole_module_pickle_is_refused(legacy, write_ckpt, expect_read_error):
    """A pickled ``nn.Module`` names a class outside the allowlist: refused, never imported."""
    path = write_ckpt("module.ckpt", {"model": torch.nn.Linear(2, 2)}, legacy=legacy)
    expect_read_error(path, UnsafeCheckpointError, _refusal(path, "torch.nn.modules.linear.Linear"))
