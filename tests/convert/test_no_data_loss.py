"""Mistakes that lose data: every file the project writes goes through one output rule.

Never a source, never an existing model file without --overwrite, never a file the WebUI has
loaded; leftovers of killed writes are reported and swept; modes follow the source and umask.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack

import pytest

from file_digest import sha256_of
from convert_support import listing
from lib_modeldoc.errors import OutputError
from lib_modeldoc.io.atomic import atomic_output, find_partials, partial_name
from lib_modeldoc.io.output_rule import OutputKind, check_output

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def pair(tmp_path, slim_model, cli):
    """D/a.safetensors and D/b.ckpt (the same slim SD1 model)."""
    folder = tmp_path / "D"
    folder.mkdir()
    a = slim_model(os.path.join("D", "a.safetensors"))
    b = folder / "b.ckpt"
    rc, _, err = cli("convert", a, "-o", b)
    assert rc == 0, err
    return folder, a, str(b)


def test_compare_plot_onto_a_source_model_is_refused(pair, cli):
    pytest.importorskip("matplotlib")
    folder, a, b = pair
    before = sha256_of(a)
    rc, _, err = cli("compare", a, b, "--plot", a)
    assert rc == 2
    assert err.startswith("modeldoc: error: ") and err.count("\n") == 1 and "source" in err
    assert sha256_of(a) == before
    assert listing(folder) == ["a.safetensors", "b.ckpt"]


def test_compare_plot_onto_another_model_file_is_refused(pair, cli, slim_model):
    pytest.importorskip("matplotlib")
    folder, a, b = pair
    other = slim_model(os.path.join("D", "c.safetensors"))
    before = sha256_of(other)
    rc, _, err = cli("compare", a, b, "--plot", other)
    assert rc == 2 and "model file" in err and err.count("\n") == 1
    assert sha256_of(other) == before


def test_compare_plot_may_replace_an_old_png(pair, cli, tmp_path):
    pytest.importorskip("matplotlib")
    _, a, b = pair
    png = tmp_path / "diff.png"
    png.write_bytes(b"old")
    rc, _, err = cli("compare", a, b, "--plot", png)
    assert rc == 0, err
    assert png.read_bytes().startswith(b"\x89PNG")


def test_audit_csv_onto_a_model_is_refused(pair, cli):
    folder, a, b = pair
    before = sha256_of(b)
    rc, _, err = cli("audit", folder, "--csv", b)
    assert rc == 2 and err.startswith("modeldoc: error: ") and err.count("\n") == 1
    assert sha256_of(b) == before


def test_audit_csv_onto_a_model_without_a_model_suffix_is_refused(pair, cli, tmp_path):
    folder, a, _ = pair
    disguised = tmp_path / "report.csv"
    disguised.write_bytes(open(a, "rb").read())
    rc, _, err = cli("audit", folder, "--csv", disguised)
    assert rc == 2 and "model file" in err
    assert sha256_of(disguised) == sha256_of(a)


def test_batch_into_its_own_folder_never_replaces_another_source(tmp_path, slim_model, cli):
    folder = tmp_path / "D"
    folder.mkdir()
    m = slim_model(os.path.join("D", "m.safetensors"))
    rc, _, err = cli("convert", m, "-o", folder / "m.ckpt", "--precision", "fp32")
    assert rc == 0, err
    digests = {name: sha256_of(folder / name) for name in listing(folder)}
    rc, out, err = cli("convert", "--batch", folder, "-o", folder, "--force", "--overwrite")
    assert rc == 2
    assert "source" in err
    assert {name: sha256_of(folder / name) for name in listing(folder)} == digests


def test_the_rule_refuses_a_loaded_file_even_with_overwrite(tmp_path):
    loaded = tmp_path / "loaded.safetensors"
    loaded.write_bytes(b"x")
    with pytest.raises(OutputError, match="loaded"):
        check_output(str(loaded), overwrite=True, protected=(str(loaded),))
    report = tmp_path / "r.csv"
    report.write_text("a,b\n")
    check_output(str(report), kind=OutputKind.REPORT)  # an old report may be replaced
    with pytest.raises(OutputError, match="exists"):
        check_output(str(report), kind=OutputKind.MODEL)


def test_the_tab_never_writes_over_the_loaded_model(tmp_path, slim_model):
    from lib_modeldoc.ui import actions

    source = slim_model("src.safetensors")
    loaded = slim_model("loaded.safetensors")
    before = sha256_of(loaded)

    class Job:
        def progress(self, *a):
            pass

        def cancelled(self):
            return False

    class Host:
        name = "WebUI"

        def loaded_checkpoint(self):
            return loaded

    request = actions.ConvertRequest(source=source, folder=str(tmp_path), name="loaded", overwrite=True)
    with pytest.raises(OutputError, match="loaded"):
        actions.run(request, Job(), Host())
    assert sha256_of(loaded) == before
    from lib_modeldoc.operations.writer import write_plan  # the rule itself, below the tab's own check
    with ExitStack() as stack:
        with pytest.raises(OutputError, match="loaded by the WebUI"):
            write_plan(request.plan(stack), loaded, overwrite=True, protected=(loaded,))
    assert sha256_of(loaded) == before


# --- leftovers of killed writes -----------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_partials_are_reported_by_audit_and_swept_by_the_next_write(pair, cli):
    folder, a, _ = pair
    stale = folder / partial_name("big.safetensors", pid=_dead_pid())
    stale.write_bytes(b"\0" * 4096)
    live = folder / partial_name("busy.safetensors", pid=os.getpid())
    live.write_bytes(b"\0" * 10)
    rc, out, err = cli("audit", folder)
    assert rc == 0, err
    assert "Leftovers of interrupted writes" in out and stale.name in out
    assert {p.path for p in find_partials(str(folder)) if p.stale} == {str(stale)}
    rc, _, err = cli("convert", a, "-o", folder / "new.safetensors")
    assert rc == 0, err
    assert not stale.exists()  # swept by the write into that folder
    assert live.exists()  # held by a live process: kept


def test_partial_names_carry_the_pid(tmp_path):
    with atomic_output(str(tmp_path / "x.bin")) as f:
        name = os.path.basename(f.name)
        assert name.startswith(".x.bin.") and f".{os.getpid()}." in name and name.endswith(".partial")
        f.write(b"1")
    assert listing(tmp_path) == ["x.bin"]


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name == "nt", reason="POSIX signals")
def test_sigterm_mid_write_is_handled_like_ctrl_c(tmp_path):
    """A convert killed by SIGTERM leaves no partial file and says so in one line."""
    from lib_modeldoc.samples import family_specs, write_safetensors_sample

    src = write_safetensors_sample(str(tmp_path / "big.safetensors"), family_specs("SD1", dtype="F32"))
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "lib_modeldoc", "convert", src, "-o", str(out / "x.safetensors"),
                             "--verify"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(n.endswith(".partial") for n in os.listdir(out)):
        time.sleep(0.02)
    assert any(n.endswith(".partial") for n in os.listdir(out)), "the write never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "modeldoc: error: interrupted; nothing was written"
    assert os.listdir(out) == []


# --- modes ------------------------------------------------------------------------------------

@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
@pytest.mark.parametrize(("source_mode", "umask", "expected"), [(0o644, 0o022, 0o644), (0o600, 0o077, 0o600),
                                                                 (0o600, 0o022, 0o600), (0o644, 0o077, 0o600)])
def test_output_mode_follows_the_source_and_the_umask(tmp_path, slim_model, source_mode, umask, expected):
    source = slim_model("src.safetensors")
    os.chmod(source, source_mode)
    out = tmp_path / "out.safetensors"
    code = ("import sys; from lib_modeldoc.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run(["sh", "-c", f"umask {umask:03o}; exec \"$0\" -c \"$1\" convert \"$2\" -o \"$3\"",
                           sys.executable, code, source, str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert os.stat(out).st_mode & 0o777 == expected
