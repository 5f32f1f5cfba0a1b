"""Ctrl-C (KeyboardInterrupt) and a cancelled job stop the threaded readers promptly, the same on
Windows (no signals are used): the work not yet started is dropped, not finished first."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lib_modeldoc.analysis import audit

from lib_modeldoc.analysis import scan
from lib_modeldoc.arch.identify import identify_model
from lib_modeldoc.arch.layout import layout_of
from lib_modeldoc.errors import Cancelled
from lib_modeldoc.io.model import open_model
from lib_modeldoc.samples import Spec, write_safetensors_sample


class _Slow:
    """Wraps a per-item function: each call takes a while and is counted."""

    def __init__(self, fn, seconds=0.05):
        self.fn, self.seconds, self.calls = fn, seconds, 0
        self._lock = threading.Lock()

    def __call__(self, *args, **kwargs):
        with self._lock:
            self.calls += 1
        time.sleep(self.seconds)
        return self.fn(*args, **kwargs)


def _stop_at_first(exc):
    def progress(done, total, message):
        raise exc

    return progress


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), Cancelled("scan: interrupted")])
def test_a_stopped_scan_drops_the_queued_tensors(tmp_path, monkeypatch, exc):
    specs = [Spec(f"w.{i}", "F32", (16, 16)) for i in range(60)]
    path = write_safetensors_sample(str(tmp_path / "m.safetensors"), specs,
                                    {s.key: np.ones(s.shape, np.float32) for s in specs})
    slow = _Slow(scan._scan_tensor)
    monkeypatch.setattr(scan, "_scan_tensor", slow)
    with open_model(path) as model:
        layout = layout_of(list(model), identify_model(model))
        with pytest.raises(type(exc)):
            scan.scan_model(model, layout, progress=_stop_at_first(exc), workers=2)
    # 8 tensors are queued ahead (4 per worker), 1 more after the first result: only the first
    # and the two running when it stopped are read, the queued ones dropped
    assert slow.calls <= 4, slow.calls
    assert not [t for t in threading.enumerate() if t.name.startswith("modeldoc-scan")]


def test_a_stopped_audit_drops_the_queued_files(tmp_path, monkeypatch):
    for i in range(12):
        write_safetensors_sample(str(tmp_path / f"m{i}.safetensors"), [Spec("w", "F32", (8, 8))])
    slow = _Slow(audit._scan)
    monkeypatch.setattr(audit, "_scan", slow)
    with pytest.raises(KeyboardInterrupt):
        audit.audit_folder(str(tmp_path), workers=2, progress=_stop_at_first(KeyboardInterrupt()))
    assert slow.calls <= 4, slow.calls  # not all 12
    assert not [t for t in threading.enumerate() if t.name.startswith("modeldoc-audit")]


def test_ctrl_break_on_windows_ends_a_command_like_ctrl_c(monkeypatch):
    """Where the platform has SIGBREAK (Windows' Ctrl+Break), it raises KeyboardInterrupt as Ctrl-C does;
    where it lacks SIGTERM nothing fails. (SIGUSR1 stands in for SIGBREAK on this machine.)"""
    import signal

    from lib_modeldoc import cli

    stand_in = getattr(signal, "SIGUSR1", None)
    if stand_in is None:
        pytest.skip("no spare signal to stand in for SIGBREAK")
    before = {s: signal.getsignal(s) for s in (stand_in, signal.SIGTERM)}
    try:
        monkeypatch.setattr(signal, "SIGBREAK", stand_in, raising=False)
        monkeypatch.delattr(signal, "SIGTERM")
        cli.handle_sigterm()  # no SIGTERM here: no AttributeError
        assert signal.getsignal(stand_in) is cli._terminate_like_ctrl_c
        assert before[signal.Signals.SIGTERM] == signal.getsignal(signal.Signals.SIGTERM)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(stand_in)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
