"""Every hostile input ever found is refused with one line, exit 2, in bounded memory and time.

``tests/fuzz/corpus/`` holds the small crafted files (``craft.py`` writes them) and every input
the fuzzer (``test_fuzz_readers.py``) has ever broken the readers with; the large classes are
built here in ``tmp_path``. Memory is measured in a child process under an address-space cap.
"""

from __future__ import annotations

import os
import re
import sys

import pytest

from lib_modeldoc.cli import main
from lib_modeldoc.errors import LimitExceededError, ModelDocError, ModelReadError
from lib_modeldoc.io import pickle_read
from lib_modeldoc.io.model import open_model

from . import craft
from .measure import measure

CORPUS_FILES = sorted(os.listdir(craft.CORPUS))
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="measured under RLIMIT_AS (POSIX)")

# Each class's line names what is wrong (after "modeldoc: error: PATH: ").
EXPECTED = {
    "memo_long_binput.ckpt": "memo index 134,217,728 is over the limit",
    "memo_long_binput_variant.ckpt": "memo index 2,147,483,647 is over the limit",
    "numpy_reconstruct_huge.ckpt": "a numpy array was never given its data",
    "numpy_many_dims.ckpt": "numpy array shape is not a list of at most 32 dimensions",
    "numpy_dtype_list.ckpt": "unsupported numpy dtype",
    "encode_copies.ckpt": "pickle copies more than 64 MiB of data (the limit)",
    "self_reference.ckpt": "the pickled object contains itself (a cycle)",
    "self_referencing_list.ckpt": "the pickled object contains itself (a cycle)",
    "shared_dag.ckpt": "pickled object expands to more than 2,000,000 values (the limit)",
    "build_setattr_function.ckpt": "BUILD on a function is not something a checkpoint does",
    "build_on_tensor_ref.ckpt": "BUILD on a TensorRef is not something a checkpoint does",
    "zip_encrypted.ckpt": "zip record archive/data.pkl is encrypted",
    "zip_unknown_method.ckpt": "zip record archive/data.pkl uses unsupported compression method 99",
    "zip_corrupt_deflate.ckpt": "zip record archive/data.pkl cannot be read (Error -3",
    "zip_corrupt_lzma.ckpt": "zip record archive/data.pkl cannot be read",
    "zip_bad_local_header.ckpt": "zip entry data/0 is damaged",
    "zip_negative_offset.ckpt": "zip record archive/data.pkl cannot be read",
    "zip_huge_offset.ckpt": "zip entry data/0 is damaged (it starts outside the file)",
    "legacy_negative_view.ckpt": "storage view offset -5 is not a valid size or offset",
    "json_long_int.safetensors": "safetensors header is not valid JSON (Exceeds the limit (4300 digits)",
    "json_dtype_list.safetensors": "tensor 'a' has unsupported dtype ['F32']",
    "json_lone_surrogate_key.safetensors": "safetensors header holds text that is not valid Unicode",
    "json_many_dims.safetensors": "has 100 dimensions, over the limit of 32",
    "json_huge_dims.safetensors": "has a shape larger than any tensor can be",
}


def _one_error_line(err: str, path: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"modeldoc: error: {path}: "), err
    assert "internal error" not in err and "Traceback" not in err
    return lines[0]


def test_every_crafted_class_is_in_the_corpus():
    assert set(craft.SMALL) <= set(CORPUS_FILES)
    assert set(craft.SMALL) == set(EXPECTED)


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_file_is_refused_with_one_line(name, capsys):
    """inspect and inspect --scan: exit 2, one line, never "internal error" (exit 1)."""
    path = os.path.join(craft.CORPUS, name)
    for args in (["inspect", path], ["inspect", "--scan", path]):
        capsys.readouterr()
        code = main(args)
        out, err = capsys.readouterr()
        if name in EXPECTED:
            assert code == 2, (args, out, err)
            assert EXPECTED[name] in _one_error_line(err, path)
            assert out == ""
        else:  # a fuzzer find: fixed means read, or refused cleanly
            assert code in (0, 2), err
            if code:
                _one_error_line(err, path)


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_file_raises_only_the_error_hierarchy(name):
    path = os.path.join(craft.CORPUS, name)
    try:
        with open_model(path) as model:
            for key in list(model)[:64]:
                model.read(key)
    except ModelDocError:
        pass


def test_build_never_touches_the_readers_own_functions():
    before = {name: (f.__qualname__, f.__code__) for name, f in pickle_read._REBUILDERS.items()}
    with pytest.raises(ModelReadError):
        open_model(os.path.join(craft.CORPUS, "build_setattr_function.ckpt"))
    assert {name: (f.__qualname__, f.__code__) for name, f in pickle_read._REBUILDERS.items()} == before


def test_limit_errors_are_their_own_type():
    with pytest.raises(LimitExceededError):
        open_model(os.path.join(craft.CORPUS, "memo_long_binput.ckpt"))


# The large classes: built here, measured in a child process ---------------------------------

LARGE_EXPECTED = {
    "zip_of_dicts.ckpt": "pickle creates more than 2,000,000 objects (the limit)",
    "empty_dict_ops.ckpt": "pickle creates more than 2,000,000 objects (the limit)",
    "byteorder_member.ckpt": "zip record archive/byteorder inflates to 314,572,800 bytes, over the 64-byte limit",
    "deep_lists.ckpt": "pickle nests containers more than 64 deep (the limit)",
    "deep_dicts.ckpt": "pickle nests containers more than 64 deep (the limit)",
    "json_deep.safetensors": "safetensors header nests too deeply",
    "json_many_lists.safetensors": "lists and objects, over the limit of 250,000",
    "json_many_strings.safetensors": "header holds about 2,000,006 strings, over the limit of 750,000",
    "json_many_numbers.safetensors": "header holds more than 500,000 numbers, over the limit",
}
PEAK_RSS_MB = 600  # every hostile file, every command (measured worst: see tests/fuzz/README.md)
SECONDS = 30


@pytest.fixture(scope="module")
def large_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for name, make in craft.LARGE.items():
        paths[name] = str(folder / name)
        with open(paths[name], "wb") as f:
            f.write(make())
    return paths


@POSIX
@pytest.mark.parametrize("name", sorted(LARGE_EXPECTED))
def test_large_class_is_refused_in_bounded_memory(name, large_files):
    path = large_files[name]
    run = measure(["inspect", path])
    assert run.returncode == 2, run.stderr
    assert LARGE_EXPECTED[name] in _one_error_line(run.stderr, path)
    assert run.peak_rss_mb < PEAK_RSS_MB, run
    assert run.seconds < SECONDS, run


@POSIX
@pytest.mark.parametrize("name", ["memo_long_binput_variant.ckpt", "numpy_reconstruct_huge.ckpt"])
def test_memory_classes_cost_no_more_than_startup(name):
    path = os.path.join(craft.CORPUS, name)
    run = measure(["inspect", path])
    assert run.returncode == 2
    assert run.peak_rss_mb < 200, run


@POSIX
@pytest.mark.parametrize("command", [["convert", "--dry-run", "-o", "{out}"], ["audit", "{dir}"]])
def test_self_reference_ends_in_convert_and_audit(command, tmp_path):
    src = tmp_path / "m" / "self.ckpt"
    src.parent.mkdir()
    src.write_bytes(craft.self_reference())
    args = [a.format(out=tmp_path / "out.safetensors", dir=src.parent) for a in command]
    run = measure(args if command[0] == "audit" else args + [str(src)], timeout=60)
    assert "the pickled object contains itself (a cycle)" in run.stdout + run.stderr
    assert run.seconds < SECONDS and "internal error" not in run.stderr


@POSIX
def test_too_many_tensors_is_refused_before_the_work(tmp_path):
    """A million-tensor file costs a refusal, not 52 s and 1.3 GB; one over the limit too."""
    for name, data in (
        ("many.safetensors", craft.many_tensors_safetensors(50_001)),
        ("many.ckpt", craft.many_tensors_pickle(50_001)),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        for args in (["inspect", str(path)], ["convert", "--dry-run", "-o", str(tmp_path / "o.safetensors"), str(path)]):
            run = measure(args)
            assert run.returncode == 2, run.stderr
            line = _one_error_line(run.stderr, str(path))
            assert re.search(r"50,001 tensors, over the limit of 50,000|more than (50,000 tensors|2,000,000 objects)", line)
            assert run.peak_rss_mb < PEAK_RSS_MB and run.seconds < SECONDS, run


@POSIX
def test_compressed_storage_shared_by_many_tensors_is_inflated_once(tmp_path):
    path = tmp_path / "shared.ckpt"
    path.write_bytes(craft.compressed_shared_storage(tensors=2000, size=64 << 20))
    run = measure(["inspect", "--scan", str(path)], timeout=120)
    assert run.returncode in (0, 2) and "internal error" not in run.stderr, run.stderr
    assert run.seconds < SECONDS, run
    assert run.peak_rss_mb < PEAK_RSS_MB, run


# What the limits must not refuse --------------------------------------------------------------

@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_honest_neighbours_of_the_hostile_classes_still_read(legacy, write_ckpt):
    """Shared tensors (tied weights), shared plain values, 20 levels of nesting, numpy text."""
    import numpy as np
    import torch

    shared = torch.arange(6, dtype=torch.float32)
    hparams = {"lr": 1e-4, "name": np.str_("run-1"), "tag": np.bytes_(b"x")}
    nested: dict = {"w": shared}
    for _ in range(20):
        nested = {"n": nested}
    path = write_ckpt("honest.ckpt", {"state_dict": {"a.weight": shared, "b.weight": shared, "deep": nested},
                                      "hp": hparams, "hp_again": hparams}, legacy=legacy)
    with open_model(path) as model:
        assert model.read("a.weight").tolist() == model.read("b.weight").tolist() == list(range(6))
        assert "deep" + ".n" * 20 + ".w" in model
        assert model.extras["hp.name"] == "run-1" and model.extras["hp_again.lr"] == 1e-4


@pytest.mark.parametrize("name", ["self_reference.ckpt", "shared_dag.ckpt", "memo_long_binput.ckpt"])
def test_tab_worker_gets_one_message_not_a_hang(name):
    """The tab's Inspect action (the worker's call) ends with one error message (in a thread, so a
    regression fails the test instead of hanging the run)."""
    import threading

    from lib_modeldoc.ui import actions

    path = os.path.join(craft.CORPUS, name)
    box: dict = {}
    worker = threading.Thread(target=lambda: box.update(out=actions.guard(lambda: actions.inspect_file(path))),
                              daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the tab's worker hangs"
    result, message = box["out"]
    assert result is None and message and EXPECTED[name].split(" (")[0][:30] in message.replace("&#x27;", "'")
