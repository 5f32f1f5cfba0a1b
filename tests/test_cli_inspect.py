"""``inspect`` through the CLI: the contract's JSON fields and types, several paths, text and --brief."""

from __future__ import annotations

import json
import pathlib
import re

import numpy as np
import pytest

from lib_modeldoc.cli import main
from lib_modeldoc.samples import Spec, broken_position_ids, family_specs, write_demo_sample

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONTRACT = ROOT.parent / "shared" / "reference" / "cli-contract.md"

# field -> JSON type, as the contract's inspect table gives them
FIELDS = {
    "path": str, "format": str, "size_bytes": int, "architecture": str, "components": dict, "junk": dict,
    "ema": dict, "clip_position_ids": list, "pruned_size_bytes": int, "metadata": dict, "findings": list,
}
ARCHITECTURES = {
    "SD1", "SD1-inpaint", "SD1-pix2pix", "SD2", "SD2-inpaint", "SD2-depth", "SDXL", "SDXL-inpaint",
    "SDXL-refiner", "SD3", "Flux", "VAE", "UNET-SD1", "UNET-SD2", "UNET-SDXL", "CLIP-SD1", "CLIP-SD2",
    "CLIP-SDXL", "ControlNet", "LoRA", "Embedding", "unknown",
}
COMPONENT_NAMES = {"unet", "vae", "clip_l", "clip_h", "clip_g", "ema_unet", "depth", "controlnet"}
XL_POS = "conditioner.embedders.0.transformer.text_model.embeddings.position_ids"


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def assert_contract_object(obj: dict) -> None:
    """Every contract field is present with its type, nested objects included."""
    for name, kind in FIELDS.items():
        assert name in obj, name
        assert is_int(obj[name]) if kind is int else isinstance(obj[name], kind), (name, obj[name])
    assert obj["format"] in ("safetensors", "ckpt")
    assert obj["architecture"] in ARCHITECTURES
    assert obj["size_bytes"] > 0 and obj["pruned_size_bytes"] > 0
    for name, comp in obj["components"].items():
        assert name in COMPONENT_NAMES
        assert isinstance(comp["present"], bool) and isinstance(comp["complete"], bool)
        assert is_int(comp["keys"]) and is_int(comp["bytes"])
    for part in ("junk", "ema"):
        assert is_int(obj[part]["keys"]) and is_int(obj[part]["bytes"])
    for ids in obj["clip_position_ids"]:
        assert isinstance(ids["key"], str) and isinstance(ids["dtype"], str)
        assert isinstance(ids["wrong"], list) and all(is_int(i) for i in ids["wrong"])
    for finding in obj["findings"]:
        assert isinstance(finding["id"], str) and re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)*", finding["id"])
        assert finding["severity"] in ("info", "warning", "error")
        assert isinstance(finding["message"], str) and finding["message"]


@pytest.fixture
def sdxl_broken(sparse_model):
    specs = [Spec(s.key, "F32", s.shape) if s.key == XL_POS else s for s in family_specs("SDXL")]
    return sparse_model("xl.safetensors", specs, {XL_POS: broken_position_ids()},
                        {"sd_merge_recipe": '{"type": "webui", "multiplier": 0.5}'})


@pytest.fixture
def healthy_vae(sparse_model):
    return sparse_model("vae.safetensors", family_specs("VAE"))


def run_json(capsys, *args):
    code = main(["inspect", *args, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_json_has_every_contract_field_with_its_type(capsys, sdxl_broken):
    code, obj, err = run_json(capsys, sdxl_broken)
    assert code == 0 and err == ""
    assert isinstance(obj, dict)
    assert_contract_object(obj)
    assert obj["path"] == sdxl_broken
    assert obj["architecture"] == "SDXL"
    assert set(obj["components"]) == {"unet", "vae", "clip_l", "clip_g"}
    assert obj["clip_position_ids"][0]["key"] == XL_POS
    assert obj["clip_position_ids"][0]["dtype"] == "F32"
    assert obj["clip_position_ids"][0]["wrong"] == [41, 76]
    assert obj["metadata"] == {"sd_merge_recipe": {"type": "webui", "multiplier": 0.5}}
    assert [(f["id"], f["severity"]) for f in obj["findings"]] == [("clip.position_ids.offset", "error")]


def test_json_for_unknown_and_pickle_files(capsys, sparse_model, write_ckpt):
    torch = pytest.importorskip("torch")
    unknown = sparse_model("x.safetensors", [Spec("foo.weight", "F32", (8, 8))])
    emb = write_ckpt("emb.pt", {"string_to_token": {"*": 265}, "string_to_param": {"*": torch.zeros(2, 768)}})
    code, objs, _ = run_json(capsys, unknown, emb)
    assert code == 0
    for obj in objs:
        assert_contract_object(obj)
    assert [(o["architecture"], o["format"]) for o in objs] == [("unknown", "safetensors"), ("Embedding", "ckpt")]
    assert objs[0]["junk"]["keys"] == 0 and objs[0]["components"] == {}
    assert "arch.unknown" in {f["id"] for f in objs[0]["findings"]}


def test_several_paths_give_an_array_in_order(capsys, sdxl_broken, healthy_vae, tmp_path):
    demo = write_demo_sample(str(tmp_path / "demo"))
    code, objs, _ = run_json(capsys, healthy_vae, sdxl_broken, demo)
    assert code == 0
    assert isinstance(objs, list)
    assert [o["path"] for o in objs] == [healthy_vae, sdxl_broken, demo]
    assert [o["architecture"] for o in objs] == ["VAE", "SDXL", "SD1"]
    for obj in objs:
        assert_contract_object(obj)


def test_one_bad_path_among_several_exits_2_with_one_line(capsys, healthy_vae, tmp_path):
    missing = str(tmp_path / "gone.safetensors")
    code = main(["inspect", healthy_vae, missing, "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == f"modeldoc: error: {missing}: no such file\n"
    objs = json.loads(captured.out)
    assert objs[0]["architecture"] == "VAE" and objs[1]["path"] == missing


def test_text_starts_with_the_path_and_a_verdict(capsys, sdxl_broken):
    assert main(["inspect", sdxl_broken]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == sdxl_broken
    assert "(SDXL)" in lines[1]
    assert lines[2].strip().startswith("Verdict: damaged")
    text = "\n".join(lines)
    assert "Components:" in text and "Identified by:" in text
    assert "--fix-clip" in text
    assert "sd_merge_recipe" in text


def test_healthy_text_verdict(capsys, healthy_vae):
    assert main(["inspect", healthy_vae]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == healthy_vae
    assert lines[2].strip() == "Verdict: healthy - nothing wrong found"


def test_brief_is_only_the_verdict(capsys, sdxl_broken, healthy_vae):
    assert main(["inspect", sdxl_broken, healthy_vae, "--brief"]) == 0
    out = capsys.readouterr().out
    first, second = out.split("\n\n")
    for block, path in ((first, sdxl_broken), (second, healthy_vae)):
        lines = block.strip("\n").splitlines()
        assert lines[0] == path
        assert any(line.strip().startswith("Verdict:") for line in lines[1:3])
    assert "Components:" not in out and "Identified by:" not in out and "Metadata:" not in out


def test_brief_is_a_prefix_of_the_full_text(capsys, sdxl_broken):
    main(["inspect", sdxl_broken, "--brief"])
    brief = capsys.readouterr().out
    main(["inspect", sdxl_broken])
    full = capsys.readouterr().out
    assert full.startswith(brief.rstrip("\n"))


@pytest.mark.skipif(not CONTRACT.is_file(), reason="needs the maintainers' CLI contract, kept outside this repository")
def test_field_list_matches_the_contract_file():
    text = CONTRACT.read_text()
    section = text[text.index("## inspect"):text.index("Finding ids")]
    rows = re.findall(r"^\| `([a-z_]+)` \| (\w+) \|", section, flags=re.M)
    types = {"str": str, "int": int, "object": dict, "array": list}
    assert {name: types[kind] for name, kind in rows} == FIELDS
    listed = re.search(r"`architecture` \| str \| one of (.*) \|", section).group(1)
    assert set(re.findall(r"`([^`]+)`", listed)) == ARCHITECTURES


def test_json_values_round_trip_exactly(capsys, sparse_model):
    """Numbers in the JSON are the engine's, not rounded: sizes and bytes are exact ints."""
    specs = family_specs("SD1", ema=True)
    ids = {s.key: np.arange(77, dtype=np.int64).reshape(1, 77) for s in specs if s.key.endswith("position_ids")}
    path = sparse_model("sd1.safetensors", specs, ids)
    _, obj, _ = run_json(capsys, path)
    assert obj["size_bytes"] == pathlib.Path(path).stat().st_size
    assert obj["ema"] == {"keys": 686, "bytes": sum(s.nbytes for s in specs if s.key.startswith("model_ema."))}
    assert obj["components"]["ema_unet"] == {**obj["components"]["ema_unet"], "present": True, "complete": True,
                                             "keys": 686}
