"""Property-based fuzzing of the safetensors and pickle readers (hypothesis).

The property: whatever the bytes, ``open_model`` and reading its tensors either work or raise
:class:`~lib_modeldoc.errors.ModelDocError` (one line for the CLI), in bounded time (the
deadline) and bounded memory (tracemalloc's peak). Inputs come from three strategies: mutations
of real files and of every file in ``corpus/``, opcode streams for the pickle interpreter, and
generated JSON headers.

A failing input is saved to ``corpus/found-<kind>-<where>.<ext>`` (the smallest one for each
place it broke), so it is replayed by ``test_hostile_corpus.py`` on every run from then on.

CI runs a bounded number of examples (``MODELDOC_FUZZ_EXAMPLES``, default 60 per strategy, a
few seconds each). The long run by hand: ``MODELDOC_FUZZ=long python -m pytest tests/fuzz -q``
(see tests/fuzz/README.md).
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import tracemalloc
import traceback

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib_modeldoc.errors import ModelDocError
from lib_modeldoc.io.model import open_model

from . import craft

LONG = os.environ.get("MODELDOC_FUZZ") == "long"
EXAMPLES = int(os.environ.get("MODELDOC_FUZZ_EXAMPLES", "20000" if LONG else "60"))
PEAK_BYTES = 400 << 20  # Python-level allocations of one example, tracemalloc's peak
SECONDS = 20 if LONG else 10

FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=not LONG,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def _seeds() -> list[tuple[str, bytes]]:
    """Real tiny files (written by torch and safetensors) and the whole corpus."""
    from safetensors.torch import save

    t = {"a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(3, dtype=torch.float16)}
    seeds = [("st.safetensors", save(t, metadata={"format": "pt"}))]
    for name, legacy in (("zip.ckpt", False), ("legacy.ckpt", True)):
        buf = io.BytesIO()
        torch.save({"state_dict": t, "epoch": 1}, buf, _use_new_zipfile_serialization=not legacy)
        seeds.append((name, buf.getvalue()))
    for name in sorted(os.listdir(craft.CORPUS)):
        with open(os.path.join(craft.CORPUS, name), "rb") as f:
            seeds.append((name, f.read()))
    return seeds


SEEDS = _seeds()
INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80",
               b"\xff" * 8, b"}", b"]", b"(", b"h\x00", b"r\x00\x00\x00\x08", b"b", b"R", b"."]


@st.composite
def mutated_files(draw):
    name, data = draw(st.sampled_from(SEEDS))
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            value = draw(st.sampled_from(INTERESTING))
            data[pos : pos + len(value)] = value
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from(INTERESTING)) * draw(st.integers(1, 64))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[pos:]
        else:
            other = draw(st.sampled_from(SEEDS))[1]
            start = draw(st.integers(0, max(0, len(other) - 1)))
            data[pos:pos] = other[start : start + draw(st.integers(1, 256))]
    return name, bytes(data)


_GLOBALS = [("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"), ("torch", "FloatStorage"),
            ("torch", "HalfStorage"), ("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
            ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("_codecs", "encode"),
            ("builtins", "set"), ("argparse", "Namespace"), ("copyreg", "_reconstructor"), ("builtins", "object"),
            ("torch._utils", "_rebuild_parameter"), ("torch._tensor", "_rebuild_from_type_v2"), ("torch", "Tensor")]
_SIMPLE_OPS = [b"(", b"0", b"1", b"2", b"N", b"\x88", b"\x89", b")", b"]", b"}", b"\x8f", b"a", b"e", b"s", b"u",
               b"t", b"l", b"d", b"\x85", b"\x86", b"\x87", b"R", b"b", b"Q", b"\x81", b"\x91", b"\x90", b"\x94", b"o"]


@st.composite
def pickle_programs(draw):
    asm = craft.Asm(draw(st.sampled_from([2, 4])))
    for _ in range(draw(st.integers(1, 60))):
        kind = draw(st.integers(0, 9))
        if kind < 4:
            asm.op(draw(st.sampled_from(_SIMPLE_OPS)))
        elif kind == 4:
            asm.glob(*draw(st.sampled_from(_GLOBALS)))
        elif kind == 5:
            asm.str(draw(st.sampled_from(["storage", "cpu", "0", "state_dict", "w", "f4", "latin1", "\ud800"])))
        elif kind == 6:
            asm.int(draw(st.sampled_from([0, 1, 2, 4, -1, 2**31, 2**62, 10**30])))
        elif kind == 7:
            asm.op(b"h" + bytes([draw(st.integers(0, 5))]))
        elif kind == 8:
            asm.op(b"q" + bytes([draw(st.integers(0, 5))]))
        else:
            asm.tensor("0", draw(st.integers(0, 8)), [draw(st.integers(0, 4))], [1], draw(st.integers(0, 4)))
    body = asm.stop()
    as_zip = draw(st.booleans())
    return ("p.ckpt", craft.torch_zip(body, {"0": b"\0" * 32}) if as_zip else body)


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                       st.text(max_size=8), st.sampled_from(["F32", "F16", "BF16", "I64", "U8"]))
_json = st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                     max_leaves=20)


@st.composite
def json_headers(draw):
    header: dict = {}
    offset = 0
    for i in range(draw(st.integers(0, 4))):
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        n = 4
        for d in shape:
            n *= d
        entry = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        if draw(st.booleans()):
            entry[draw(st.sampled_from(["dtype", "shape", "data_offsets"]))] = draw(_json)
        header[draw(st.text(max_size=6)) or f"t{i}"] = entry
        offset += n
    if draw(st.booleans()):
        header["__metadata__"] = draw(_json)
    return ("h.safetensors", craft.safetensors(header, b"\0" * offset))


def _check(tmp_path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    start = time.monotonic()
    tracemalloc.start()
    try:
        with open_model(str(path)) as model:
            for key in list(model)[:32]:
                model.read(key)
    except ModelDocError as exc:
        if "\n" in str(exc) or "\r" in str(exc):
            problem = AssertionError(f"a message of more than one line: {str(exc)[:200]!r}")
            _keep(name, data, problem, kind="multiline")
            raise problem from None
    except BaseException as exc:
        _keep(name, data, exc)
        raise
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    elapsed = time.monotonic() - start
    if peak > PEAK_BYTES or elapsed > SECONDS:
        problem = AssertionError(f"{name}: {peak >> 20} MiB peak, {elapsed:.1f} s")
        _keep(name, data, problem, kind=f"cost-{int(elapsed > SECONDS)}")
        raise problem


def _keep(name: str, data: bytes, exc: BaseException, kind: str | None = None) -> None:
    """Save a failing input to the corpus: the smallest one for each place the readers broke."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "lib_modeldoc" in f.filename]
    where = f"{os.path.basename(frames[-1].filename)[:-3]}{frames[-1].lineno}" if frames else "x"
    stem = f"found-{kind or type(exc).__name__}-{where}"
    ext = os.path.splitext(name)[1] or ".bin"
    for old in os.listdir(craft.CORPUS):
        if old.startswith(stem + "-"):
            if os.path.getsize(os.path.join(craft.CORPUS, old)) <= len(data):
                return
            os.remove(os.path.join(craft.CORPUS, old))
    digest = hashlib.sha256(data).hexdigest()[:8]
    with open(os.path.join(craft.CORPUS, f"{stem}-{digest}{ext}"), "wb") as f:
        f.write(data)


@FUZZ
@given(case=mutated_files())
def test_mutated_files(case, tmp_path):
    _check(tmp_path, *case)


@FUZZ
@given(case=pickle_programs())
def test_pickle_programs(case, tmp_path):
    _check(tmp_path, *case)


@FUZZ
@given(case=json_headers())
def test_safetensors_headers(case, tmp_path):
    _check(tmp_path, *case)
