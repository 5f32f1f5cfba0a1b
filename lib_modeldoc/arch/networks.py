"""What a LoRA / LyCORIS network or a textual-inversion embedding is, from its keys and shapes.

Knowledge as data: tensor suffixes per network type (kohya ``networks/lora.py``, LyCORIS, the
WebUI's ``extensions-builtin/Lora``), the cross-attention ``to_k`` input width per base model,
and the embedding widths. Only the ``alpha`` scalars are read (a few bytes each).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NetworkSummary", "EmbeddingSummary", "summarise_network", "summarise_embedding", "network_fits",
           "checkpoint_base", "fit_reason", "block_ranges", "number_text"]

# Tensor suffix -> the module type it belongs to (first match wins).
_SUFFIXES: tuple[tuple[str, str], ...] = (
    (r"\.dora_scale$", "DoRA"),
    (r"\.hada_(w[12]_[ab]|t[12])$", "LoHa"),
    (r"\.lokr_(w[12](_[ab])?|t2)$", "LoKr"),
    (r"\.(lora_(down|up|mid)|lora_[AB]|lora\.(down|up))(\.weight)?$", "LoRA"),
    (r"\.(oft_blocks|oft_diag)$", "OFT"),
    (r"\.(a[12]|b[12])\.weight$", "GLoRA"),
    (r"\.(diff|diff_b)$", "full"),
    (r"\.(w_norm|b_norm)$", "norm"),
    (r"\.on_input$", "IA3"),
    (r"\.alpha$", "alpha"),
)
_SUFFIX_RE = [(re.compile(p), kind) for p, kind in _SUFFIXES]
_DOWN = re.compile(r"\.(lora_down|lora_A|lora\.down)(\.weight)?$")

# Width of the text a UNet's cross-attention reads (``attn2.to_k`` input): the base model.
CONTEXT_WIDTH = {768: "SD1", 1024: "SD2", 2048: "SDXL"}
# Text encoder widths (``q_proj`` / ``fc1`` input) when only the text encoder is trained.
TEXT_WIDTH = {768: "SD1", 1024: "SD2"}
# Embedding vector widths: the text encoder they are for.
EMBEDDING_WIDTH = {768: "SD1", 1024: "SD2", 1280: "SDXL (clip_g only)", 4096: "T5"}
# kohya ss_base_model_version prefixes -> base.
_KOHYA_BASE = (("sdxl", "SDXL"), ("sd_v2", "SD2"), ("sd_v1", "SD1"), ("flux", "Flux"), ("sd3", "SD3"))
TRIGGER_WORDS = 10


@dataclass
class Block:
    """The modules of one block (``input_blocks_4``, ``te1 layers 0-11`` ...) with their ranks and alphas."""

    name: str
    modules: int = 0
    ranks: Counter = field(default_factory=Counter)
    alphas: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"block": self.name, "modules": self.modules, "ranks": sorted(self.ranks), "alphas": sorted(self.alphas)}


@dataclass
class NetworkSummary:
    """A LoRA / LyCORIS file in figures."""

    network: str  # LoRA, LoCon, LoHa, LoKr, DoRA, or a mix "LoRA+LoHa"
    base: str  # SD1, SD2, SDXL, Flux, SD3 or unknown
    base_evidence: str
    modules: int
    module_types: dict[str, int]
    ranks: dict[int, int]  # rank -> modules
    alphas: dict[float, int]  # alpha -> modules
    blocks: list[Block]
    text_encoder: bool
    training: dict[str, Any]  # kohya ss_* facts
    context: int | None = None  # the text width its cross-attention modules read (768, 1024, 2048 ...)

    @property
    def rank(self) -> int | None:
        return max(self.ranks, key=self.ranks.get) if self.ranks else None

    @property
    def alpha(self) -> float | None:
        return max(self.alphas, key=self.alphas.get) if self.alphas else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "network", "network": self.network, "base": self.base, "base_evidence": self.base_evidence,
            "modules": self.modules, "module_types": self.module_types, "rank": self.rank, "alpha": self.alpha,
            "ranks": {str(k): v for k, v in sorted(self.ranks.items())},
            "alphas": {number_text(k): v for k, v in sorted(self.alphas.items())},
            "blocks": [b.to_dict() for b in self.blocks], "text_encoder": self.text_encoder, "training": self.training,
            "context": self.context,
        }


@dataclass
class EmbeddingSummary:
    """A textual-inversion embedding: how many vectors, for which text encoder."""

    vectors: int
    base: str
    widths: dict[str, int]  # tensor key -> vector width
    training: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "embedding", "vectors": self.vectors, "base": self.base, "widths": self.widths,
                "training": self.training}


def block_ranges(names: list[str]) -> str:
    """``input_blocks_4, input_blocks_5, input_blocks_7`` -> ``input_blocks 4-5, 7`` (order kept)."""
    groups: dict[str, list[int]] = {}
    for name in names:
        match = re.match(r"(.+?)_(\d+)$", name)
        if match:
            groups.setdefault(match.group(1), []).append(int(match.group(2)))
        else:
            groups.setdefault(name, [])
    out = []
    for family, numbers in groups.items():
        if not numbers:
            out.append(family)
            continue
        spans, start, prev = [], numbers[0], numbers[0]
        for n in numbers[1:] + [None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            spans.append(f"{start}" if start == prev else f"{start}-{prev}")
            if n is not None:
                start = prev = n
        out.append(f"{family} {', '.join(spans)}")
    return "; ".join(out)


def number_text(value: float | None) -> str:
    """An alpha as people write it: ``8``, ``0.5``; ``-`` for none."""
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _split(key: str) -> tuple[str, str] | None:
    for pattern, kind in _SUFFIX_RE:
        match = pattern.search(key)
        if match:
            return key[: match.start()], kind
    return None


def _block_of(module: str) -> str:
    """A short block name: ``input_blocks_4``, ``double_blocks_3``, ``te1``, ``te`` ..."""
    name = module
    for prefix in ("lora_unet_", "lora_transformer_", "lycoris_", "lora_"):
        if name.startswith(prefix) and not name.startswith(("lora_te", "lora_te1", "lora_te2")):
            name = name[len(prefix):]
            break
    te = re.match(r"lora_(te\d?)_", name)
    if te:
        return te.group(1)
    name = re.sub(r"^(unet|transformer|diffusion_model|model)[._]", "", name)
    if name.startswith(("text_encoder", "text_model")):
        return "te"
    match = re.match(r"(input_blocks|output_blocks|down_blocks|up_blocks|double_blocks|single_blocks|joint_blocks|"
                     r"transformer_blocks|single_transformer_blocks)[._](\d+)", name)
    if match:
        return f"{match.group(1)}_{match.group(2)}"
    match = re.match(r"(middle_block|mid_block)", name)
    return match.group(1) if match else name.split(".")[0].split("_")[0]


def _base_from_shapes(modules: Mapping[str, dict[str, tuple[int, ...]]], metadata: Mapping[str, str]) -> tuple[str, str]:
    names = " ".join(modules)
    if re.search(r"(double_blocks|single_blocks|single_transformer_blocks)[._]\d", names):
        return "Flux", "Flux block names (double_blocks / single_blocks)"
    if re.search(r"joint_blocks[._]\d", names):
        return "SD3", "SD3 block names (joint_blocks)"
    for module, tensors in modules.items():
        if re.search(r"attn2[._]to_k$", module):
            down = next((s for k, s in tensors.items() if _DOWN.search(k) or k.endswith(".hada_w1_b")), None)
            if down is not None and len(down) >= 2 and down[1] in CONTEXT_WIDTH:
                return CONTEXT_WIDTH[down[1]], f"cross-attention to_k reads {down[1]}-wide text ({module})"
    if re.search(r"lora_te[12]_", names):
        return "SDXL", "two text encoders (lora_te1 / lora_te2)"
    for module, tensors in modules.items():
        if re.search(r"(q_proj|fc1)$", module):
            down = next((s for k, s in tensors.items() if _DOWN.search(k)), None)
            if down is not None and len(down) >= 2 and down[1] in TEXT_WIDTH:
                return TEXT_WIDTH[down[1]], f"text encoder width {down[1]} ({module})"
    version = str(metadata.get("ss_base_model_version", ""))
    for prefix, base in _KOHYA_BASE:
        if version.startswith(prefix):
            return base, f"metadata ss_base_model_version={version}"
    if str(metadata.get("ss_v2", "")) == "True":
        return "SD2", "metadata ss_v2=True"
    return "unknown", "no shape or metadata tells the base model"


def kohya_facts(metadata: Mapping[str, str]) -> dict[str, Any]:
    """The training facts of kohya's ``ss_*`` metadata, with the most frequent tags as trigger words."""
    facts: dict[str, Any] = {}
    names = {
        "base_model": "ss_sd_model_name", "base_model_hash": "ss_new_sd_model_hash",
        "base_model_legacy_hash": "ss_sd_model_hash", "base_model_version": "ss_base_model_version",
        "resolution": "ss_resolution", "epochs": "ss_num_epochs", "epoch": "ss_epoch", "steps": "ss_steps",
        "images": "ss_num_train_images", "network_module": "ss_network_module", "network_dim": "ss_network_dim",
        "network_alpha": "ss_network_alpha", "output_name": "ss_output_name", "clip_skip": "ss_clip_skip",
        "learning_rate": "ss_learning_rate", "training_started_at": "ss_training_started_at",
    }
    for name, key in names.items():
        value = metadata.get(key)
        if value not in (None, "", "None"):
            facts[name] = value
    args = metadata.get("ss_network_args")
    if args:
        try:
            facts["network_args"] = json.loads(args) if isinstance(args, str) else args
        except ValueError:
            facts["network_args"] = args
    tags = _tag_counts(metadata.get("ss_tag_frequency"))
    if tags:
        facts["trigger_words"] = [t for t, _ in tags.most_common(TRIGGER_WORDS)]
        facts["tags"] = len(tags)
    return facts


def _tag_counts(raw: Any) -> Counter:
    counts: Counter = Counter()
    if not raw:
        return counts
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return counts
    if not isinstance(data, dict):
        return counts
    for folder in data.values():
        if isinstance(folder, dict):
            for tag, n in folder.items():
                if isinstance(n, (int, float)) and str(tag).strip():
                    counts[str(tag).strip()] += int(n)
    return counts


def _network_name(types: Counter, modules: Mapping[str, dict[str, tuple[int, ...]]]) -> str:
    kinds = [k for k in ("LoRA", "LoHa", "LoKr", "OFT", "GLoRA", "IA3", "full", "norm") if types.get(k)]
    if "LoRA" in kinds:
        conv = any(len(s) == 4 and s[2] * s[3] > 1 for t in modules.values() for k, s in t.items() if _DOWN.search(k))
        kinds[kinds.index("LoRA")] = "LoCon" if conv else "LoRA"
    name = "+".join(kinds) or "unknown"
    return f"DoRA ({name})" if types.get("DoRA") else name


def _rank(tensors: Mapping[str, tuple[int, ...]]) -> int | None:
    for key, shape in tensors.items():
        if _DOWN.search(key) and shape:
            return shape[0]
        if key.endswith(".hada_w1_b") and shape:
            return shape[0]
        if key.endswith(".lokr_w2_a") and len(shape) >= 2:
            return shape[1]
        if key.endswith(".lokr_w1_a") and len(shape) >= 2:
            return shape[1]
    return None


def summarise_network(
    shapes: Mapping[str, tuple[int, ...]], read_scalar: Callable[[str], float | None], metadata: Mapping[str, str]
) -> NetworkSummary:
    """Summarise a LoRA / LyCORIS file.

    Args:
        shapes: key -> shape of every tensor.
        read_scalar: reads one scalar tensor (the ``alpha`` values); ``None`` when unreadable.
        metadata: the file's ``__metadata__``.
    """
    modules: dict[str, dict[str, tuple[int, ...]]] = defaultdict(dict)
    for key, shape in shapes.items():
        split = _split(key)
        if split is not None:
            modules[split[0]][key] = shape
    per_module_type: Counter = Counter()
    ranks: Counter = Counter()
    alphas: Counter = Counter()
    blocks: dict[str, Block] = {}
    for module, tensors in modules.items():
        kinds = {_split(k)[1] for k in tensors} - {"alpha"}
        if not kinds:
            continue
        for kind in sorted(kinds):  # sorted: a set's order changes with the hash seed, the JSON must not
            per_module_type[kind] += 1
        rank = _rank(tensors)
        alpha_key = next((k for k in tensors if k.endswith(".alpha")), None)
        alpha = read_scalar(alpha_key) if alpha_key is not None else None
        block = blocks.setdefault(_block_of(module), Block(_block_of(module)))
        block.modules += 1
        if rank is not None:
            ranks[rank] += 1
            block.ranks[rank] += 1
        if alpha is not None:
            alphas[alpha] += 1
            block.alphas[alpha] += 1
    base, evidence = _base_from_shapes(modules, metadata)
    ordered = sorted(blocks.values(), key=_block_order)
    context = next((shape[1] for module, tensors in modules.items() if re.search(r"attn2[._]to_k$", module)
                    for key, shape in tensors.items() if _DOWN.search(key) and len(shape) >= 2), None)
    return NetworkSummary(
        network=_network_name(per_module_type, modules), base=base, base_evidence=evidence,
        modules=sum(b.modules for b in ordered), module_types=dict(sorted(per_module_type.items())), ranks=dict(ranks),
        alphas=dict(alphas), blocks=ordered, text_encoder=any(b.name.startswith("te") for b in ordered),
        training=kohya_facts(metadata), context=context,
    )


def _block_order(block: Block) -> tuple[int, str, int]:
    order = ("te", "te1", "te2", "input_blocks", "down_blocks", "middle_block", "mid_block", "output_blocks",
             "up_blocks", "double_blocks", "single_blocks", "joint_blocks", "transformer_blocks",
             "single_transformer_blocks")
    match = re.match(r"(.+?)_(\d+)$", block.name)
    family, index = (match.group(1), int(match.group(2))) if match else (block.name, 0)
    return (order.index(family) if family in order else len(order), family, index)


def summarise_embedding(shapes: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str]) -> EmbeddingSummary:
    """Summarise a textual-inversion embedding (A1111 .pt, kohya ``emb_params``, SDXL clip_l + clip_g)."""
    widths = {k: s[-1] for k, s in shapes.items() if s and not k.startswith("string_to_token")}
    vectors = max((s[0] if len(s) == 2 else 1 for k, s in shapes.items() if k in widths), default=0)
    if {"clip_l", "clip_g"} <= set(widths):
        base = "SDXL" if (widths["clip_l"], widths["clip_g"]) == (768, 1280) else "unknown"
    else:
        found = {EMBEDDING_WIDTH.get(w, f"unknown ({w} wide)") for w in widths.values()}
        base = found.pop() if len(found) == 1 else "unknown"
    training = {k: metadata[k] for k in ("ss_base_model_version", "ss_sd_model_name", "ss_num_epochs") if k in metadata}
    return EmbeddingSummary(vectors, base, widths, training)


def network_fits(summary: NetworkSummary | EmbeddingSummary, checkpoint_base: str) -> bool | None:
    """Whether a network or embedding is for a checkpoint of ``checkpoint_base`` (``None``: cannot tell)."""
    if summary.base == "unknown" or checkpoint_base in ("", "unknown"):
        return None
    base = summary.base.split(" ")[0]
    return base == checkpoint_base


# Architecture ids of models a network can be applied to, by base (signature families have no table base).
_SIGNATURE_BASE = {"Flux": "Flux", "Flux-transformer": "Flux", "SD3": "SD3", "SD3-transformer": "SD3"}


def checkpoint_base(architecture: str, family_base: str | None) -> str:
    """The base (SD1, SD2, SDXL, Flux, SD3) of an identified checkpoint or UNet, ``unknown`` otherwise."""
    if family_base in ("SD1", "SD2", "SDXL"):
        return family_base
    return _SIGNATURE_BASE.get(architecture, "unknown")


def fit_reason(summary: NetworkSummary | EmbeddingSummary, architecture: str, base: str,
               text_encoders: Collection[str], context: int | None = None
               ) -> tuple[bool | None, str, dict[str, Any]]:
    """Does it fit? ``(answer, why, its figures)`` for a network or embedding against a checkpoint:
    ``why`` is a message id of the catalogue (``fit.*`` in lib_modeldoc/report/locales), which words it.

    ``context``: the width of text the checkpoint's cross-attention reads, when it has a UNet
    (the SDXL refiner reads 1280 where SDXL base LoRAs were trained on 2048).
    """
    fits = network_fits(summary, base)
    what = "lora" if isinstance(summary, NetworkSummary) else "embedding"
    facts: dict[str, Any] = {"adapter_base": summary.base, "architecture": architecture, "base": base}
    if (fits and isinstance(summary, NetworkSummary) and summary.context and context
            and summary.context != context):
        return False, "fit.context", {**facts, "adapter_context": summary.context, "context": context}
    if fits is None:
        return None, f"fit.unknown.{what}", facts
    if not fits:
        return False, f"fit.no.{what}", facts
    if isinstance(summary, NetworkSummary) and summary.text_encoder and not text_encoders:
        return True, "fit.unet_only", facts
    if isinstance(summary, EmbeddingSummary) and base == "SDXL" and set(summary.widths) != {"clip_l", "clip_g"}:
        return False, "fit.sdxl_embedding", facts
    return True, "fit.yes", facts
