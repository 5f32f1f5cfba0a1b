"""--precision, every value: floats cast with saturation, integers never, float64 always handled,
scheduler buffers and prediction markers keep their precision.

A small unidentified file converted with --keep-junk (the casts need no identification).
"""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from convert_support import read_any

TARGET = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
          "fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}
FINITE = {torch.float32: 3.4028234663852886e38, torch.float16: 65504.0, torch.bfloat16: 3.3895313892515355e38,
          torch.float8_e4m3fn: 448.0, torch.float8_e5m2: 57344.0, torch.float64: math.inf}
FLOATS = ("w32", "w16", "wbf", "w64")


def source_tensors() -> dict[str, torch.Tensor]:
    values = [0.0, -0.0, 1.0, -2.5, 0.1, 1e-3, 300.0, 447.0, 449.0, 500.0, -1000.0, 60000.0, 70000.0, -1e6, 3.0e38]
    return {
        "w32": torch.tensor(values, dtype=torch.float32),
        "w16": torch.tensor([0.0, 0.1, -2.5, 449.0, 500.0, 60000.0, 65504.0, -65504.0], dtype=torch.float16),
        "wbf": torch.tensor([0.1, -2.5, 449.0, 1e5, -1e6, 3.0e38], dtype=torch.bfloat16),
        "w64": torch.tensor(values, dtype=torch.float64),
        "i64": torch.tensor([-(2**40), 5, 2**62], dtype=torch.int64),
        "i32": torch.tensor([-7, 70000], dtype=torch.int32),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "flags": torch.tensor([True, False]),
        "alphas_cumprod": torch.linspace(0.9991, 0.0047, 1000, dtype=torch.float64),
        "sqrt_alphas_cumprod": torch.linspace(0.99, 0.06, 1000, dtype=torch.float32),
        "v_pred": torch.tensor([]),
        "ztsnr": torch.tensor([]),
    }


def expected_cast(value: torch.Tensor, target: torch.dtype) -> torch.Tensor:
    """torch's own cast, after saturating to the target's finite range in an exact wide type."""
    limit = FINITE[target]
    wide = value if value.dtype == torch.float64 else value.float()  # both exact
    return wide.clamp(-limit, limit).to(target)


def bits(t: torch.Tensor) -> bytes:
    return t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b""


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Every precision, in both output formats, converted once by the CLI."""
    from lib_modeldoc.cli import main

    folder = tmp_path_factory.mktemp("precision")
    src = folder / "mixed.safetensors"
    # Float weights are 2-D, as layer weights are: 1-D tensors (biases, norms) stay 16-bit in fp8.
    save_file({k: v.reshape(1, -1) if k in FLOATS else v for k, v in source_tensors().items()}, str(src))
    done = {}
    for precision in (*TARGET, "keep"):
        for fmt in ("safetensors", "ckpt"):
            out = folder / f"{precision}.{fmt}"
            assert main(["convert", str(src), "-o", str(out), "--precision", precision, "--keep-junk"]) == 0
            done[precision, fmt] = {k: v.flatten() if k in FLOATS else v for k, v in read_any(out).items()}
    return done


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
@pytest.mark.parametrize("precision", list(TARGET))
def test_floats_are_cast_with_saturation(outputs, precision, fmt):
    back, src, target = outputs[precision, fmt], source_tensors(), TARGET[precision]
    for key in FLOATS:
        assert back[key].dtype == target, key
        want = expected_cast(src[key], target)
        assert bits(back[key]) == bits(want), (key, back[key], want)
        assert torch.isfinite(back[key].float()).all(), key  # a cast never creates inf or NaN


def test_fp8_e4m3fn_clamps_to_448(outputs):
    for fmt in ("safetensors", "ckpt"):
        w32 = outputs["fp8_e4m3fn", fmt]["w32"].float()
        src = source_tensors()["w32"]
        assert torch.equal(w32[src > 448], torch.full_like(w32[src > 448], 448.0))
        assert torch.equal(w32[src < -448], torch.full_like(w32[src < -448], -448.0))
        assert w32[src == 447.0].item() == 448.0  # nearest e4m3fn value, not a clamp
        assert w32[src == 1.0].item() == 1.0 and w32[src == -2.5].item() == -2.5


def test_fp8_e5m2_and_fp16_saturate_instead_of_overflowing(outputs):
    src = source_tensors()["w32"]
    e5m2 = outputs["fp8_e5m2", "safetensors"]["w32"].float()
    assert e5m2[src == 70000.0].item() == 57344.0 and e5m2[src == -1e6].item() == -57344.0
    half = outputs["fp16", "safetensors"]
    assert half["w32"][src == 70000.0].item() == 65504.0
    assert half["w64"][src == 3.0e38].item() == 65504.0
    # bf16 cannot hold 65504 (it rounds to 65536): saturating in bf16 would still give inf
    assert half["wbf"][3:].tolist() == [65504.0, -65504.0, 65504.0]


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
@pytest.mark.parametrize("precision", [*TARGET, "keep"])
def test_integers_are_never_cast(outputs, precision, fmt):
    back, src = outputs[precision, fmt], source_tensors()
    for key in ("i64", "i32", "i16", "u8", "flags"):
        assert back[key].dtype == src[key].dtype, key
        assert torch.equal(back[key], src[key]), key


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
def test_keep_narrows_only_float64_to_fp32(outputs, fmt):
    back, src = outputs["keep", fmt], source_tensors()
    for key in ("w32", "w16", "wbf"):
        assert back[key].dtype == src[key].dtype and torch.equal(back[key], src[key]), key
    assert back["w64"].dtype == torch.float32
    assert torch.equal(back["w64"], src["w64"].float())


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
@pytest.mark.parametrize("precision", [*TARGET, "keep"])
def test_buffers_and_markers_keep_their_precision(outputs, precision, fmt):
    back, src = outputs[precision, fmt], source_tensors()
    assert back["alphas_cumprod"].dtype == torch.float32  # float64 -> fp32, never fp16 or fp8
    assert torch.equal(back["alphas_cumprod"], src["alphas_cumprod"].float())
    assert back["sqrt_alphas_cumprod"].dtype == torch.float32
    assert torch.equal(back["sqrt_alphas_cumprod"], src["sqrt_alphas_cumprod"])
    for marker in ("v_pred", "ztsnr"):
        assert back[marker].dtype == torch.float32 and back[marker].shape == (0,), marker


def test_nan_stays_nan(tmp_path, cli):
    src = tmp_path / "nan.safetensors"
    save_file({"w": torch.tensor([[float("nan"), 1.0], [float("inf"), -float("inf")]])}, str(src))
    for precision in ("fp16", "fp8_e4m3fn", "fp8_e5m2"):
        out = tmp_path / f"{precision}.safetensors"
        assert cli("convert", src, "-o", out, "--keep-junk", "--precision", precision)[0] == 0
        w = read_any(out)["w"].float().flatten()
        limit = FINITE[TARGET[precision]]
        assert math.isnan(w[0].item()) and w[1:].tolist() == [1.0, limit, -limit], precision


@pytest.mark.parametrize("src", [torch.float32, torch.float64, torch.bfloat16])
def test_a_nan_does_not_hide_an_overflow_in_the_same_chunk(src):
    """The overflow check takes the chunk's min and max; a NaN makes both NaN and must not let
    70000 through as inf."""
    from lib_modeldoc.operations import cast

    value = torch.tensor([float("nan"), 70000.0, -1e6, 1.0]).to(src)
    code = {torch.float32: "F32", torch.float64: "F64", torch.bfloat16: "BF16"}[src]
    out = torch.frombuffer(bytearray(cast.cast_bytes(bits(value), code, "F16")), dtype=torch.float16)
    assert math.isnan(out[0].item()) and out[1:].tolist() == [65504.0, -65504.0, 1.0]


def test_float64_is_narrowed_even_when_copied(tmp_path, cli):
    src = tmp_path / "f64.safetensors"
    save_file({"w": torch.tensor([0.1, 1e300, -1e300], dtype=torch.float64)}, str(src))
    out = tmp_path / "out.safetensors"
    assert cli("convert", src, "-o", out, "--keep-junk", "--other", "copy")[0] == 0
    w = read_any(out)["w"]
    assert w.dtype == torch.float32
    big = FINITE[torch.float32]
    assert w.tolist() == [torch.tensor(0.1, dtype=torch.float64).float().item(), big, -big]


@pytest.mark.parametrize("src", ["F16", "BF16", "F32", "F64"])
@pytest.mark.parametrize("dst", ["F16", "BF16", "F32"])
def test_numpy_fallback_casts_like_torch(monkeypatch, src, dst):
    """Without torch, numpy does the fp16/bf16/fp32 casts, bit for bit the same."""
    from lib_modeldoc.operations import cast

    torch_type = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}
    key = {"F16": "w16", "BF16": "wbf", "F32": "w32", "F64": "w64"}[src]
    value = source_tensors()[key]
    data = bits(value)
    with_torch = cast.cast_bytes(data, src, dst)
    monkeypatch.setattr(cast, "torch_available", lambda: False)
    without = cast.cast_bytes(data, src, dst)
    assert with_torch == without == bits(expected_cast(value, torch_type[dst]) if src != dst else value)


def test_numpy_fallback_asks_for_torch_for_fp8(monkeypatch):
    from lib_modeldoc.operations import cast
    from lib_modeldoc.errors import PlanError

    monkeypatch.setattr(cast, "torch_available", lambda: False)
    with pytest.raises(PlanError, match=r"^casting to fp8 needs torch \(pip install torch\)$"):
        cast.cast_bytes(bits(torch.ones(2)), "F32", "F8_E4M3")


def test_fp8_sources_widen_exactly_and_narrow_with_saturation(tmp_path, cli):
    e5m2 = torch.tensor([[0.25, -3.0, 448.0], [512.0, 57344.0, -57344.0]]).to(torch.float8_e5m2)
    e4m3 = torch.tensor([[0.25, -3.0], [448.0, -448.0]]).to(torch.float8_e4m3fn)
    src = tmp_path / "fp8.safetensors"
    save_file({"e5m2": e5m2, "e4m3": e4m3}, str(src))
    for precision in ("fp32", "fp16", "bf16"):
        out = tmp_path / f"{precision}.safetensors"
        assert cli("convert", src, "-o", out, "--keep-junk", "--precision", precision)[0] == 0
        back = read_any(out)
        assert back["e4m3"].dtype == TARGET[precision]
        assert torch.equal(back["e4m3"], e4m3.float().to(TARGET[precision])), precision
        assert torch.equal(back["e5m2"], e5m2.float().to(TARGET[precision])), precision
    out = tmp_path / "e4m3.safetensors"
    assert cli("convert", src, "-o", out, "--keep-junk", "--precision", "fp8_e4m3fn")[0] == 0
    assert read_any(out)["e5m2"].float().flatten().tolist() == [0.25, -3.0, 448.0, 448.0, 448.0, -448.0]
