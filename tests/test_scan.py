"""``inspect --scan`` / ``scan_model``: planted NaN, Inf, zeros and huge values, found and named."""

from __future__ import annotations

import json

import pytest
import torch

from lib_modeldoc.analysis import scan as scan_module
from lib_modeldoc.cli import main
from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.arch.layout import Layout
from lib_modeldoc.io.model import open_model
from lib_modeldoc.analysis.scan import scan_model

VALUE_IDS = {"values.nonfinite", "values.zero", "values.magnitude"}
FLOAT_TYPES = {
    "F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}


def planted(dtype: torch.dtype, n: int = 5000, *, nan_at: int | None = None, inf_at: int | None = None,
            neg_inf_at: int | None = None, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = (torch.randn(n, generator=g) * 0.05).to(dtype).float()
    for index, value in ((nan_at, float("nan")), (inf_at, float("inf")), (neg_inf_at, float("-inf"))):
        if index is not None:
            t[index] = value
    return t.to(dtype)


def ids(report) -> set[str]:
    return {f.id for f in report.findings}


def finding(report, finding_id: str):
    return next(f for f in report.findings if f.id == finding_id)


def test_nan_and_inf_in_fp16_and_bf16_are_found_and_named(write_safetensors):
    path = write_safetensors("bad.safetensors", {
        "net.a.weight": planted(torch.float16, nan_at=10, inf_at=4000),
        "net.b.weight": planted(torch.bfloat16, nan_at=4999, inf_at=0),
        "net.c.weight": planted(torch.float16),
    })
    report = inspect_model(path, scan=True)
    bad = finding(report, "values.nonfinite")
    assert bad.severity.value == "error"
    assert set(bad.keys) == {"net.a.weight", "net.b.weight"}
    assert "net.a.weight (1 NaN, 1 +Inf)" in bad.message and "net.b.weight (1 NaN, 1 +Inf)" in bad.message
    assert not ids(report) & {"values.zero", "values.magnitude"}
    section = report.to_dict()["scan"]
    part = section["components"]["unknown"]
    assert part["nonfinite"] == 2 and sorted(part["nonfinite_keys"]) == ["net.a.weight", "net.b.weight"]
    assert part["tensors"] == 3 and section["tensors"] == 3


def test_all_zero_tensor_is_a_warning_but_markers_and_buffers_are_not(write_safetensors):
    path = write_safetensors("zero.safetensors", {
        "net.zero.weight": torch.zeros(300, 7, dtype=torch.float16),
        "net.negzero.bias": torch.full((64,), -0.0),
        "net.fine.weight": planted(torch.float16),
        "v_pred": torch.zeros(0),  # the prediction marker: an empty tensor
        "logvar": torch.zeros(1000),  # a scheduler buffer, zeros by design
        "position_ids": torch.zeros(1, 77, dtype=torch.int64),  # ints are not scanned
    })
    report = inspect_model(path, scan=True)
    zero = finding(report, "values.zero")
    assert zero.severity.value == "warning"
    assert set(zero.keys) == {"net.zero.weight", "net.negzero.bias"}
    assert not ids(report) & {"values.nonfinite", "values.magnitude"}
    assert report.to_dict()["scan"]["skipped"] == 1


def test_huge_value_is_a_magnitude_warning(write_safetensors):
    weights = planted(torch.float32, n=100_000)
    weights[77_777] = -3.5e4
    path = write_safetensors("huge.safetensors", {"net.w": weights, "net.ok": planted(torch.float16),
                                                  "sqrt_recipm1_alphas_cumprod": torch.full((10,), 2e4)})
    report = inspect_model(path, scan=True)
    huge = finding(report, "values.magnitude")
    assert huge.keys == ("net.w",)  # the buffer is not a weight
    assert "3.5e+04" in huge.message
    assert report.to_dict()["scan"]["components"]["unknown"]["max_abs"] == 35000.0


def test_clean_file_has_no_value_findings(write_safetensors):
    path = write_safetensors("clean.safetensors", {f"net.{i}.weight": planted(dt, seed=i) for i, dt in enumerate(FLOAT_TYPES.values())})
    report = inspect_model(path, scan=True)
    assert not ids(report) & VALUE_IDS
    assert report.to_dict()["scan"]["tensors"] == len(FLOAT_TYPES)
    assert "scan" not in inspect_model(path).to_dict()  # only with scan=True


def test_ckpt_is_scanned_too(write_ckpt):
    path = write_ckpt("bad.ckpt", {"state_dict": {
        "net.a.weight": planted(torch.float16, nan_at=3),
        "net.b.weight": torch.zeros(40, 40),
        "net.c.weight": planted(torch.float32, n=2000),
    }})
    report = inspect_model(path, scan=True)
    assert finding(report, "values.nonfinite").keys == ("net.a.weight",)
    assert finding(report, "values.zero").keys == ("net.b.weight",)


def test_non_contiguous_ckpt_view_is_scanned(write_ckpt):
    base = planted(torch.float32, n=64 * 64).reshape(64, 64)
    base[5, 9] = float("nan")  # only in the transposed view's storage, at a strided place
    path = write_ckpt("view.ckpt", {"net.t": base.t(), "net.clean": planted(torch.float16)})
    report = inspect_model(path, scan=True)
    assert finding(report, "values.nonfinite").keys == ("net.t",)


@pytest.mark.parametrize("code", list(FLOAT_TYPES))
def test_every_float_dtype_counts_specials_and_finite_maximum(write_safetensors, monkeypatch, code):
    monkeypatch.setattr(scan_module, "CHUNK_BYTES", 1000)  # many chunks per tensor
    dtype = FLOAT_TYPES[code]
    has_inf = code != "F8_E4M3"
    t = planted(dtype, n=4000, nan_at=3999, inf_at=1500 if has_inf else None, neg_inf_at=2500 if has_inf else None)
    clean = planted(dtype, n=4000, seed=9)
    path = write_safetensors("t.safetensors", {"net.t": t, "net.clean": clean})
    with open_model(path) as model:
        result = scan_model(model, Layout({"net.t": "unet", "net.clean": "vae"}))
    by_key = {v.key: v for v in result.tensors}
    bad = by_key["net.t"]
    assert (bad.nan, bad.pos_inf, bad.neg_inf) == (1, int(has_inf), int(has_inf))
    as_float = t.float()
    assert bad.max_abs == as_float[torch.isfinite(as_float)].abs().max().item()
    assert by_key["net.clean"].max_abs == clean.float().abs().max().item()
    assert by_key["net.clean"].nonfinite == 0
    section = result.to_dict()["components"]
    assert section["unet"]["nonfinite_keys"] == ["net.t"] and section["vae"]["nonfinite"] == 0


def test_nonfinite_only_in_ema_or_junk_is_a_warning(write_safetensors):
    path = write_safetensors("m.safetensors", {"a": planted(torch.float16, nan_at=1), "b": planted(torch.float16)})
    with open_model(path) as model:
        only_ema = scan_model(model, Layout({"a": "ema_unet", "b": "unet"})).findings()
        in_unet = scan_model(model, Layout({"a": "unet", "b": "ema_unet"})).findings()
    assert [(f.id, f.severity.value) for f in only_ema] == [("values.nonfinite", "warning")]
    assert [(f.id, f.severity.value) for f in in_unet] == [("values.nonfinite", "error")]


def test_results_do_not_depend_on_workers_or_chunking(write_safetensors, monkeypatch):
    tensors = {f"net.{i}": planted(torch.bfloat16, n=3000 + i, nan_at=i * 7 if i % 3 == 0 else None, seed=i)
               for i in range(12)}
    tensors["net.big"] = planted(torch.float16, n=200_000, inf_at=199_999)
    path = write_safetensors("many.safetensors", tensors)
    layout = Layout({k: "unet" for k in tensors})
    with open_model(path) as model:
        one = scan_model(model, layout, workers=1)
        monkeypatch.setattr(scan_module, "CHUNK_BYTES", 4096)
        calls: list[tuple[int, int]] = []
        many = scan_model(model, layout, workers=3, progress=lambda d, t, m: calls.append((d, t)))
    assert [(v.key, v.nan, v.pos_inf, v.max_abs) for v in one.tensors] == [
        (v.key, v.nan, v.pos_inf, v.max_abs) for v in many.tensors]
    assert {v.key for v in one.nonfinite()} == {"net.0", "net.3", "net.6", "net.9", "net.big"}
    assert calls[-1][0] == calls[-1][1] == many.bytes_read == sum(t.numel() * 2 for t in tensors.values())


def test_cli_scan_json(write_safetensors, capsys):
    path = write_safetensors("bad.safetensors", {"net.a": planted(torch.float16, nan_at=1), "net.b": torch.zeros(8)})
    assert main(["inspect", path, "--scan", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert {"values.nonfinite", "values.zero"} <= {f["id"] for f in obj["findings"]}
    part = obj["scan"]["components"]["unknown"]
    assert part["nonfinite_keys"] == ["net.a"] and part["zero_keys"] == ["net.b"]
    assert main(["inspect", path, "--json"]) == 0
    assert "scan" not in json.loads(capsys.readouterr().out)


def test_cli_scan_text_names_the_tensor(write_safetensors, capsys):
    path = write_safetensors("bad.safetensors", {"net.a": planted(torch.bfloat16, inf_at=2)})
    assert main(["inspect", path, "--scan"]) == 0
    text = capsys.readouterr().out
    assert "net.a (1 +Inf)" in text and "Values scanned: 1 float tensors" in text
