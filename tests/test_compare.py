"""compare: per component and per block, keys matched without prefixes or the NAI layout."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from lib_modeldoc.cli import main
from lib_modeldoc.analysis.compare import block_of, compare_models
from toy_components import (  # noqa: F401  (toy_family is a fixture)
    VAE, checkpoint, save_ckpt, save_safetensors, standalone_vae, toy_family, toy_values,
)


@pytest.fixture
def two_models(tmp_path, toy_family):
    """A and B: the same UNet and CLIP, VAEs differing in one decoder tensor."""
    a = toy_values()
    b = toy_values()
    b["vae"]["decoder.conv_out.weight"] = b["vae"]["decoder.conv_out.weight"] * 0.9 + 0.05
    return (save_safetensors(tmp_path / "a.safetensors", checkpoint(a)),
            save_safetensors(tmp_path / "b.safetensors", checkpoint(b)))


def test_one_component_differs(two_models):
    result = compare_models(*two_models)
    unet, vae, clip = (result.components[n] for n in ("unet", "vae", "clip_l"))
    assert unet.identical and clip.identical
    assert unet.stats.cosine == pytest.approx(1.0) and clip.stats.relative_difference == 0
    assert not vae.identical
    assert 0.5 < vae.stats.cosine < 1.0
    assert vae.stats.keys_compared == 6 and vae.stats.keys_different == 1
    assert vae.stats.relative_difference > 0
    blocks = dict(vae.blocks)
    assert list(blocks) == ["encoder", "quant_conv", "post_quant_conv", "decoder"]
    assert blocks["encoder"].identical and not blocks["decoder"].identical
    assert blocks["decoder"].keys_different == 1 and blocks["decoder"].keys_compared == 2
    assert not result.identical
    assert result.missing_in_a == () and result.missing_in_b == ()


def test_cosine_and_relative_difference_are_over_the_whole_component(two_models):
    a_vals, b_vals = toy_values(), toy_values()
    b_vals["vae"]["decoder.conv_out.weight"] = b_vals["vae"]["decoder.conv_out.weight"] * 0.9 + 0.05
    x = np.concatenate([v.ravel() for v in a_vals["vae"].values()]).astype(np.float64)
    y = np.concatenate([v.ravel() for v in b_vals["vae"].values()]).astype(np.float64)
    vae = compare_models(*two_models).components["vae"]
    assert vae.stats.cosine == pytest.approx(x @ y / np.linalg.norm(x) / np.linalg.norm(y), rel=1e-12)
    assert vae.stats.relative_difference == pytest.approx(np.linalg.norm(x - y) / np.linalg.norm(x), rel=1e-9)


def test_json_shape_of_the_contract(two_models, capsys):
    assert main(["compare", *two_models, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"components", "missing_in_a", "missing_in_b"}
    for fields in out["components"].values():
        assert {"identical", "cosine", "keys_compared", "keys_different", "blocks"} <= set(fields)
        assert isinstance(fields["cosine"], float)
    assert out["components"]["vae"]["identical"] is False
    assert out["components"]["unet"]["identical"] is True
    assert out["components"]["vae"]["blocks"]["decoder"]["keys_different"] == 1


def test_text_names_the_differing_blocks(two_models, capsys):
    assert main(["compare", *two_models]) == 0
    text = capsys.readouterr().out
    assert "Verdict: different (1 of 3" in text
    assert "vae, blocks that differ (1 of 4)" in text
    assert "decoder" in text


def test_checkpoint_against_standalone_component_and_nai_layout(tmp_path, toy_family):
    values = toy_values()
    nai = save_ckpt(tmp_path / "nai.ckpt", checkpoint(values, nai=True))
    vae = save_safetensors(tmp_path / "x.vae.safetensors", standalone_vae(values))
    result = compare_models(nai, vae)
    assert list(result.components) == ["vae"]
    assert result.components["vae"].identical
    assert set(result.only_in_a) == {"unet", "clip_l"}
    assert "cond_stage_model.transformer.encoder.layers.0.mlp.fc1.weight" in result.missing_in_b
    assert VAE + "encoder.conv_in.weight" not in result.missing_in_b
    plain = save_safetensors(tmp_path / "plain.safetensors", checkpoint(values))
    both = compare_models(nai, plain)
    assert both.identical and both.components["clip_l"].stats.keys_compared == 7


def test_fp16_copy_is_same_at_fp16_and_missing_keys_are_listed(tmp_path, toy_family):
    values = toy_values()
    a = save_safetensors(tmp_path / "a.safetensors", checkpoint(values))
    half = save_safetensors(tmp_path / "h.safetensors", checkpoint(values, dtype="float16"))
    vae = compare_models(a, half).components["vae"]
    assert not vae.identical and vae.to_dict()["identical_fp16"] is True
    assert vae.stats.cosine > 0.999999
    fewer = checkpoint(values)
    del fewer[VAE + "quant_conv.weight"]
    b = save_safetensors(tmp_path / "b.safetensors", fewer)
    result = compare_models(a, b)
    assert result.missing_in_b == (VAE + "quant_conv.weight",)
    assert result.components["vae"].missing_in_b == 1 and not result.components["vae"].identical
    assert result.components["vae"].stats.keys_different == 0


def test_block_names():
    assert block_of("unet", "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight") == "input_blocks.4"
    assert block_of("unet", "middle_block.1.proj_in.weight") == "middle_block"
    assert block_of("unet", "time_embed.0.weight") == "time_embed"
    assert block_of("clip_l", "encoder.layers.11.mlp.fc1.weight") == "layers.11"
    assert block_of("clip_g", "transformer.resblocks.31.ln_1.bias") == "resblocks.31"
    assert block_of("vae", "decoder.up.3.block.0.conv1.weight") == "decoder"
    assert block_of("other", "double_blocks.7.img_attn.qkv.weight") == "double_blocks.7"


def test_plot_without_matplotlib_is_one_line_exit_2(two_models, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    out = tmp_path / "plot.png"
    assert main(["compare", *two_models, "--plot", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("modeldoc: error: ") and "pip install matplotlib" in err
    assert not out.exists()


def test_plot_is_a_png(two_models, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "plot.png"
    assert main(["compare", *two_models, "--plot", str(out), "--json"]) == 0
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".partial")]


def test_a_part_whose_values_match_but_keys_do_not_says_so(tmp_path, toy_family, capsys):
    """Issue 9.14: "other: different" beside cosine 1.000000, rel. difference 0 and 0 keys different. The
    unclaimed tensors compared equal; the part differed only because one file has a key the other lacks."""
    from lib_modeldoc.ui.views import comparison_html

    values = toy_values()
    a_flat = checkpoint(values)
    a_flat["extra.shared.weight"] = np.ones((4,), np.float32)
    a_flat["extra.only_a.weight"] = np.ones((3,), np.float32)
    b_flat = checkpoint(values)
    b_flat["extra.shared.weight"] = np.ones((4,), np.float32)
    a = save_safetensors(tmp_path / "a.safetensors", a_flat)
    b = save_safetensors(tmp_path / "b.safetensors", b_flat)
    other = compare_models(a, b).components["other"]
    assert other.stats.keys_different == 0 and other.stats.cosine == pytest.approx(1.0)
    assert not other.identical and other.verdict != "different"
    assert "key" in other.verdict and "A" in other.verdict, other.verdict
    html = comparison_html(compare_models(a, b))
    row = html[html.index("<td>other</td>") if "<td>other</td>" in html else html.index("Other"):]
    row = row[: row.index("</tr>")]
    assert "different<" not in row and "1 key only in A" in row, row
    assert main(["compare", a, b]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("other"))
    assert "1 key only in A" in line and " different " not in line, line
