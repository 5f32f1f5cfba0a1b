"""Generate lib_modeldoc/arch/tables/*.txt from the reference key tables.

Usage: python tools/gen_tables.py [REFERENCE_KEYS_DIR [OUTPUT_DIR]]

OUTPUT_DIR defaults to the package's ``lib_modeldoc/arch/tables`` (a test regenerates into a
temporary folder and compares).

The reference tables (one ``key [shape]`` line per tensor, keys relative to the component's
mount point) are facts recorded from the public SD architectures; this script renames them to
the package's table ids, normalises the lines and sorts them. Not copied:

- a reference list that is a shipped table plus a few changed keys (the inpainting /
  InstructPix2Pix / depth UNets: one input conv): ``lib_modeldoc.arch.tables.DERIVED`` states the
  difference, and this script checks that the base table with that difference is exactly the
  reference list (and fails if not);
- the LoRA-v1 lists: the LoRA-v1A lists less the ``.alpha`` keys (a test checks); only the v1A
  tables are used (``lib_modeldoc.samples``' kohya LoRA samples);
- the EMA tables: EMA keys follow from the UNet keys by a rule (see ``arch/families.py``), which a
  test checks against the reference.

Components the reference lists lack are *built* from their published structure (:data:`BUILT`:
widths, depths, patch sizes from the models' inference configs) by the same naming rules that
reproduce a reference list exactly (a test rebuilds CLIP-v2-SD and ControlNet-v1-SD this way):
the OpenCLIP / OpenAI-CLIP towers of SD 2.1 unCLIP's image embedder, AltDiffusion's XLM-RoBERTa
text encoder (AUTOMATIC1111 ``modules/xlmr.py``, ``xlmr_m18.py``), and the SD2 / SDXL ControlNets
(the UNet's encoder half, as ``cldm`` builds it from the UNet config).
"""

from __future__ import annotations

import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from lib_modeldoc.arch.tables import DERIVED, derive  # noqa: E402  (the repository root, not an install)

# reference file stem -> package table id
TABLES = {
    "UNET-v1-SD": "unet_sd1",
    "UNET-v1-Inpainting": "unet_sd1_inpaint",
    "UNET-v1-Pix2Pix": "unet_sd1_pix2pix",
    "UNET-v2-SD": "unet_sd2",
    "UNET-v2-Inpainting": "unet_sd2_inpaint",
    "UNET-v2-Depth": "unet_sd2_depth",
    "UNET-XL-SD": "unet_sdxl",
    "UNET-XL-Refiner": "unet_sdxl_refiner",
    "VAE-v1-SD": "vae",
    "CLIP-v1-SD": "clip_l",
    "CLIP-v2-SD": "clip_h",
    "CLIP-v2-WD": "clip_h_wd",
    "CLIP-XL-SD": "clip_g",
    "Depth-v2-SD": "depth_midas",
    "ControlNet-v1-SD": "controlnet_sd1",
    "LoRA-v1A-UNET": "lora_unet_sd1_a",
    "LoRA-v1A-CLIP": "lora_clip_sd1_a",
}
LINE = re.compile(r"^(\S+) \[(-?\d+(?:,-?\d+)*)?\]$")

Shapes = dict  # key -> shape tuple


# -- builders: naming rules of the public code, sizes from the configs --------------------------

def _ln(out: Shapes, prefix: str, width: int) -> None:
    out[prefix + "weight"] = (width,)
    out[prefix + "bias"] = (width,)


def _linear(out: Shapes, prefix: str, n_out: int, n_in: int) -> None:
    out[prefix + "weight"] = (n_out, n_in)
    out[prefix + "bias"] = (n_out,)


def clip_resblocks(prefix: str, layers: int, width: int) -> Shapes:
    """The residual attention blocks of OpenAI CLIP / OpenCLIP (``transformer.resblocks.N``)."""
    out: Shapes = {}
    for i in range(layers):
        b = f"{prefix}{i}."
        out[b + "attn.in_proj_weight"] = (3 * width, width)
        out[b + "attn.in_proj_bias"] = (3 * width,)
        _linear(out, b + "attn.out_proj.", width, width)
        _ln(out, b + "ln_1.", width)
        _ln(out, b + "ln_2.", width)
        _linear(out, b + "mlp.c_fc.", 4 * width, width)
        _linear(out, b + "mlp.c_proj.", width, 4 * width)
    return out


def clip_text_root(width: int, embed: int, vocab: int = 49408, context: int = 77) -> Shapes:
    """The text-side tensors at a CLIP model's root (without the text transformer)."""
    out: Shapes = {"token_embedding.weight": (vocab, width), "positional_embedding": (context, width),
                   "text_projection": (width, embed), "logit_scale": ()}
    _ln(out, "ln_final.", width)
    return out


def clip_text(width: int, layers: int, embed: int) -> Shapes:
    """A whole OpenCLIP text encoder (SD2's CLIP-H is ``clip_text(1024, 24, 1024)``)."""
    return {**clip_text_root(width, embed), **clip_resblocks("transformer.resblocks.", layers, width)}


def hf_clip_text(width: int, layers: int) -> Shapes:
    """A transformers ``CLIPTextModel``'s ``text_model`` (SD1's CLIP-L is ``hf_clip_text(768, 12)``)."""
    out: Shapes = {"embeddings.token_embedding.weight": (49408, width), "embeddings.position_embedding.weight": (77, width),
                   "embeddings.position_ids": (1, 77)}
    for i in range(layers):
        b = f"encoder.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            _linear(out, f"{b}self_attn.{name}.", width, width)
        _ln(out, b + "layer_norm1.", width)
        _ln(out, b + "layer_norm2.", width)
        _linear(out, b + "mlp.fc1.", 4 * width, width)
        _linear(out, b + "mlp.fc2.", width, 4 * width)
    _ln(out, "final_layer_norm.", width)
    return out


def clip_g_hf() -> Shapes:
    """OpenCLIP bigG as transformers ``CLIPTextModelWithProjection`` (SD3's ``clip_g.safetensors``)."""
    return {**{"text_model." + k: v for k, v in hf_clip_text(1280, 32).items()}, "text_projection.weight": (1280, 1280)}


def clip_vision(width: int, layers: int, patch: int, image: int, embed: int, prefix: str = "visual.") -> Shapes:
    """A CLIP vision transformer (OpenAI ``VisionTransformer``, OpenCLIP the same names)."""
    out: Shapes = {prefix + "conv1.weight": (width, 3, patch, patch), prefix + "class_embedding": (width,),
                   prefix + "positional_embedding": ((image // patch) ** 2 + 1, width),
                   prefix + "proj": (width, embed)}
    _ln(out, prefix + "ln_pre.", width)
    _ln(out, prefix + "ln_post.", width)
    out.update(clip_resblocks(prefix + "transformer.resblocks.", layers, width))
    return out


def unclip_embedder_h() -> Shapes:
    """SD 2.1 unCLIP-H ``embedder.model``: OpenCLIP ViT-H-14 with its text transformer deleted."""
    return {**clip_text_root(1024, 1024), **clip_vision(1280, 32, 14, 224, 1024)}


def unclip_embedder_l() -> Shapes:
    """SD 2.1 unCLIP-L ``embedder.model``: the whole OpenAI CLIP ViT-L/14 (``clip.load``)."""
    return {**clip_text(768, 12, 768), **clip_vision(1024, 24, 14, 224, 768)}


def xlm_roberta(project_dim: int, pre_transformation: bool) -> Shapes:
    """AltDiffusion's ``cond_stage_model``: XLM-RoBERTa large + a projection to the UNet's context.

    m9 (``modules/xlmr.py``): ``transformation`` 1024 -> 768 and ``pre_LN``; m18
    (``xlmr_m18.py``): ``transformation`` 1024 -> 1024, ``transformation_pre`` and ``pre_LN``.
    """
    width, inner, layers, vocab, positions = 1024, 4096, 24, 250002, 514
    out: Shapes = {"roberta.embeddings.word_embeddings.weight": (vocab, width),
                   "roberta.embeddings.position_embeddings.weight": (positions, width),
                   "roberta.embeddings.token_type_embeddings.weight": (1, width),
                   "roberta.embeddings.position_ids": (1, positions)}
    _ln(out, "roberta.embeddings.LayerNorm.", width)
    for i in range(layers):
        b = f"roberta.encoder.layer.{i}."
        for name in ("query", "key", "value"):
            _linear(out, f"{b}attention.self.{name}.", width, width)
        _linear(out, b + "attention.output.dense.", width, width)
        _ln(out, b + "attention.output.LayerNorm.", width)
        _linear(out, b + "intermediate.dense.", inner, width)
        _linear(out, b + "output.dense.", width, inner)
        _ln(out, b + "output.LayerNorm.", width)
    _linear(out, "roberta.pooler.dense.", width, width)
    _linear(out, "transformation.", project_dim, width)
    if pre_transformation:
        _linear(out, "transformation_pre.", project_dim, width)
    _ln(out, "pre_LN.", width)
    return out


HINT_CHANNELS = (16, 16, 32, 32, 96, 96, 256)  # cldm input_hint_block convs before the last


def controlnet(unet: Shapes) -> Shapes:
    """A ControlNet (``cldm.ControlNet``) built like the UNet it controls: its encoder half (time
    embedding, label embedding, input and middle blocks) plus one zero conv per input block, the
    middle block's zero conv and the hint encoder."""
    out: Shapes = {k: s for k, s in unet.items() if k.startswith(("time_embed.", "label_emb.", "input_blocks.", "middle_block."))}
    blocks = sorted({int(k.split(".")[1]) for k in out if k.startswith("input_blocks.")})
    for i in blocks:
        for key in (f"input_blocks.{i}.0.out_layers.3.weight", f"input_blocks.{i}.0.op.weight", f"input_blocks.{i}.0.weight"):
            if key in unet:
                channels = unet[key][0]
                break
        else:
            raise SystemExit(f"cannot tell the channels of input block {i}")
        out[f"zero_convs.{i}.0.weight"] = (channels, channels, 1, 1)
        out[f"zero_convs.{i}.0.bias"] = (channels,)
    middle = unet["middle_block.2.out_layers.3.weight"][0]
    out["middle_block_out.0.weight"] = (middle, middle, 1, 1)
    out["middle_block_out.0.bias"] = (middle,)
    channels_in = 3
    hint = (*HINT_CHANNELS, unet["input_blocks.0.0.weight"][0])
    for n, channels in enumerate(hint):
        out[f"input_hint_block.{2 * n}.weight"] = (channels, channels_in, 3, 3)
        out[f"input_hint_block.{2 * n}.bias"] = (channels,)
        channels_in = channels
    return out


# table id -> (builder, package tables it is built from)
BUILT = {
    "unclip_embedder_h": (unclip_embedder_h, ()),
    "unclip_embedder_l": (unclip_embedder_l, ()),
    "clip_g_hf": (clip_g_hf, ()),
    "xlmr_m9": (lambda: xlm_roberta(768, False), ()),
    "xlmr_m18": (lambda: xlm_roberta(1024, True), ()),
    "controlnet_sd2": (controlnet, ("unet_sd2",)),
    "controlnet_sdxl": (controlnet, ("unet_sdxl",)),
}


def parse(text: str) -> Shapes:
    shapes: Shapes = {}
    for line in text.splitlines():
        match = LINE.match(line.strip())
        if match:
            shapes[match.group(1)] = tuple(int(d) for d in match.group(2).split(",")) if match.group(2) else ()
    return shapes


def render(shapes: Shapes, origin: str) -> str:
    rows = sorted(f"{k} [{','.join(str(d) for d in s)}]" for k, s in shapes.items())
    return f"# generated by tools/gen_tables.py ({origin}); do not edit\n" + "\n".join(rows) + "\n"


def convert(source: pathlib.Path) -> str:
    rows = []
    for number, line in enumerate(source.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        match = LINE.match(line)
        if not match:
            raise SystemExit(f"{source}:{number}: not a 'key [shape]' line: {line!r}")
        rows.append(f"{match.group(1)} [{match.group(2) or ''}]")
    header = f"# generated by tools/gen_tables.py from {source.name}; do not edit\n"
    return header + "\n".join(sorted(set(rows))) + "\n"


def check_derived(table_id: str, source: pathlib.Path, target: pathlib.Path) -> None:
    """Fail unless the reference list ``source`` is exactly its ``DERIVED`` base table plus the overrides."""
    base_id, overrides = DERIVED[table_id]
    expected = parse(convert(source))
    produced = derive(parse((target / f"{base_id}.txt").read_text()), overrides)
    if produced != expected:
        changed = sorted(k for k in expected.keys() | produced.keys() if expected.get(k) != produced.get(k))
        raise SystemExit(f"{source.name}: not {base_id} + tables.DERIVED[{table_id!r}]; "
                         f"{len(changed)} keys differ, first {changed[:3]}")


def main(argv: list[str]) -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    source_dir = pathlib.Path(argv[0]) if argv else root.parent / "shared" / "reference" / "keys"
    target = pathlib.Path(argv[1]) if len(argv) > 1 else root / "lib_modeldoc" / "arch" / "tables"
    target.mkdir(parents=True, exist_ok=True)
    written = 0
    for stem, table_id in TABLES.items():
        if table_id not in DERIVED:
            (target / f"{table_id}.txt").write_text(convert(source_dir / f"{stem}.txt"))
            written += 1
    for stem, table_id in TABLES.items():
        if table_id in DERIVED:
            check_derived(table_id, source_dir / f"{stem}.txt", target)
    for table_id, (build, inputs) in BUILT.items():
        args = [parse((target / f"{name}.txt").read_text()) for name in inputs]
        origin = f"built by {getattr(build, '__name__', 'a builder')}" + (f" from {', '.join(inputs)}" if inputs else "")
        (target / f"{table_id}.txt").write_text(render(build(*args), origin))
    licence = source_dir / "LICENSE.toolkit-data"
    (target / "LICENSE.toolkit-data").write_text(licence.read_text())
    print(f"wrote {written + len(BUILT)} tables to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
