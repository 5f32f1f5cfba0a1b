"""The CLIP tokenizer files of a diffusers folder, found on this machine (never downloaded).

A single-file checkpoint holds no tokenizer, but ``StableDiffusionPipeline.from_pretrained`` needs
one (``tokenizer/``: ``vocab.json`` and ``merges.txt`` with two small configs). Every text encoder
of SD1, SD2 and SDXL uses the same byte-pair vocabulary (OpenAI CLIP's, which OpenCLIP reuses); they
differ only in the padding token, which is written here. The vocabulary is taken from, in order:

1. a folder the user names: a diffusers folder, whose ``tokenizer/`` and
   ``tokenizer_2/`` are copied as they are, or a folder holding ``vocab.json`` and ``merges.txt``;
2. the local Hugging Face cache (transformers puts ``openai/clip-vit-large-patch14`` there the
   first time the AUTOMATIC1111 WebUI loads an SD1 or SDXL model);
3. the tokenizer folders Forge ships in ``backend/huggingface``, when this extension sits in one.

When none has them the folder is written without tokenizers and the caller says so.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PlanError
from ..report.advice import Note, Remedy

__all__ = ["TokenizerFiles", "TOKENIZER_FILES", "find_tokenizer", "local_candidates", "write_tokenizer",
           "tokenizer_configs", "missing_tokenizer_advice"]

VOCAB, MERGES = "vocab.json", "merges.txt"
TOKENIZER_FILES = (VOCAB, MERGES)
_CONFIGS = ("tokenizer_config.json", "special_tokens_map.json")
_MAX_BYTES = 16 << 20  # CLIP's vocab.json is 1.6 MB and merges.txt 0.5 MB; a larger file is not one
START, END = "<|startoftext|>", "<|endoftext|>"
# OpenCLIP pads with token 0, which is "!" (what the WebUI feeds SD2's and SDXL's bigG encoders);
# transformers' CLIP-L pads with the end token.
OPEN_CLIP_PAD = "!"

#: Where a CLIP vocabulary sits in a Hugging Face repository (its cache or Forge's copy): repo, subfolder.
KNOWN_REPOS: tuple[tuple[str, str], ...] = (
    ("openai/clip-vit-large-patch14", ""),
    ("stabilityai/stable-diffusion-xl-base-1.0", "tokenizer"),
    ("stabilityai/stable-diffusion-xl-base-1.0", "tokenizer_2"),
    ("runwayml/stable-diffusion-v1-5", "tokenizer"),
    ("stable-diffusion-v1-5/stable-diffusion-v1-5", "tokenizer"),
    ("stabilityai/stable-diffusion-2-1", "tokenizer"),
    ("runwayml/stable-diffusion-inpainting", "tokenizer"),
    ("stabilityai/stable-diffusion-2-inpainting", "tokenizer"),
    ("stabilityai/stable-diffusion-xl-refiner-1.0", "tokenizer_2"),
    ("diffusers/stable-diffusion-xl-1.0-inpainting-0.1", "tokenizer"),
    ("laion/CLIP-ViT-bigG-14-laion2B-39B-b160k", ""),
)
#: The download that fills the cache, for the advice when nothing is found.
FILL_CACHE = ('python -c "from transformers import CLIPTokenizer; '
              "CLIPTokenizer.from_pretrained('openai/clip-vit-large-patch14')\"")


@dataclass(frozen=True)
class TokenizerFiles:
    """A folder holding a CLIP vocabulary; ``verbatim`` when its own configs are copied too."""

    folder: str
    origin: str  # said to the user: where it came from
    verbatim: bool = False


def _is_clip_vocab(folder: str) -> bool:
    """Whether ``folder`` has a CLIP ``vocab.json`` (with the start and end tokens) and ``merges.txt``."""
    paths = [os.path.join(folder, name) for name in TOKENIZER_FILES]
    try:
        if not all(os.path.isfile(p) and 0 < os.path.getsize(p) <= _MAX_BYTES for p in paths):
            return False
        with open(paths[0], encoding="utf-8") as f:
            vocab = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(vocab, dict) and START in vocab and END in vocab


def _hub_caches() -> Iterator[Path]:
    """The Hugging Face hub cache folders, as transformers and huggingface_hub choose them."""
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        yield Path(env["HF_HUB_CACHE"])
    if env.get("TRANSFORMERS_CACHE"):
        yield Path(env["TRANSFORMERS_CACHE"])
    if env.get("HF_HOME"):
        yield Path(env["HF_HOME"]) / "hub"
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    yield base / "huggingface" / "hub"


def _snapshots(cache: Path, repo: str) -> list[Path]:
    """A cached repo's snapshot folders, the one ``refs/main`` names first."""
    root = cache / ("models--" + repo.replace("/", "--"))
    snapshots = root / "snapshots"
    if not snapshots.is_dir():
        return []
    found = sorted(p for p in snapshots.iterdir() if p.is_dir())
    try:
        main = (root / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        return found
    return sorted(found, key=lambda p: p.name != main)


def _this_webui() -> Path | None:
    """The WebUI folder this extension is installed in (``<webui>/extensions/<extension>/``), if it is."""
    extension = Path(__file__).resolve().parents[2]  # .../<extension>/lib_modeldoc/operations/this file
    return extension.parent.parent if extension.parent.name == "extensions" else None


def local_candidates(webui: str | os.PathLike[str] | None = None) -> Iterator[TokenizerFiles]:
    """Where a CLIP vocabulary may already be on this machine: the Hugging Face cache, then Forge's
    bundled ``backend/huggingface`` copies in ``webui`` (default: the WebUI this extension sits in)."""
    for cache in _hub_caches():
        for repo, sub in KNOWN_REPOS:
            for snapshot in _snapshots(cache, repo):
                yield TokenizerFiles(str(snapshot / sub), f"the Hugging Face cache ({repo})")
    root = Path(webui) if webui is not None else _this_webui()
    bundled = root / "backend" / "huggingface" if root is not None else None
    if bundled is not None and bundled.is_dir():
        for repo, sub in KNOWN_REPOS:
            yield TokenizerFiles(str(bundled / repo / sub), f"Forge's bundled files ({repo})")


def find_tokenizer(folder: str, given: str | None = None,
                   candidates: Iterable[TokenizerFiles] | None = None) -> TokenizerFiles | None:
    """The CLIP vocabulary for the diffusers subfolder ``folder`` (``tokenizer`` or ``tokenizer_2``).

    Args:
        given: a folder the user named: a diffusers folder (its ``folder`` subfolder, copied as
            it is) or a folder holding ``vocab.json`` and ``merges.txt``.
        candidates: where to look when ``given`` is ``None`` (default: the Hugging Face cache, Forge).

    Raises:
        PlanError: ``given`` holds no CLIP vocabulary.
    """
    if given is not None:
        own = os.path.join(given, folder)
        if _is_clip_vocab(own):
            return TokenizerFiles(own, own, verbatim=all(os.path.isfile(os.path.join(own, c)) for c in _CONFIGS))
        if _is_clip_vocab(given):
            return TokenizerFiles(given, given)
        if folder == "tokenizer_2" and _is_clip_vocab(os.path.join(given, "tokenizer")):
            return TokenizerFiles(os.path.join(given, "tokenizer"), os.path.join(given, "tokenizer"))
        raise PlanError(f"{given}: holds no CLIP tokenizer ({folder}/{VOCAB} and {MERGES}, or {VOCAB} and {MERGES})")
    for candidate in local_candidates() if candidates is None else candidates:
        if _is_clip_vocab(candidate.folder):
            return candidate
    return None


def _token(content: str) -> dict[str, Any]:
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


def tokenizer_configs(pad: str) -> Mapping[str, dict[str, Any]]:
    """transformers' ``CLIPTokenizer`` configs for a 77-token tokenizer padding with ``pad``."""
    special = {"bos_token": _token(START), "eos_token": _token(END), "unk_token": _token(END),
               "pad_token": _token(pad) if pad != END else _token(END)}
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
              "errors": "replace", "add_prefix_space": False, "clean_up_tokenization_spaces": True,
              "bos_token": START, "eos_token": END, "unk_token": END, "pad_token": pad}
    return {"tokenizer_config.json": config, "special_tokens_map.json": special}


def write_tokenizer(source: TokenizerFiles, target: str, pad: str) -> None:
    """Copy the vocabulary into ``target`` (a new folder) and write its configs (or copy the source's)."""
    os.mkdir(target)
    names: Sequence[str] = TOKENIZER_FILES + (_CONFIGS if source.verbatim else ())
    for name in names:
        shutil.copyfile(os.path.join(source.folder, name), os.path.join(target, name))
    if not source.verbatim:
        for name, data in tokenizer_configs(pad).items():
            with open(os.path.join(target, name), "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2, sort_keys=True)
                f.write("\n")


def missing_tokenizer_advice(folders: Sequence[str], pipeline: str) -> Note:
    """The warning when no vocabulary was found: what is missing and the one-line fix."""
    names = " and ".join(f"{f}/" for f in folders)
    passed = ", ".join(f"{f}=..." for f in folders)
    return Note(f"no CLIP tokenizer files found on this machine, so {names} {'were' if len(folders) > 1 else 'was'} "
                f"not written ({pipeline}.from_pretrained then needs {passed} passed in). Fix: run {FILL_CACHE} "
                "once (it downloads about 2 MB into the Hugging Face cache) and convert again",
                Remedy.GIVE_TOKENIZERS)
