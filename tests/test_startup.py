"""Start-up cost of the header-only jobs: ``inspect`` of a safetensors file imports neither numpy nor
torch (numpy alone costs ~0.1 s of CPU), and the position_ids it reads without numpy are read
exactly as numpy (and the WebUI's ``.to(torch.int64)``) reads them."""

from __future__ import annotations

import importlib
import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from lib_modeldoc.checks.context import _as_webui_int64
from lib_modeldoc.io.model import open_model
from lib_modeldoc.io.plain_values import read_plain, wrong_positions
from lib_modeldoc.samples import Spec, broken_position_ids, family_specs

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "torch", "safetensors", "lib_modeldoc.io.pickle_read", "lib_modeldoc.arch.networks")
POS = "cond_stage_model.transformer.text_model.embeddings.position_ids"

# Runs the CLI in a fresh interpreter, then prints which heavy modules it imported.
_PROBE = """
import json, sys
from lib_modeldoc.cli import main
rc = main(sys.argv[1:])
sys.stdout.flush()
print("\\nPROBE " + json.dumps({"rc": rc, "heavy": sorted(m for m in %r if m in sys.modules)}))
""" % (HEAVY,)


def _probe(*args: str) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    out, _, last = done.stdout.rstrip().rpartition("\n")
    assert last.startswith("PROBE "), done.stdout + done.stderr
    return json.loads(last[len("PROBE "):]), out


@pytest.fixture
def sd1_fp16(sparse_model):
    specs = family_specs("SD1", dtype="F16")
    return sparse_model("sd15.safetensors", specs, {POS: np.arange(77, dtype=np.int64).reshape(1, 77)})


@pytest.mark.parametrize("extra", [(), ("--json",), ("--brief",)])
def test_inspect_of_a_safetensors_file_imports_no_numpy_nor_torch(sd1_fp16, extra):
    probe, out = _probe("inspect", sd1_fp16, *extra)
    assert probe == {"rc": 0, "heavy": []}
    if extra == ("--json",):
        report = json.loads(out)
        assert report["architecture"] == "SD1" and report["findings"] == []
    else:
        assert "healthy" in out


def test_inspect_still_finds_wrong_position_ids_in_a_fresh_process(sparse_model):
    specs = [Spec(s.key, "F32", s.shape) if s.key == POS else s for s in family_specs("SD1", dtype="F16")]
    path = sparse_model("merge.safetensors", specs, {POS: broken_position_ids({76: 75.9975})})
    probe, out = _probe("inspect", path, "--json")
    assert probe["rc"] == 0
    finding = next(f for f in json.loads(out)["findings"] if f["id"].startswith("clip.position_ids"))
    assert "76" in finding["message"]


WEIRD = [0.0, 1.9999, 2.0, -0.5, float("nan"), float("inf"), float("-inf"), 7.5, 8.0000001, 9.0]


@pytest.mark.parametrize("dtype", ["F16", "BF16", "F32", "F64", "I64", "I32", "U8"])
def test_plain_values_equal_numpy_and_webui_reading(sparse_model, write_safetensors, dtype):
    import torch

    torch_dtype = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64,
                   "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8}[dtype]
    if dtype in ("I64", "I32", "U8"):
        values = torch.tensor([[0, 1, 2, 5, 4, 255 if dtype == "U8" else -3]], dtype=torch_dtype)
    else:
        values = torch.tensor([WEIRD], dtype=torch.float64).to(torch_dtype)
    path = write_safetensors(f"ids-{dtype}.safetensors", {"ids": values})
    with open_model(path) as model:
        info = model["ids"]
        plain = read_plain(model, info)
        array = model.read(info).reshape(-1)
        assert len(plain) == array.size
        assert all((a == b) or (math.isnan(a) and math.isnan(b)) for a, b in zip(plain, array.tolist()))
        as_int = _as_webui_int64(array)
        expected_wrong = tuple(int(i) for i in np.nonzero(as_int != np.arange(len(as_int)))[0])
        assert wrong_positions(plain) == expected_wrong
    # What the WebUI reads (tensor.to(torch.int64)) agrees wherever torch defines the result (not NaN/inf).
    webui = values.reshape(-1).to(torch.int64).tolist()
    finite = [i for i, v in enumerate(values.reshape(-1).double().tolist()) if math.isfinite(v)]
    assert [i for i in finite if webui[i] != i] == [i for i in wrong_positions(plain) if i in finite]


def test_plain_values_of_an_empty_and_a_scalar_tensor(write_safetensors):
    import torch

    path = write_safetensors("small.safetensors", {"empty": torch.zeros(0), "scalar": torch.tensor(3.5)})
    with open_model(path) as model:
        assert read_plain(model, model["empty"]) == []
        assert read_plain(model, model["scalar"]) == [3.5]


@pytest.mark.parametrize("line", ["a.weight [1,2", "a b [1]", " [1]", "a.weight [x]", "a.weight", "a.weight [1,,2]"])
def test_table_parser_refuses_a_malformed_line(line):
    from lib_modeldoc.arch.tables import _parse

    with pytest.raises(ValueError, match="line 2: malformed"):
        _parse("t", "# header\n" + line)


def test_table_parser_reads_shapes_and_scalars():
    from lib_modeldoc.arch.tables import _parse

    assert _parse("t", "a.weight [320,4,3,3]\nlora.alpha []\nx.down [-1,768]\n") == {
        "a.weight": (320, 4, 3, 3), "lora.alpha": (), "x.down": (-1, 768)}


# --- SDXL: the work inspect does per file stays proportional to what the file holds ---------------

def test_inspect_of_sdxl_imports_no_numpy_and_builds_no_header_json(sparse_model):
    """The pruned size comes from counting (``header_size``), not from encoding ~2,500 entries."""
    path = sparse_model("sdxl.safetensors", family_specs("SDXL", dtype="F16"))
    probe_code = _PROBE.replace(
        "from lib_modeldoc.cli import main",
        "from lib_modeldoc.cli import main\n"
        "import lib_modeldoc.operations.plan as plan\n"
        "def _refuse(*a, **k): raise AssertionError('inspect built a header JSON')\n"
        "plan.build_header = _refuse",
    )
    done = subprocess.run([sys.executable, "-c", probe_code, "inspect", path, "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    out, _, last = done.stdout.rstrip().rpartition("\n")
    assert last.startswith("PROBE "), done.stdout + done.stderr
    assert json.loads(last[len("PROBE "):]) == {"rc": 0, "heavy": []}
    report = json.loads(out)
    assert report["architecture"] == "SDXL"
    from lib_modeldoc.operations.convert import ConvertOptions, plan_convert

    with open_model(path) as model:  # the counted size is the size convert's header really has
        plan = plan_convert(model, ConvertOptions())
        assert report["pruned_size_bytes"] == len(plan.header()) + plan.data_bytes


def test_identify_lays_out_only_tables_mounted_where_the_file_has_keys(sparse_model):
    from lib_modeldoc.arch.families import FAMILIES, Mount, Slot
    from lib_modeldoc.arch.tables import table

    module = importlib.import_module("lib_modeldoc.arch.identify")  # the package exports a function of that name
    path = sparse_model("sdxl.safetensors", family_specs("SDXL", dtype="F16"))
    with open_model(path) as model:
        shapes = {k: info.shape for k, info in model.items()}
    pairs = {(t, m) for f in FAMILIES for s in f.slots for t in s.tables for m in s.mounts}
    present = {(t, m) for t, m in pairs if any(k.startswith(m.prefix) for k in shapes)}
    assert present and len(present) < len(pairs)
    module._DERIVED.clear()
    assert module.identify(shapes).architecture == "SDXL"
    assert sum(len(derived.layouts) for derived in module._DERIVED.values()) == len(present)

    # A table mounted where the file has nothing: every required key is missing, counted without
    # laying the keys out, and listed (laid out then) when asked.
    mount = Mount("cond_stage_model.model.")
    match = module._match(Slot("clip_h", ("clip_h",), (mount,)), table("clip_h"), mount, shapes, frozenset(shapes), {})
    required = tuple(mount.key(k) for k in table("clip_h").shapes if k not in table("clip_h").optional)
    assert not match.present and match.some_missing is None
    assert match.missing_count == match.expected == len(required)
    assert match.missing == required
