"""LoRA / LyCORIS and embedding inspection on real-shape files: type, base, rank, alpha, blocks, kohya facts."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from lib_modeldoc.arch.networks import block_ranges, network_fits, summarise_network
from lib_modeldoc.cli import main
from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.report.render import render_report
from lib_modeldoc.samples import SAMPLES, write_sample


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("networks")
    names = [n for n, s in SAMPLES.items() if s.architecture in ("LoRA", "Embedding")]
    return {n: write_sample(str(folder / f"{n}.safetensors"), n) for n in names}


@pytest.mark.parametrize("name, network, base, rank, alpha, blocks", [
    ("lora-sd15-kohya", "LoRA", "SD1", 32, 16, "te; down_blocks 0-2; mid_block; up_blocks 1-3"),
    ("locon-sd15", "LoCon", "SD1", 32, 16, "te; down_blocks 0-3; mid_block; up_blocks 1-3"),
    ("lora-sd2", "LoRA", "SD2", 8, 8, "te; down_blocks 0-2"),
    ("lora-sdxl", "LoRA", "SDXL", 16, 8, "te1; te2; input_blocks 4-5, 7-8; middle_block; output_blocks 0, 3"),
    ("loha-sdxl", "LoHa", "SDXL", 8, 4, "te1; te2; input_blocks 4-5, 7-8; middle_block; output_blocks 0, 3"),
    ("lokr-sdxl", "LoKr", "SDXL", 4, 1, "te1; te2; input_blocks 4-5, 7-8; middle_block; output_blocks 0, 3"),
    ("dora-sdxl", "DoRA (LoRA)", "SDXL", 16, 16, "te1; te2; input_blocks 4-5, 7-8; middle_block; output_blocks 0, 3"),
    ("lora-flux", "LoRA", "Flux", 16, 16, "double_blocks 0-18; single_blocks 0-37"),
])
def test_network_summary(paths, name, network, base, rank, alpha, blocks):
    report = inspect_model(paths[name])
    assert report.architecture == "LoRA"
    adapter = report.adapter.to_dict()
    assert (adapter["network"], adapter["base"], adapter["rank"], adapter["alpha"]) == (network, base, rank, alpha)
    assert block_ranges([b["block"] for b in adapter["blocks"]]) == blocks
    assert all(b["ranks"] and b["alphas"] for b in adapter["blocks"])  # rank and alpha per block
    summary = next(f for f in report.findings if f.id == "lora.summary")
    assert summary.message.startswith(f"{network} for {base}")
    assert "Network blocks" in render_report(report)


def test_locon_has_conv_ranks_per_block(paths):
    adapter = inspect_model(paths["locon-sd15"]).adapter.to_dict()
    assert adapter["ranks"] == {"16": 8, "32": 264}
    down3 = next(b for b in adapter["blocks"] if b["block"] == "down_blocks_3")
    assert down3["ranks"] == [16]  # only the ResNet convs of the last level


def test_kohya_metadata_gives_training_facts_and_trigger_words(paths):
    training = inspect_model(paths["lora-sd15-kohya"]).adapter.to_dict()["training"]
    assert training["base_model"] == "v1-5-pruned-emaonly.safetensors"
    assert training["base_model_hash"].startswith("6ce0161689")
    assert training["base_model_legacy_hash"] == "81761151"
    assert (training["resolution"], training["epochs"]) == ("(512, 512)", "10")
    # Summed over both dataset folders: mychar 50, 1girl 44, solo 30, smile 12, red dress 9.
    assert training["trigger_words"] == ["mychar", "1girl", "solo", "smile", "red dress"]


@pytest.mark.parametrize("name, vectors, base", [
    ("embedding-sd15", 4, "SD1"), ("embedding-sd2", 2, "SD2"), ("embedding-sdxl", 3, "SDXL"),
])
def test_embedding_summary(paths, name, vectors, base):
    report = inspect_model(paths[name])
    assert report.architecture == "Embedding"
    assert (report.adapter.vectors, report.adapter.base) == (vectors, base)
    assert report.has("embedding.summary")


def test_a1111_pt_embedding(write_ckpt):
    path = write_ckpt("style.pt", {"string_to_token": {"*": 265}, "string_to_param": {"*": torch.zeros(6, 768)},
                                    "name": "style", "step": 3000})
    report = inspect_model(path)
    assert report.architecture == "Embedding"
    assert (report.adapter.vectors, report.adapter.base) == (6, "SD1")


def test_peft_lora_names_and_fit(tmp_path):
    """diffusers / PEFT names (lora_A / lora_B, dotted module paths), SDXL by the cross-attention width."""
    tensors = {}
    for block in range(2):
        m = f"unet.down_blocks.1.attentions.{block}.transformer_blocks.0.attn2.to_k"
        tensors[f"{m}.lora_A.weight"] = torch.zeros(4, 2048)
        tensors[f"{m}.lora_B.weight"] = torch.zeros(640, 4)
    path = tmp_path / "peft.safetensors"
    save_file(tensors, str(path))
    report = inspect_model(str(path))
    assert (report.architecture, report.adapter.network, report.adapter.base, report.adapter.rank) == \
        ("LoRA", "LoRA", "SDXL", 4)
    assert [b.name for b in report.adapter.blocks] == ["down_blocks_1"]
    assert report.adapter.alpha is None  # PEFT files carry no alpha tensors


def test_does_it_fit():
    summary = summarise_network({"lora_unet_x_attn2_to_k.lora_down.weight": (4, 768)}, lambda k: None, {})
    assert summary.base == "SD1"
    assert network_fits(summary, "SD1") is True and network_fits(summary, "SDXL") is False
    unknown = summarise_network({"lora_unet_x_ff.lora_down.weight": (4, 320)}, lambda k: None, {})
    assert unknown.base == "unknown" and network_fits(unknown, "SD1") is None


def test_cli_json_has_the_adapter(paths, capsys):
    assert main(["inspect", paths["lora-sdxl"], "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["adapter"]["kind"] == "network" and obj["adapter"]["base"] == "SDXL"
    assert obj["adapter"]["training"]["base_model_version"] == "sdxl_base_v1-0"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit")
    names = ("noobai-xl-vpred", "altdiffusion-m9", "flux1-dev-transformer", "sd21-unclip-h")
    out = {n: write_sample(str(folder / f"{n}.safetensors"), n) for n in names}
    from lib_modeldoc.samples import family_specs, write_safetensors_sample
    import numpy as np

    out["refiner"] = write_safetensors_sample(str(folder / "refiner.safetensors"), family_specs("SDXL-refiner"))

    specs = family_specs("SD1")
    ids = {s.key: np.arange(77, dtype=np.int64).reshape(1, 77) for s in specs if s.key.endswith("position_ids")}
    out["sd15"] = write_safetensors_sample(str(folder / "sd15.safetensors"), specs, ids)
    return out


@pytest.mark.parametrize("adapter, checkpoint, fits, words", [
    ("lora-sdxl", "noobai-xl-vpred", True, "yes: both are SDXL"),
    ("lora-sdxl", "sd15", False, "no: the LoRA is for SDXL, the checkpoint is SD1"),
    ("lora-sdxl", "refiner", False, "no: the LoRA's cross-attention reads 2048-wide text, the checkpoint's 1280"),
    ("lora-sd15-kohya", "sd15", True, "yes"),
    ("lora-sd15-kohya", "altdiffusion-m9", True, "yes for the UNet"),
    ("lora-flux", "flux1-dev-transformer", True, "yes: both are Flux"),
    ("lora-sd2", "sd21-unclip-h", True, "yes: both are SD2"),
    ("embedding-sd15", "noobai-xl-vpred", False, "no: the embedding is for SD1"),
    ("embedding-sdxl", "noobai-xl-vpred", True, "yes"),
])
def test_does_it_fit_this_checkpoint(paths, checkpoints, capsys, adapter, checkpoint, fits, words):
    assert main(["inspect", paths[adapter], "--fit", checkpoints[checkpoint], "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["adapter"]["fit"]["fits"] is fits
    assert obj["adapter"]["fit"]["reason"].startswith(words)
    finding = next(f for f in obj["findings"] if f["id"] == "adapter.fit")
    assert finding["severity"] == ("info" if fits else "warning")


def test_fit_ignores_a_checkpoint_argument_for_a_checkpoint(checkpoints, capsys):
    assert main(["inspect", checkpoints["sd15"], "--fit", checkpoints["sd15"], "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert "adapter" not in obj and not [f for f in obj["findings"] if f["id"] == "adapter.fit"]


def test_module_types_come_in_the_same_order_under_any_hash_seed(paths):
    """A DoRA module has three kinds of tensors; their order in the JSON must not follow set iteration."""
    import subprocess
    import sys

    outputs = set()
    for seed in ("0", "1", "2", "3", "4", "5"):
        run = subprocess.run([sys.executable, "-m", "lib_modeldoc", "inspect", paths["dora-sdxl"], "--json"],
                             capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
        outputs.add(json.dumps(json.loads(run.stdout)["adapter"]["module_types"]))
    assert len(outputs) == 1, outputs
