"""Tokenizer folders: taken from --tokenizers, the Hugging Face cache, or said to be missing with the fix."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from diffusers_support import diffusers, torch, write_tiny_vocab
from lib_modeldoc.operations.diffusers_tokenizers import FILL_CACHE, TokenizerFiles, find_tokenizer, local_candidates

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_sd1_file(tiny_sd1_folder, tmp_path_factory):
    from lib_modeldoc.cli import main

    out = str(tmp_path_factory.mktemp("tok") / "tiny.safetensors")
    assert main(["convert", tiny_sd1_folder, "-o", out, "--precision", "keep", "--force"]) == 0
    return out


@pytest.fixture(scope="module")
def tiny_sdxl_file(tiny_sdxl_folder, tmp_path_factory):
    from lib_modeldoc.cli import main

    out = str(tmp_path_factory.mktemp("tokxl") / "tinyxl.safetensors")
    assert main(["convert", tiny_sdxl_folder, "-o", out, "--precision", "keep", "--force"]) == 0
    return out


def test_sd1_folder_with_tokenizer_runs_as_a_whole_pipeline(cli, tiny_sd1_file, tmp_path):
    vocab = write_tiny_vocab(str(tmp_path / "vocab"))
    out = tmp_path / "pipe"
    rc, text, err = cli("convert", tiny_sd1_file, "-o", out, "--format", "diffusers", "--precision", "keep",
                        "--force", "--tokenizers", vocab)
    assert rc == 0, err
    assert "tokenizer/: copied from" in text and "warning" not in text
    assert json.loads((out / "model_index.json").read_text())["tokenizer"] == ["transformers", "CLIPTokenizer"]
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(str(out))  # nothing passed in
    assert pipe.tokenizer.pad_token == "<|endoftext|>" and pipe.tokenizer.model_max_length == 77
    assert pipe.tokenizer("a cat").input_ids == [55, 27, 54, 56]
    image = pipe("a cat", num_inference_steps=1, height=64, width=64, output_type="np").images
    assert image.shape == (1, 64, 64, 3) and np.isfinite(image).all()


def test_sdxl_tokenizers_pad_as_the_webui_does(cli, tiny_sdxl_file, tmp_path):
    vocab = write_tiny_vocab(str(tmp_path / "vocab"))
    out = tmp_path / "pipe"
    rc, _, err = cli("convert", tiny_sdxl_file, "-o", out, "--format", "diffusers", "--precision", "keep",
                     "--force", "--tokenizers", vocab)
    assert rc == 0, err
    pipe = diffusers.StableDiffusionXLPipeline.from_pretrained(str(out))
    assert pipe.tokenizer.pad_token == "<|endoftext|>"
    assert pipe.tokenizer_2.pad_token == "!"  # OpenCLIP pads bigG's input with token 0
    embeds = pipe.encode_prompt("a cat", device="cpu", do_classifier_free_guidance=False)[0]
    assert embeds.shape[:2] == (1, 77) and torch.isfinite(embeds).all()


def test_the_hugging_face_cache_is_used_when_it_has_clip(cli, tiny_sd1_file, tmp_path, no_tokenizer_cache):
    repo = os.path.join(no_tokenizer_cache, "models--openai--clip-vit-large-patch14")
    write_tiny_vocab(os.path.join(repo, "snapshots", "0123abc"))
    os.makedirs(os.path.join(repo, "refs"))
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write("0123abc")
    out = tmp_path / "pipe"
    rc, text, err = cli("convert", tiny_sd1_file, "-o", out, "--format", "diffusers", "--force")
    assert rc == 0, err
    assert "tokenizer/: copied from the Hugging Face cache (openai/clip-vit-large-patch14)" in text
    assert (out / "tokenizer" / "vocab.json").read_bytes() == open(os.path.join(repo, "snapshots", "0123abc", "vocab.json"), "rb").read()
    diffusers.StableDiffusionPipeline.from_pretrained(str(out))


def test_without_tokenizer_files_the_folder_says_so_and_the_fix_loads_it(cli, tiny_sd1_file, tmp_path):
    out = tmp_path / "pipe"
    rc, text, err = cli("convert", tiny_sd1_file, "-o", out, "--format", "diffusers", "--force")
    assert rc == 0, err
    assert "tokenizer/ was not written" in text and FILL_CACHE in text
    assert not (out / "tokenizer").exists()
    assert "tokenizer" not in json.loads((out / "model_index.json").read_text())
    with pytest.raises(ValueError, match="tokenizer"):
        diffusers.StableDiffusionPipeline.from_pretrained(str(out))
    # The loading-time fix the README gives: pass a tokenizer in.
    vocab = write_tiny_vocab(str(tmp_path / "vocab"))
    tokenizer = transformers.CLIPTokenizer(os.path.join(vocab, "vocab.json"), os.path.join(vocab, "merges.txt"))
    assert diffusers.StableDiffusionPipeline.from_pretrained(str(out), tokenizer=tokenizer).tokenizer is tokenizer


def test_a_source_folder_tokenizer_is_carried_through_file_and_back(cli, tiny_sdxl_folder, tiny_sdxl_file, tmp_path):
    """folder -> file -> folder with --tokenizers SOURCE: its tokenizer folders come back byte for byte."""
    source = tmp_path / "source"
    shutil.copytree(tiny_sdxl_folder, source)
    for folder, pad in (("tokenizer", "<|endoftext|>"), ("tokenizer_2", "!")):
        write_tiny_vocab(str(source / folder))
        transformers.CLIPTokenizer(str(source / folder / "vocab.json"), str(source / folder / "merges.txt"),
                                   pad_token=pad).save_pretrained(str(source / folder))
    out = tmp_path / "pipe"
    rc, _, err = cli("convert", tiny_sdxl_file, "-o", out, "--format", "diffusers", "--force", "--tokenizers", source)
    assert rc == 0, err
    for folder in ("tokenizer", "tokenizer_2"):
        for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
            assert (out / folder / name).read_bytes() == (source / folder / name).read_bytes(), f"{folder}/{name}"


def test_a_tokenizers_folder_without_a_vocabulary_is_refused(cli, tiny_sd1_file, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "vocab.json").write_text("[1, 2]")  # JSON, but not a CLIP vocabulary
    (empty / "merges.txt").write_text("#version: 0.2\n")
    rc, _, err = cli("convert", tiny_sd1_file, "-o", tmp_path / "pipe", "--format", "diffusers", "--force",
                     "--tokenizers", empty)
    assert rc == 2 and err.startswith("modeldoc: error:") and len(err.strip().splitlines()) == 1
    assert "no CLIP tokenizer" in err and not (tmp_path / "pipe").exists()
    rc, _, err = cli("convert", tiny_sd1_file, "-o", tmp_path / "x.safetensors", "--tokenizers", empty)
    assert rc == 2 and "--format diffusers" in err


def test_find_tokenizer_skips_folders_without_a_clip_vocabulary(tmp_path):
    good = write_tiny_vocab(str(tmp_path / "good"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "vocab.json").write_text(json.dumps({"a": 0}))  # no start / end tokens
    (bad / "merges.txt").write_text("")
    found = find_tokenizer("tokenizer", candidates=[TokenizerFiles(str(bad), "bad"), TokenizerFiles(good, "good")])
    assert found is not None and found.origin == "good"
    assert find_tokenizer("tokenizer", candidates=[TokenizerFiles(str(tmp_path / "none"), "none")]) is None


def test_forge_bundled_tokenizer_files_are_found(tmp_path):
    """Forge ships backend/huggingface/<repo>/tokenizer*/; found there when the cache has nothing."""
    webui = tmp_path / "forge"
    write_tiny_vocab(str(webui / "backend" / "huggingface" / "stabilityai" / "stable-diffusion-xl-base-1.0" / "tokenizer_2"))
    found = find_tokenizer("tokenizer_2", candidates=local_candidates(webui))
    assert found is not None and found.origin == "Forge's bundled files (stabilityai/stable-diffusion-xl-base-1.0)"
    assert find_tokenizer("tokenizer", candidates=local_candidates(tmp_path / "a1111")) is None


def test_sd2_tokenizer_pads_as_open_clip(cli, tmp_path):
    from diffusers_support import write_sd2_folder

    folder = write_sd2_folder(str(tmp_path / "sd2"), tiny=True)
    single = tmp_path / "sd2.safetensors"
    assert cli("convert", folder, "-o", single, "--precision", "keep", "--force")[0] == 0
    out = tmp_path / "pipe"
    rc, _, err = cli("convert", single, "-o", out, "--format", "diffusers", "--precision", "keep", "--force",
                     "--tokenizers", write_tiny_vocab(str(tmp_path / "vocab")))
    assert rc == 0, err
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(str(out))
    assert pipe.tokenizer.pad_token == "!" and pipe.scheduler.config.prediction_type == "v_prediction"
    assert pipe.tokenizer("a cat", padding="max_length", max_length=6).input_ids == [55, 27, 54, 56, 0, 0]
