"""bench/bench.py's helpers: each job beside its floor (ratio, seconds over start-up), the load
average per row, and --small's sparse samples. Quick: no job is timed here."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

from lib_modeldoc.io.model import open_model

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("modeldoc_bench", ROOT / "bench" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_every_reading_job_has_a_floor(bench):
    floors = {job.name: job.floor for job in bench.JOBS if job.floor != bench.WRITE}
    assert floors["inspect"] == bench.STARTUP
    assert floors["inspect-scan"] == floors["compare"] == bench.READ
    assert floors["convert"] == floors["convert-prune"] == floors["convert-ckpt"] == bench.READ_WRITE
    # convert also against the write alone: it reads while it writes, so the disk's share is what it cannot beat
    assert [job.name for job in bench.JOBS if job.floor == bench.WRITE] == ["convert"]
    assert set(bench.FLOORS) == {bench.READ, bench.READ_WRITE, bench.WRITE, bench.SHA256, bench.SHA256_TWO,
                                 bench.STARTUP}
    hashes = [(job.floor, job.env) for job in bench.JOBS if job.name == "hash"]
    # one SHA-256 pass and two side by side; with libdeflate where the system has it, and without
    assert hashes == [(bench.SHA256, ()), (bench.SHA256_TWO, ()), (bench.SHA256, bench.NO_LIBDEFLATE)]


def test_the_two_stream_floor_hashes_the_file_and_its_data_section(bench, tmp_path):
    header = json.dumps({"w": {"dtype": "U8", "shape": [5000], "data_offsets": [0, 5000]}}).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(range(250)) * 20)
    # each thread says what it hashed in one write (two threads' print() calls could interleave)
    probe = bench._SHA256_TWO.replace("h.update(block)", "h.update(block)\n    sys.stdout.write(f'{start} {h.hexdigest()}\\n')")
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True)
    data = open(path, "rb").read()
    n = int.from_bytes(data[:8], "little")
    assert sorted(done.stdout.split()) == sorted(["0", hashlib.sha256(data).hexdigest(),
                                                  str(8 + n), hashlib.sha256(data[8 + n:]).hexdigest()])


def test_the_read_write_floor_reads_the_sources_and_writes_the_outputs_size(bench, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"x" * 3_000_000)
    argv = bench.floor_argv(bench.READ_WRITE, (str(source),), str(tmp_path), 40_000_123)
    scratch = argv[2]
    probe = argv[1].replace("os.remove(out)", "print(os.path.getsize(out)); os.remove(out)")
    done = subprocess.run([sys.executable, "-c", probe, *argv[2:]], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["40000123"]
    assert not os.path.exists(scratch)  # removed, nothing left beside the samples
    write_only = bench.floor_argv(bench.WRITE, (str(source),), str(tmp_path), 123)
    assert write_only[2:] == [scratch, "123"]  # the same scratch file and size, no source read
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a").write_bytes(b"1" * 10)
    assert bench.folder_size(str(tmp_path / "out")) == 10


def test_a_job_runs_with_its_environment(bench):
    run = bench.run_child([sys.executable, "-c", "import os, sys; sys.exit(os.environ.get('MODELDOC_NO_LIBDEFLATE') != '1')"],
                          bench.NO_LIBDEFLATE)
    assert run.returncode == 0
    assert bench.run_child([sys.executable, "-c", "import os, sys; sys.exit('MODELDOC_NO_LIBDEFLATE' in os.environ)"]).returncode == 0


def test_children_cache_their_bytecode_as_a_normal_install_does(bench, monkeypatch):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert bench.run_child([sys.executable, "-c", "import sys; sys.exit(sys.flags.dont_write_bytecode)"]).returncode == 0


def test_versus_floor_is_a_ratio_or_seconds_over_start_up(bench):
    hashed = bench.Result("hash", ["a"], 1, False, None, walls_s=[3.0, 2.4, 2.6], cpus_s=[2.0, 2.2, 2.1],
                          floor=bench.SHA256, floor_walls_s=[2.0, 2.0, 2.1], floor_cpus_s=[1.0, 1.1, 1.0],
                          loadavgs=[1.0, 3.0, 2.0])
    assert hashed.versus_floor() == "1.30x wall, 2.10x cpu"
    assert hashed.median_load == 2.0
    started = bench.Result("inspect", ["a"], 1, False, None, walls_s=[0.12], cpus_s=[0.11], floor=bench.STARTUP,
                           floor_walls_s=[0.02], floor_cpus_s=[0.01])
    assert started.versus_floor() == "+0.100 s wall, +0.100 s cpu"
    failed = bench.Result("hash", ["a"], 1, False, None, error="exit 2", floor=bench.SHA256, floor_walls_s=[1.0])
    assert failed.versus_floor() == ""
    assert bench.ratio(1.0, 0.0) == "-"


def test_table_shows_load_floor_and_ratio(bench):
    row = bench.Result("hash", ["sd15-fp16.safetensors"], 2_132_626_374, False, None, walls_s=[2.5], cpus_s=[2.4],
                       maxrss_kib=[47_000], floor=bench.SHA256, floor_walls_s=[2.0], floor_cpus_s=[1.6],
                       loadavgs=[6.25])
    table = bench.format_table([row], {j.name: j for j in bench.JOBS}, 1)
    header, _, line = table.splitlines()[:3]
    assert "load" in header and "floor (same run)" in header and "job vs floor" in header
    assert "6.25" in line and "sha256 pass" in line and "1.25x wall, 1.50x cpu" in line


def test_small_samples_are_sparse_real_headers_and_leave_out_the_ckpt(bench, tmp_path):
    paths = bench.ensure_small_samples([bench.SD15_FP16, bench.SD15_CKPT], str(tmp_path))
    assert set(paths) == {bench.SD15_FP16}
    path = paths[bench.SD15_FP16]
    assert os.path.getsize(path) == 2_132_626_374 and os.stat(path).st_blocks * 512 < 1 << 20
    with open_model(path) as model:
        ids = model.read(bench.SD1_CLIP_POSITION_IDS)
        assert ids.reshape(-1).tolist() == list(range(77)) and len(model) == 1131
    jobs = bench.with_samples([j for j in bench.JOBS if j.name in ("inspect", "inspect-json")], set(paths))
    assert [(j.name, j.file_sets()) for j in jobs] == [("inspect", [(bench.SD15_FP16,)])]
