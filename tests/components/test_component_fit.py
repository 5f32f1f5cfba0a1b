"""Parts that do not fit are refused before anything is written, in one line naming both sides.

Under the trimmed tables every part is complete, so each refusal is for the misfit itself; the
last test shows the real tables refusing a partial part as incomplete.
"""

from __future__ import annotations

import pytest
import torch

from file_digest import sha256_of
from components_support import SD1_VAE, digests, listing, names_arch
from lib_modeldoc.arch.tables import table
from lib_modeldoc.operations.components import plan_build, plan_replace
from lib_modeldoc.errors import IncompatibleComponentError
from lib_modeldoc.io.model import open_model


def _lora(write_safetensors):
    """A kohya LoRA for SD1: the first UNet modules of the real LoRA table at rank 4."""
    keys = [(k, shape) for k, shape in table("lora_unet_sd1_a").shapes.items() if not k.endswith(".alpha")][:24]
    tensors = {k: torch.full(tuple(4 if d == -1 else d for d in shape), 0.01, dtype=torch.float16) for k, shape in keys}
    tensors["lora_unet_down_blocks_0_attentions_0_proj_in.alpha"] = torch.tensor(4.0)
    return write_safetensors("lora.safetensors", tensors, metadata={"ss_network_module": "networks.lora"})


def _embedding_pt(write_ckpt):
    """A textual-inversion embedding as the WebUI saves it."""
    return write_ckpt("grey.pt", {
        "string_to_token": {"*": torch.tensor(265)}, "string_to_param": {"*": torch.ones(2, 768) * 0.1},
        "name": "grey", "step": 1000, "sd_checkpoint": "abc", "sd_checkpoint_name": "base",
    })


def _embedding_xl(write_safetensors):
    return write_safetensors("grey-xl.safetensors", {"clip_l": torch.ones(2, 768), "clip_g": torch.ones(2, 1280)})


# id -> (target arch, --component, source kind, source's architecture as named)
REPLACE_CASES = {
    "sd1-clip-into-sdxl": ("SDXL", "clip", "SD1", "SD1"),
    "sd2-unet-into-sd1": ("SD1", "unet", "SD2", "SD2"),
    "sdxl-unet-into-sd1": ("SD1", "unet", "SDXL", "SDXL"),
    "inpaint-unet-into-sd1": ("SD1", "unet", "SD1-inpaint", "SD1-inpaint"),
    "sd1-unet-into-inpaint": ("SD1-inpaint", "unet", "SD1", "SD1"),
    "sdxl-clip-into-sd2": ("SD2", "clip", "SDXL", "SDXL"),
    "refiner-unet-into-sdxl": ("SDXL", "unet", "SDXL-refiner", "SDXL-refiner"),
    "lora-as-unet": ("SD1", "unet", "lora", "LoRA"),
    "embedding-as-clip": ("SD1", "clip", "embedding", "Embedding"),
    "xl-embedding-as-clip": ("SDXL", "clip", "embedding-xl", "Embedding"),
}


@pytest.fixture
def source_of(make_model, write_safetensors, write_ckpt):
    def make(kind):
        if kind == "lora":
            return _lora(write_safetensors)
        if kind == "embedding":
            return _embedding_pt(write_ckpt)
        if kind == "embedding-xl":
            return _embedding_xl(write_safetensors)
        return make_model("source.safetensors", kind)

    return make


def _assert_refused(tmp_path, cli, argv, inputs, *archs):
    before = listing(tmp_path)
    hashes = [sha256_of(p) for p in inputs]
    rc, out, err = cli(*argv)
    assert rc == 2, (out, err)
    assert out == ""
    assert err.startswith("modeldoc: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    for arch in archs:
        assert names_arch(err, arch), (arch, err)
    assert listing(tmp_path) == before  # no output, no temporary file
    assert [sha256_of(p) for p in inputs] == hashes
    assert "incomplete" not in err
    return err


@pytest.mark.parametrize("case", list(REPLACE_CASES))
def test_replace_refuses_a_part_that_does_not_fit(tmp_path, trimmed_tables, make_model, source_of, cli, case):
    target_arch, component, kind, source_arch = REPLACE_CASES[case]
    target = make_model("target.safetensors", target_arch)
    source = source_of(kind)
    out = tmp_path / "out.safetensors"
    _assert_refused(tmp_path, cli, ("replace", target, "--component", component, "--from", source, "-o", out),
                    (target, source), source_arch, target_arch)
    with open_model(target) as t, open_model(source) as s, pytest.raises(IncompatibleComponentError):
        plan_replace(t, component, s)


@pytest.mark.parametrize("kind,arch", [("SD2", "UNET-SD2"), ("SDXL", "UNET-SDXL")])
def test_replace_refuses_an_exported_unet_of_another_family(tmp_path, trimmed_tables, make_model, cli, kind, arch):
    make_model("other.safetensors", kind)
    assert cli("export", tmp_path / "other.safetensors", "--component", "unet", "-o", tmp_path / "unet.safetensors")[0] == 0
    target = make_model("target.safetensors", "SD1")
    _assert_refused(tmp_path, cli, ("replace", target, "--component", "unet", "--from", tmp_path / "unet.safetensors",
                                    "-o", tmp_path / "out.safetensors"), (target,), arch, "SD1")


@pytest.mark.parametrize("arch,option,kind,source_arch", [
    ("SD1", "--unet", "SD2", "SD2"),
    ("SD1", "--unet", "SD1-inpaint", "SD1-inpaint"),
    ("SD1", "--unet", "lora", "LoRA"),
    ("SD1", "--clip", "embedding", "Embedding"),
    ("SDXL", "--clip", "SD1", "SD1"),
    ("SDXL", "--unet", "SD1", "SD1"),
    ("SD2", "--clip", "SD1", "SD1"),
])
def test_build_refuses_a_part_that_does_not_fit(tmp_path, trimmed_tables, make_model, source_of, cli, arch, option, kind, source_arch):
    own = make_model("own.safetensors", arch)
    odd = source_of(kind)
    parts = {"--unet": own, "--vae": own, "--clip": own, option: odd}
    argv = ["build", "--arch", arch, "-o", tmp_path / "out.safetensors"]
    for name, path in parts.items():
        argv += [name, path]
    _assert_refused(tmp_path, cli, argv, (own, odd), source_arch, arch)


def test_build_api_refuses_before_planning_anything(trimmed_tables, make_model):
    own, other = make_model("own.safetensors", "SD1"), make_model("other.safetensors", "SD2")
    with open_model(own) as a, open_model(other) as b, pytest.raises(IncompatibleComponentError, match=r"\(SD1\)"):
        plan_build("SD1", {"unet": b, "vae": a, "clip": a})


def test_an_sdxl_vae_goes_into_sd1(tmp_path, trimmed_tables, make_model, cli):
    """SD1, SD2 and SDXL VAEs share one structure: the fit check lets it through."""
    target = make_model("target.safetensors", "SD1")
    source = make_model("source.safetensors", "SDXL")
    rc, out, err = cli("replace", target, "--component", "vae", "--from", source, "-o", tmp_path / "out.safetensors")
    assert (rc, err) == (0, "")
    result, src = digests(tmp_path / "out.safetensors"), digests(source)
    vae = [k for k in src if k.startswith(SD1_VAE)]
    assert vae and all(result[k] == src[k] for k in vae)


def test_an_incomplete_part_is_refused(tmp_path, make_model, cli):
    """Under the real tables a trimmed VAE is incomplete: replace says so instead of half-swapping."""
    target = make_model("target.safetensors", "SD1")
    source = make_model("source.safetensors", "SD1", seed="base")
    rc, out, err = cli("replace", target, "--component", "vae", "--from", source, "-o", tmp_path / "out.safetensors")
    assert rc == 2 and err.count("\n") == 1 and "incomplete" in err and names_arch(err, "SD1")
    assert not (tmp_path / "out.safetensors").exists()
