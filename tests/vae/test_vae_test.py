"""The VAE test on real (tiny) VAE files: overflow named at its layer, broken outputs, relative verdicts, CLI."""

from __future__ import annotations

import json
import math
import os
import zlib

import numpy as np
import pytest

from lib_modeldoc.analysis.vae_image import png_bytes, vae_test_image
from lib_modeldoc.analysis.vae_test import FP16_MAX, Fp16Mode, Fp16Run, _fp16_supported, run_vae_test
from lib_modeldoc.errors import Cancelled
from vae_support import SIZE, TINY16, identity_state, tiny_state, write_vae

OVERFLOW_LAYER = "decoder.up.1.block.0.conv1"
FP16_ON_CPU = _fp16_supported("cpu")


def scaled(state, layer, factor):
    out = dict(state)
    out[layer + ".weight"] = state[layer + ".weight"] * factor
    out[layer + ".bias"] = state[layer + ".bias"] * factor
    return out


def ids(result):
    return [f.id for f in result.findings()]


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    return write_vae(tmp_path_factory.mktemp("vae") / "healthy.safetensors", tiny_state())


def test_test_image_is_deterministic_and_covers_the_range():
    a, b = vae_test_image(64), vae_test_image(64)
    assert a.shape == (64, 64, 3) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert a.min() == 0.0 and a.max() == 1.0
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 500  # patches, ramps, edges and texture, not a few flat colours
    with pytest.raises(ValueError):
        vae_test_image(15)


def test_unscaled_vae_passes(healthy):
    result = run_vae_test(healthy, size=SIZE)
    assert ids(result) == []
    assert result.first_overflow_layer is None and result.first_bf16_overflow_layer is None
    assert 0 < result.peak_abs < FP16_MAX
    assert result.fp16_run is Fp16Run.CLEAN and result.fp16_mode is Fp16Mode.EMULATED  # the CPU's default
    assert result.psnr_db is not None and math.isfinite(result.psnr_db)
    assert result.decoded.shape == result.original.shape == (SIZE, SIZE, 3)
    # every conv, norm and residual sum has a peak, in execution order: encoder first, decoder's conv_out last
    assert list(result.layers)[0] == "encoder.conv_in"
    assert list(result.layers)[-1] == "decoder.conv_out"
    assert "decoder.mid.attn_1.scores" in result.layers


def test_a_layer_scaled_to_overflow_is_named(tmp_path):
    path = write_vae(tmp_path / "hot.safetensors", scaled(tiny_state(), OVERFLOW_LAYER, 1e5))
    result = run_vae_test(path, size=SIZE)
    assert result.first_overflow_layer == OVERFLOW_LAYER
    assert result.layers[OVERFLOW_LAYER] > FP16_MAX
    findings = {f.id: f for f in result.findings()}
    assert set(findings) == {"vae.fp16_overflow"}
    assert findings["vae.fp16_overflow"].keys == (OVERFLOW_LAYER,)
    assert OVERFLOW_LAYER in findings["vae.fp16_overflow"].message
    assert findings["vae.fp16_overflow"].repair == "fp32_vae"  # the CLI words it --no-half-vae, the tab a setting
    from lib_modeldoc.commands.wording import repair_text

    assert "--no-half-vae" in repair_text(findings["vae.fp16_overflow"].repair)
    # the fp16-rounded pass (the CPU default) turns non-finite at the same layer
    assert result.fp16_mode is Fp16Mode.EMULATED and result.fp16_run is Fp16Run.NONFINITE
    assert result.fp16_first_nonfinite_layer == OVERFLOW_LAYER
    assert "confirmed: an fp16-rounded run" in findings["vae.fp16_overflow"].message


@pytest.mark.parametrize("factor, nonfinite", [(1e5, True), (1.0, False)])
def test_a_native_fp16_run_confirms(tmp_path, factor, nonfinite):
    path = write_vae(tmp_path / "hot.safetensors", scaled(tiny_state(), OVERFLOW_LAYER, factor))
    result = run_vae_test(path, size=16, fp16=Fp16Mode.NATIVE)
    if not FP16_ON_CPU:
        assert result.fp16_run is Fp16Run.UNSUPPORTED
        return
    assert result.fp16_mode is Fp16Mode.NATIVE
    assert result.fp16_run is (Fp16Run.NONFINITE if nonfinite else Fp16Run.CLEAN)
    assert result.fp16_first_nonfinite_layer == (OVERFLOW_LAYER if nonfinite else None)
    if nonfinite:
        assert "confirmed: an fp16 run gives NaN/Inf" in result.findings()[0].message


def test_the_first_of_two_overflowing_layers_is_named(tmp_path):
    state = scaled(scaled(tiny_state(), OVERFLOW_LAYER, 1e5), "encoder.down.1.block.0.conv2", 1e5)
    result = run_vae_test(write_vae(tmp_path / "two.safetensors", state), size=SIZE, fp16=Fp16Mode.NONE)
    assert result.first_overflow_layer == "encoder.down.1.block.0.conv2"
    assert result.fp16_run is Fp16Run.SKIPPED


def test_overflow_past_bf16_is_flagged_too(tmp_path):
    path = write_vae(tmp_path / "inf.safetensors", scaled(tiny_state(), OVERFLOW_LAYER, 1e38))
    result = run_vae_test(path, size=SIZE, fp16=Fp16Mode.NONE)
    assert result.first_bf16_overflow_layer == OVERFLOW_LAYER
    assert {"vae.fp16_overflow", "vae.bf16_overflow", "vae.broken_output"} <= set(ids(result))


@pytest.mark.parametrize("damage, words", [
    ({"decoder.mid.block_1.conv1.bias": np.float32("nan")}, "NaN"),
    ({"decoder.conv_out.weight": 0.0}, "constant"),
    ({"decoder.conv_out.weight": 200.0}, "saturated"),
])
def test_broken_outputs_are_flagged(tmp_path, damage, words):
    state = tiny_state()
    for key, factor in damage.items():
        state[key] = (state[key] * factor).astype(np.float32)
    result = run_vae_test(write_vae(tmp_path / "broken.safetensors", state), size=SIZE, fp16=Fp16Mode.NONE)
    broken = [f for f in result.findings() if f.id == "vae.broken_output"]
    assert len(broken) == 1 and words in broken[0].message
    assert broken[0].severity.value == "error"


def test_reconstruction_figures_of_a_passing_and_a_washed_out_vae(tmp_path):
    image = vae_test_image(SIZE)
    good = run_vae_test(write_vae(tmp_path / "good.safetensors", identity_state(image)), size=SIZE, fp16=Fp16Mode.NONE)
    grey = run_vae_test(write_vae(tmp_path / "grey.safetensors", identity_state(image, 0.5)), size=SIZE, fp16=Fp16Mode.NONE)
    assert good.psnr_db > 20 and all(0.95 < c < 1.05 for c in good.contrast)
    assert all(abs(s) < 0.01 for s in good.colour_shift)
    assert all(0.45 < c < 0.55 for c in grey.contrast)
    assert grey.psnr_db < good.psnr_db - 6
    assert ids(good) == [] and ids(grey) == []  # no folder given: a low PSNR alone is not flagged


def test_folder_comparison_flags_the_washed_out_vae_and_lists_what_passes(tmp_path):
    image = vae_test_image(SIZE)
    folder = tmp_path / "VAE"
    (folder / "sub").mkdir(parents=True)
    write_vae(folder / "good.safetensors", identity_state(image))
    write_vae(folder / "sub" / "hot.safetensors", scaled(identity_state(image), "decoder.conv_in", 1e6))
    (folder / "notes.bin").write_text("not a model")  # skipped, not fatal
    write_vae(folder / "other16.safetensors", tiny_state(TINY16))  # another structure: not compared
    subject = write_vae(folder / "grey.safetensors", identity_state(image, 0.5))  # tested file: skipped in the folder
    result = run_vae_test(subject, size=SIZE, vae_dir=str(folder), fp16=Fp16Mode.NONE)
    by_name = {os.path.basename(a.path): a for a in result.alternatives}
    assert set(by_name) == {"good.safetensors", "hot.safetensors"}
    assert by_name["good.safetensors"].passes and by_name["good.safetensors"].latent_match > 0.99
    assert not by_name["hot.safetensors"].passes and not by_name["hot.safetensors"].fp16_safe
    finding = next(f for f in result.findings() if f.id == "vae.reconstruction")
    assert "good.safetensors" in finding.message and "dB worse" in finding.message
    assert "hot.safetensors" not in finding.message
    assert result.below_best_db == pytest.approx(by_name["good.safetensors"].psnr_db - result.psnr_db)
    assert result.to_dict()["passing"] == [str(folder / "good.safetensors")]


def test_the_best_vae_in_the_folder_is_not_flagged(tmp_path):
    image = vae_test_image(SIZE)
    folder = tmp_path / "VAE"
    folder.mkdir()
    write_vae(folder / "grey.safetensors", identity_state(image, 0.5))
    good = write_vae(folder / "good.safetensors", identity_state(image))
    result = run_vae_test(good, size=SIZE, vae_dir=str(folder), fp16=Fp16Mode.NONE)
    assert "vae.reconstruction" not in ids(result)


def test_progress_counts_up_and_cancel_stops(healthy):
    seen = []
    run_vae_test(healthy, size=SIZE, fp16=Fp16Mode.NONE, progress=lambda d, t, m: seen.append((d, t, m)))
    assert seen[-1][0] == seen[-1][1] and [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
    assert any("decoder.conv_out" in m for _, _, m in seen)
    calls = []

    def stop_after_20(done, total, message):
        calls.append(1)
        if len(calls) > 20:
            raise Cancelled("stop")

    with pytest.raises(Cancelled, match="^VAE test: interrupted; nothing was written$"):
        run_vae_test(healthy, size=SIZE, progress=stop_after_20)
    assert len(calls) == 21  # stopped at once


def test_vae_inside_a_checkpoint_with_other_tensors(tmp_path):
    extra = {"model.diffusion_model.input_blocks.0.0.weight": np.zeros((4, 4), np.float16)}
    path = write_vae(tmp_path / "ckpt.safetensors", tiny_state(), prefix="first_stage_model.", extra=extra)
    result = run_vae_test(path, size=SIZE, fp16=Fp16Mode.NONE)
    assert result.layout == "ldm" and ids(result) == []


def test_cli_json_field_and_findings(tmp_path, cli):
    path = write_vae(tmp_path / "hot.safetensors", scaled(tiny_state(), OVERFLOW_LAYER, 1e5))
    png = tmp_path / "side.png"
    rc, out, err = cli("inspect", path, "--json", "--vae-test", "--vae-size", SIZE, "--vae-image", png)
    assert rc == 0, err
    data = json.loads(out)
    test = data["vae_test"]
    assert test["first_overflow_layer"] == OVERFLOW_LAYER
    assert test["peak_abs"] > FP16_MAX and isinstance(test["psnr_db"], float) and test["seconds"] > 0
    assert "vae.fp16_overflow" in [f["id"] for f in data["findings"]]
    blob = png.read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n" and blob[16:24] == (2 * SIZE + 8).to_bytes(4, "big") + SIZE.to_bytes(4, "big")


def test_cli_text_shows_the_verdict(tmp_path, cli, healthy):
    rc, out, _ = cli("inspect", healthy, "--vae-test", "--vae-size", SIZE, "--no-fp16-run")
    assert rc == 0
    assert "VAE test (SD VAE, 32x32" in out and "fp16: safe" in out and "PSNR" in out


@pytest.mark.parametrize("argv, words", [
    (["--vae-dir", "."], "need --vae-test"),
    (["--vae-test", "--vae-size", "30"], "multiple of 8"),
    (["--vae-test", "--no-fp16-run", "--fp16-run", "native"], "contradicts"),
])
def test_cli_usage_errors(healthy, cli, argv, words):
    rc, out, err = cli("inspect", healthy, *argv)
    assert rc == 2 and out == ""
    assert err.startswith("modeldoc: error:") and words in err and err.count("\n") == 1


def test_cli_file_without_vae_is_one_line(tmp_path, cli):
    from safetensors.numpy import save_file

    path = tmp_path / "lora.safetensors"
    save_file({"lora_unet_x.lora_up.weight": np.zeros((4, 4), np.float16)}, str(path))
    rc, _, err = cli("inspect", path, "--vae-test")
    assert rc == 2 and err.startswith("modeldoc: error:") and "no VAE" in err and err.count("\n") == 1


def test_png_writer_round_trips_pixels():
    rgb = (np.arange(2 * 3 * 3, dtype=np.uint8) * 13).reshape(2, 3, 3)
    blob = png_bytes(rgb)
    idat = blob[blob.index(b"IDAT") + 4:blob.index(b"IEND") - 8]
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(2, 1 + 9)
    assert (rows[:, 0] == 0).all() and np.array_equal(rows[:, 1:].reshape(2, 3, 3), rgb)


def test_sixteen_channel_ae_inside_a_checkpoint_is_found(tmp_path):
    """Real SD3/Flux ae shapes (sparse file): the VAE table calls it incomplete, the test still finds it."""
    from lib_modeldoc import open_model
    from lib_modeldoc.samples import Spec, family_specs, write_safetensors_sample
    from lib_modeldoc.analysis.vae_model import config_from_shapes
    from lib_modeldoc.analysis.vae_test import locate_vae

    z16 = {"encoder.conv_out.weight": (32, 512, 3, 3), "encoder.conv_out.bias": (32,),
           "decoder.conv_in.weight": (512, 16, 3, 3)}
    specs = [Spec("first_stage_model." + s.key, s.dtype, z16.get(s.key, s.shape))
             for s in family_specs("VAE") if "quant_conv" not in s.key]
    path = write_safetensors_sample(str(tmp_path / "sd3.safetensors"), specs, {})
    with open_model(path) as model:
        located = locate_vae(model)
    cfg = config_from_shapes(located.shapes)
    assert located.prefix == "first_stage_model." and len(located.tensors) == len(specs)
    assert (cfg.family, cfg.widths, cfg.blocks, cfg.quant) == ("SD3/Flux", (128, 256, 512, 512), 2, False)
