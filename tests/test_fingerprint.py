"""Known components: the toolkit metric and the exact content fingerprint, across file forms."""

from __future__ import annotations

import numpy as np
import pytest

from lib_modeldoc.analysis.fingerprint import (
    KNOWN_COMPONENTS, METRIC_SCALES, ComponentPrint, KnownComponents, fingerprint_component, fingerprint_model,
    known_for, metric_number,
)
from lib_modeldoc.io.model import open_model
from toy_components import (  # noqa: F401  (toy_family is a fixture)
    VAE, checkpoint, save_ckpt, save_safetensors, standalone_vae, toy_family, toy_values,
)
from vae_samples import write_sparse_vae


def toolkit_number(total: float, b: float, k: int) -> int:
    """The toolkit's own arithmetic, loop included."""
    n = int(abs(total / b - 1) * k)
    while n >= 10000:
        n -= 5000
    return n


def independent_sum(arrays: list[np.ndarray]) -> float:
    """sum(sigmoid(t) - 0.5), t rounded to fp16, written from scratch (float64 sigmoid)."""
    total = 0.0
    for a in arrays:
        with np.errstate(over="ignore"):
            t = a.astype(np.float16).astype(np.float64)
        total += float(np.sum(1.0 / (1.0 + np.exp(-t)) - 0.5))
    return total


def torch_with_sleef():
    """torch, when its CPU kernels are the x86 ones the shipped sigmoid table was made with."""
    torch = pytest.importorskip("torch")
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("torch's float32 sigmoid table was generated with the x86 AVX2/AVX-512 kernels")
    return torch


def torch_sigmoid_is_the_tables(torch) -> bool:
    """Whether this machine's torch gives, for every fp16 input, the float32 sigmoid the table holds.

    torch's vectorised sigmoid differs by CPU kernel (an AVX-512 machine rounds some inputs
    differently from the AVX2 build the table was made on), and so do the toolkit's numbers.
    """
    from lib_modeldoc.analysis.fingerprint import _metric_table

    halves = np.arange(1 << 16, dtype=np.uint16).view("<f2").astype(np.float32)
    ours = _metric_table()
    theirs = (torch.sigmoid(torch.from_numpy(halves)) - 0.5).numpy()
    finite = ~np.isnan(halves)
    return bool(np.array_equal(ours[finite].view(np.uint32), theirs[finite].view(np.uint32)))


@pytest.mark.parametrize("component", ["unet", "vae", "clip_l", "clip_h"])
@pytest.mark.parametrize("ratio", [1.0, 0.9999, 1.00031, 0.7018, 1.5, 3.0, 0.0, -2.0])
def test_metric_number_is_the_toolkits(component, ratio):
    scale = METRIC_SCALES[component]
    total = scale.base * ratio
    assert metric_number(total, component) == toolkit_number(total, scale.base, scale.scale)


def test_metric_number_of_non_finite_is_none():
    assert metric_number(float("nan"), "vae") is None
    assert metric_number(float("inf"), "unet") is None
    assert metric_number(1.0, "clip_g") is None  # no published scale


@pytest.mark.parametrize("component, keys, selected", [
    ("vae", ["encoder.conv_in.weight", "decoder.up.0.block.0.conv1.bias", "quant_conv.weight", "post_quant_conv.bias"],
     [True, True, False, False]),
    ("clip_l", ["encoder.layers.0.mlp.fc1.weight", "encoder.layers.5.self_attn.q_proj.weight",
                "encoder.layers.11.mlp.fc2.bias", "final_layer_norm.weight"], [True, False, True, False]),
    ("clip_h", ["transformer.resblocks.0.mlp.c_fc.weight", "transformer.resblocks.23.mlp.c_fc.weight",
                "transformer.resblocks.3.attn.in_proj_weight", "token_embedding.weight"], [True, False, False, False]),
    ("unet", ["input_blocks.0.0.weight", "out.2.bias", "time_embed.0.weight", "middle_block.1.norm.weight"],
     [True, True, True, True]),
])
def test_metric_matches_independent_numpy(tmp_path, component, keys, selected):
    rng = np.random.default_rng(7)
    values = {k: (rng.standard_normal((5, 3)) * 2).astype(np.float32) for k in keys}
    values[keys[0]][0, 0] = 70000.0  # beyond fp16: rounds to inf, sigmoid 1
    path = save_safetensors(tmp_path / "tiny.safetensors", values)
    with open_model(path) as model:
        result = fingerprint_component(model, component, dict(model.items()))
    expected = independent_sum([values[k] for k, s in zip(keys, selected) if s])
    assert result.metric_total == pytest.approx(expected, abs=1e-6)  # float32 elements vs float64
    scale = METRIC_SCALES[component]
    assert result.metric == toolkit_number(expected, scale.base, scale.scale)
    assert result.keys == len(keys)


def test_metric_elements_are_torchs_float32_sigmoid():
    torch = torch_with_sleef()
    from lib_modeldoc.analysis.fingerprint import metric_sum

    rng = np.random.default_rng(11)
    values = [(rng.standard_normal(n) * scale).astype(np.float32) for n, scale in ((300_000, 0.02), (50_000, 3.0))]
    expected = 0.0
    for v in values:  # the toolkit's expression, each element in torch's float32, summed in float64
        t = torch.from_numpy(v).to(torch.float16).to(torch.float32)
        expected += float((torch.sigmoid(t) - 0.5).double().sum())
    total = sum(metric_sum(v) for v in values)
    assert total == pytest.approx(expected, rel=1e-8)  # any kernel: within an ulp or so per element
    if not torch_sigmoid_is_the_tables(torch):
        pytest.skip(f"this CPU's torch sigmoid ({torch.backends.cpu.get_cpu_capability()}) rounds differently "
                    "from the table's; exactness is checked where they agree")
    assert total == pytest.approx(expected, rel=1e-13)


def test_shipped_sigmoid_table_regenerates(tmp_path):
    torch = torch_with_sleef()
    if not torch_sigmoid_is_the_tables(torch):
        pytest.skip(f"this CPU's torch sigmoid ({torch.backends.cpu.get_cpu_capability()}) rounds differently "
                    "from the table's, which was generated with the AVX2 kernels")
    import importlib.util
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("gen_toolkit_sigmoid", root / "tools" / "gen_toolkit_sigmoid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "table.py"
    assert module.main([str(out)]) == 0
    fresh, shipped = {}, {}
    exec(out.read_text(), fresh)
    exec((root / "lib_modeldoc" / "_toolkit_sigmoid.py").read_text(), shipped)
    assert fresh["SIGMOID_ULPS"] == shipped["SIGMOID_ULPS"]


def test_known_values_are_data_with_one_unit_tolerance():
    assert [k.name for k in known_for("vae", 2982)] == ["NAI"]
    assert [k.name for k in known_for("vae", 2981)] == ["NAI"]
    assert [k.name for k in known_for("vae", 2983)] == ["NAI"]
    assert known_for("vae", 2984) == ()
    assert [k.name for k in known_for("vae", 869)] == ["SD-v2"]
    assert [k.name for k in known_for("vae", 0)] == ["SD-v1"]
    assert [k.name for k in known_for("vae", 41)] == ["WD-VAE-v2"]
    assert [k.name for k in known_for("vae", 155)] == ["WD-VAE-v1"]
    assert [k.name for k in known_for("clip_l", 1)] == ["SD-v1"]
    assert [k.name for k in known_for("clip_h", 1141)] == ["SD-v2"]
    assert [k.name for k in known_for("clip_h", 2543)] == ["WD-v1-4"]
    assert known_for("clip_l", 1141) == ()  # scales do not mix
    assert known_for("unet", 0) == ()
    assert len({(k.scale, k.metric) for k in KNOWN_COMPONENTS}) == len(KNOWN_COMPONENTS)


def test_metric_string_marks_absent_parts():
    vae = ComponentPrint("vae", "ab", 3, 2982, 1.0, known_for("vae", 2982))
    clip = ComponentPrint("clip_h", "cd", 3, 7, 1.0)
    assert KnownComponents({"vae": vae}).metric == "----/2982/----"
    assert KnownComponents({"vae": vae, "clip_h": clip}).metric == "----/2982/0007"
    assert KnownComponents({"vae": ComponentPrint("vae", "ef", 3, None)}).metric == "----/????/----"
    findings = KnownComponents({"vae": vae}).findings()
    assert [f.id for f in findings] == ["component.known"]
    assert "NAI" in findings[0].message


def test_same_component_same_print_across_forms(tmp_path, toy_family):
    values = toy_values()
    forms = {
        "checkpoint fp32 safetensors": save_safetensors(tmp_path / "a.safetensors", checkpoint(values)),
        "checkpoint fp16 safetensors": save_safetensors(tmp_path / "b.safetensors", checkpoint(values, dtype="float16")),
        "checkpoint NAI layout ckpt": save_ckpt(tmp_path / "c.ckpt", checkpoint(values, nai=True)),
        "vae only, fp16": save_safetensors(tmp_path / "d.vae.safetensors", standalone_vae(values, dtype="float16")),
        "vae only, pt": save_ckpt(tmp_path / "e.vae.pt", standalone_vae(values), wrap=False),
    }
    prints = {}
    for name, path in forms.items():
        with open_model(path) as model:
            prints[name] = fingerprint_model(model)
    vae = {name: (p.components["vae"].fingerprint, p.components["vae"].metric) for name, p in prints.items()}
    assert len(set(vae.values())) == 1, vae
    clips = {name: p.components["clip_l"] for name, p in prints.items() if "clip_l" in p.components}
    assert len(clips) == 3
    assert len({(c.fingerprint, c.metric) for c in clips.values()}) == 1
    assert prints["vae only, pt"].metric.startswith("----/") and prints["vae only, pt"].metric.endswith("/----")
    # the metric is the toolkit's over the selected tensors, whatever the form
    expected = independent_sum([v for k, v in values["vae"].items() if "encoder." in k or "decoder." in k])
    assert prints["vae only, pt"].components["vae"].metric_total == pytest.approx(expected, abs=1e-5)


def test_print_changes_with_one_tensor_and_not_below_fp16(tmp_path, toy_family):
    values = toy_values()
    base = save_safetensors(tmp_path / "base.safetensors", checkpoint(values))
    changed = toy_values()
    changed["vae"]["decoder.conv_out.bias"][1] += 0.25
    other = save_safetensors(tmp_path / "changed.safetensors", checkpoint(changed))
    nudged = toy_values()
    nudged["vae"]["decoder.conv_out.bias"][1] *= 1 + 2e-7  # far below fp16 resolution
    tiny = save_safetensors(tmp_path / "nudged.safetensors", checkpoint(nudged))
    no_ids = toy_values()
    del no_ids["clip_l"]["embeddings.position_ids"]  # as recent transformers save it
    dropped = save_safetensors(tmp_path / "no_ids.safetensors", checkpoint(no_ids))

    def prints(path):
        with open_model(path) as model:
            return {k: v.fingerprint for k, v in fingerprint_model(model).components.items()}

    a, b, c, d = prints(base), prints(other), prints(tiny), prints(dropped)
    assert a["vae"] != b["vae"]
    assert a["unet"] == b["unet"] and a["clip_l"] == b["clip_l"]
    assert a == c
    assert a == d


def test_known_vae_is_named(tmp_path):
    # 25100 values of 8.0 (the rest 0) sum to what the toolkit's NAI VAE sums to: metric 2982.
    values = np.zeros(30000, np.float32)
    values[:25100] = 8.0
    path = save_safetensors(tmp_path / "nai.safetensors", {"decoder.conv_out.weight": values})
    with open_model(path) as model:
        result = fingerprint_component(model, "vae", dict(model.items()))
    assert result.metric == 2982
    assert [k.name for k in result.known] == ["NAI"]
    assert "NAI" in KnownComponents({"vae": result}).findings()[0].message


@pytest.fixture(scope="module")
def real_vae_forms(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real_vae")
    return {
        "standalone fp16": write_sparse_vae(folder / "vae.safetensors", dtype="F16"),
        "checkpoint part fp32": write_sparse_vae(folder / "part.safetensors", dtype="F32", prefix=VAE),
    }


def test_real_shape_vae_same_print_as_part_of_a_checkpoint(real_vae_forms):
    prints = {}
    for name, path in real_vae_forms.items():
        with open_model(path) as model:
            prints[name] = fingerprint_model(model)
    standalone, part = prints["standalone fp16"], prints["checkpoint part fp32"]
    assert set(standalone.components) == {"vae"}
    assert standalone.components["vae"].keys == 248
    assert standalone.components["vae"] == part.components["vae"]
    assert standalone.metric == part.metric


def test_inspect_components_is_opt_in(real_vae_forms, capsys):
    import json

    from lib_modeldoc.cli import main
    from lib_modeldoc.checks.diagnose import inspect_model

    path = real_vae_forms["standalone fp16"]
    assert "known_components" not in inspect_model(path).to_dict()
    report = inspect_model(path, identify_components=True).to_dict()
    assert report["known_components"]["components"]["vae"]["keys"] == 248
    assert main(["inspect", path, "--components", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["known_components"] == report["known_components"]
    assert main(["inspect", path, "--components"]) == 0
    assert "Known components" in capsys.readouterr().out
