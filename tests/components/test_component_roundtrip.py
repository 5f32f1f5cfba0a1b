"""export, then replace: the component comes back hash-equal, in every family and layout.

Models are written from the trimmed real tables (see ``components_support``) with distinct
values in every tensor, so that a part is complete and equality proves the bytes moved.
"""

from __future__ import annotations

import pytest
import torch

from components_support import (
    EMA, PREFIX, SD1_UNET, digest, digests, planted, read_metadata, read_tensors, trimmed_table, write_model,
)
from lib_modeldoc.arch.identify import identify_model
from lib_modeldoc.arch.tables import table
from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.io.model import open_model

CHECKPOINTS = ("SD1", "SD1-inpaint", "SD2", "SD2-inpaint", "SDXL", "SDXL-refiner")

# (arch, --component) -> the checkpoint slots it moves
CASES = {
    ("SD1", "unet"): ("unet",), ("SD1", "vae"): ("vae",), ("SD1", "clip"): ("clip_l",),
    ("SD1", "clip_l"): ("clip_l",),
    ("SD2", "unet"): ("unet",), ("SD2", "vae"): ("vae",), ("SD2", "clip"): ("clip_h",),
    ("SDXL", "unet"): ("unet",), ("SDXL", "vae"): ("vae",), ("SDXL", "clip"): ("clip_l", "clip_g"),
    ("SDXL", "clip_l"): ("clip_l",), ("SDXL", "clip_g"): ("clip_g",),
}
TABLE = {"unet": {"SD1": "unet_sd1", "SD2": "unet_sd2", "SDXL": "unet_sdxl"}, "vae": "vae", "clip_l": "clip_l",
         "clip_h": "clip_h", "clip_g": "clip_g"}
# How an exported file keys a slot's table keys: UNet and VAE bare (a WebUI VAE file), CLIP-L as
# transformers' CLIPTextModel, OpenCLIP-H raw as SD2's own tools; SDXL's encoders as its tools do.
EXPORT_PREFIX = {"unet": "", "vae": "", "clip_l": "text_model.", "clip_h": "", "clip_g": "clip_g."}
SDXL_BOTH_PREFIX = {"clip_l": "clip_l.text_model.", "clip_g": "clip_g."}
EXPORT_ARCH = {
    ("SD1", "unet"): "UNET-SD1", ("SD2", "unet"): "UNET-SD2", ("SDXL", "unet"): "UNET-SDXL",
    ("SD1", "vae"): "VAE", ("SD2", "vae"): "VAE", ("SDXL", "vae"): "VAE",
    ("SD1", "clip"): "CLIP-SD1", ("SD1", "clip_l"): "CLIP-SD1", ("SD2", "clip"): "CLIP-SD2",
    ("SDXL", "clip"): "CLIP-SDXL", ("SDXL", "clip_l"): "CLIP-SD1", ("SDXL", "clip_g"): "CLIP-SDXL",
}


def _table_keys(arch: str, slot: str) -> list[str]:
    tab = TABLE[slot][arch] if slot == "unet" else TABLE[slot]
    return list(trimmed_table(table(tab)).shapes)


def _expected_export_keys(arch: str, component: str) -> set[str]:
    slots = CASES[(arch, component)]
    prefixes = SDXL_BOTH_PREFIX if len(slots) > 1 else EXPORT_PREFIX
    return {prefixes[slot] + k for slot in slots for k in _table_keys(arch, slot)}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """``pair(arch) -> (source, target, their digests)``: two models of ``arch`` with different
    values, written once per module (tests only read them)."""
    folder = tmp_path_factory.mktemp("pairs")
    made = {}

    def get(arch):
        if arch not in made:
            source = write_model(folder / f"{arch}-source.safetensors", arch)
            target = write_model(folder / f"{arch}-target.safetensors", arch, seed="other merge")
            made[arch] = source, target, digests(source), digests(target)
        return made[arch]

    return get


def test_fixtures_identify_the_same_under_real_tables(make_model):
    """The trimmed files are what they claim: the real tables identify them as the same family."""
    for arch in CHECKPOINTS:
        path = make_model(f"{arch}.safetensors", arch, ema=True)
        with open_model(path) as model:
            ident = identify_model(model)
        assert ident.architecture == arch, (arch, ident.evidence)
        assert all(s.present for s in ident.slots), arch


@pytest.mark.parametrize("arch,component", list(CASES), ids=[f"{a}-{c}" for a, c in CASES])
def test_export_then_replace_is_hash_equal(tmp_path, trimmed_tables, pair, cli, arch, component):
    source, target, src, tgt = pair(arch)
    part = tmp_path / "part.safetensors"

    rc, out, err = cli("export", source, "--component", component, "-o", part)
    assert (rc, err) == (0, ""), err
    exported = read_tensors(part)
    assert set(exported) == _expected_export_keys(arch, component)
    assert inspect_model(part).architecture == EXPORT_ARCH[(arch, component)]

    rc, out, err = cli("replace", target, "--component", component, "--from", part, "-o", tmp_path / "out.safetensors")
    assert (rc, err) == (0, ""), err

    moved = tuple(PREFIX[(arch, slot)] for slot in CASES[(arch, component)])
    result = digests(tmp_path / "out.safetensors")
    assert set(result) == set(tgt)  # same keys as the target: nothing added, nothing lost
    swapped = {k for k in result if k.startswith(moved)}
    source_tensors = read_tensors(source)
    assert swapped and planted({k: source_tensors[k] for k in swapped}) == len(swapped)
    assert {k: result[k] for k in swapped} == {k: src[k] for k in swapped}
    assert {k: result[k] for k in result if k not in swapped} == {k: tgt[k] for k in tgt if k not in swapped}
    assert all(src[k] != tgt[k] for k in swapped if "position_ids" not in k)  # the two models really differ there


def test_float32_unet_round_trips_with_precision_keep(tmp_path, trimmed_tables, make_model, cli):
    source = make_model("source.safetensors", "SD1", dtype="F32")
    target = make_model("target.safetensors", "SD1", dtype="F32")
    assert cli("export", source, "--component", "unet", "--precision", "keep", "-o", tmp_path / "unet.safetensors")[0] == 0
    assert cli("replace", target, "--component", "unet", "--from", tmp_path / "unet.safetensors",
               "-o", tmp_path / "out.safetensors")[0] == 0
    src, result = digests(source), digests(tmp_path / "out.safetensors")
    unet = [k for k in src if k.startswith(SD1_UNET)]
    assert all(result[k] == src[k] and result[k][0] == "float32" for k in unet)


def test_export_defaults_to_fp16_except_the_vae(tmp_path, trimmed_tables, make_model, cli):
    source = make_model("source.safetensors", "SD1", dtype="F32")
    for component in ("unet", "vae", "clip"):
        assert cli("export", source, "--component", component, "-o", tmp_path / f"{component}.safetensors")[0] == 0
    dtypes = {c: {str(t.dtype) for t in read_tensors(tmp_path / f"{c}.safetensors").values()}
              for c in ("unet", "vae", "clip")}
    assert dtypes == {"unet": {"torch.float16"}, "vae": {"torch.float32"},
                      "clip": {"torch.float16", "torch.int64"}}  # position_ids stay int64


def test_ema_unet_export_holds_the_ema_values_keyed_as_a_unet(tmp_path, trimmed_tables, make_model, cli):
    source = make_model("source.safetensors", "SD1", ema=True)
    rc, out, err = cli("export", source, "--component", "ema-unet", "-o", tmp_path / "ema.safetensors")
    assert (rc, err) == (0, "")
    tensors = read_tensors(source)
    exported = read_tensors(tmp_path / "ema.safetensors")
    assert set(exported) == set(_table_keys("SD1", "unet"))  # no prefix, dots restored
    assert inspect_model(tmp_path / "ema.safetensors").architecture == "UNET-SD1"
    for key, t in exported.items():
        assert digest(t) == digest(tensors[EMA + key.replace(".", "")]), key
        assert digest(t) != digest(tensors[SD1_UNET + key]), key  # not the live UNet


def test_ema_unet_export_without_ema_is_refused(tmp_path, trimmed_tables, make_model, cli):
    source = make_model("source.safetensors", "SD1")
    rc, out, err = cli("export", source, "--component", "ema-unet", "-o", tmp_path / "ema.safetensors")
    assert rc == 2 and err.startswith("modeldoc: error: ") and err.count("\n") == 1
    assert "ema_unet" in err
    assert not (tmp_path / "ema.safetensors").exists()


def test_export_records_provenance(tmp_path, trimmed_tables, make_model, cli):
    source = make_model("source.safetensors", "SDXL")
    assert cli("export", source, "--component", "clip", "-o", tmp_path / "clip.safetensors")[0] == 0
    meta = read_metadata(tmp_path / "clip.safetensors")
    assert meta["format"] == "pt"
    assert '"source": "source.safetensors"' in meta["modeldoc"]


@pytest.mark.parametrize("arch,component,expected", [
    ("SD1", "unet", "UNET-SD1"), ("SD2", "unet", "UNET-SD2"), ("SDXL", "unet", "UNET-SDXL"),
    ("SD1", "vae", "VAE"), ("SDXL", "vae", "VAE"),
    ("SD1", "clip", "CLIP-SD1"), ("SD2", "clip", "CLIP-SD2"), ("SDXL", "clip", "CLIP-SDXL"),
])
def test_exported_parts_identify_under_the_real_tables(tmp_path, pair, cli, arch, component, expected):
    """No trimmed tables here: the real identification names each exported (partial) part."""
    source = pair(arch)[0]
    rc, out, err = cli("export", source, "--component", component, "-o", tmp_path / "part.safetensors")
    assert rc == 0 and "incomplete" in out  # trimmed against the real tables, and said so
    assert inspect_model(tmp_path / "part.safetensors").architecture == expected


def test_fp8_export_and_build_keep_in_16_bit_what_convert_keeps(tmp_path, trimmed_tables, make_model, cli):
    """One fp8 rule for every output: norms, biases and embedders lose too much in fp8 (ComfyUI and Forge fp8
    checkpoints keep them 16-bit), so an exported part and a built model type each tensor as convert does."""
    source = make_model("source.safetensors", "SD1", dtype="F32")
    fp8 = ("--precision", "fp8_e4m3fn")
    assert cli("convert", source, "-o", tmp_path / "converted.safetensors", *fp8)[0] == 0
    assert cli("export", source, "--component", "unet", "-o", tmp_path / "unet.safetensors", *fp8)[0] == 0
    assert cli("build", "--arch", "SD1", "--unet", source, "--vae", source, "--clip", source,
               "-o", tmp_path / "built.safetensors", *fp8)[0] == 0
    converted = {k: t.dtype for k, t in read_tensors(tmp_path / "converted.safetensors").items()}
    exported = {SD1_UNET + k: t.dtype for k, t in read_tensors(tmp_path / "unet.safetensors").items()}
    built = {k: t.dtype for k, t in read_tensors(tmp_path / "built.safetensors").items()}
    assert built == converted
    assert exported == {k: d for k, d in converted.items() if k.startswith(SD1_UNET)}
    unet = set(exported.values())
    assert unet == {torch.float8_e4m3fn, torch.float16}, unet  # both kinds are there: the rule is tested
    assert exported[SD1_UNET + "time_embed.0.bias"] == exported[SD1_UNET + "out.0.weight"] == torch.float16  # a norm
    kept = sum(1 for d in exported.values() if d == torch.float16)
    assert f"kept {kept} tensors (norms, biases, embedders) in 16 bit, not fp8" in read_metadata(
        tmp_path / "unet.safetensors")["modeldoc"]
