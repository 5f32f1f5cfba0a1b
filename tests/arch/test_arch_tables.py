"""Invariants of the architecture data: tables parse, families reference them, fingerprints are unique.

The tables are generated from the shared reference key lists (tools/gen_tables.py); the tests
that compare against those lists skip when the shared reference folder is not checked out.
"""

from __future__ import annotations

import importlib.util
import itertools
import pathlib
import sys

import pytest

from lib_modeldoc.arch.families import EMA, FAMILIES, KNOWN_BUFFERS, Family, Mount
from lib_modeldoc.arch.identify import identify
from lib_modeldoc.arch.tables import DERIVED, TABLE_IDS, table

ROOT = pathlib.Path(__file__).resolve().parents[2]
REFERENCE_KEYS = ROOT.parent / "shared" / "reference" / "keys"
PACKAGE_TABLES = ROOT / "lib_modeldoc" / "arch" / "tables"
needs_reference = pytest.mark.skipif(
    not REFERENCE_KEYS.is_dir(),
    reason="needs the maintainers' reference key tables, kept outside this repository",
)

LORA_TABLES = {t for t in TABLE_IDS if t.startswith("lora_")}


def _reference_lines(name: str) -> set[str]:
    return {line.strip() for line in (REFERENCE_KEYS / name).read_text().splitlines() if line.strip()}


def _fmt(key: str, shape: tuple[int, ...]) -> str:
    return f"{key} [{','.join(str(d) for d in shape)}]"


# Tables ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("table_id", TABLE_IDS)
def test_every_table_parses(table_id):
    tab = table(table_id)
    assert tab.id == table_id
    assert len(tab.shapes) > 10
    for key, shape in tab.shapes.items():
        assert key and " " not in key
        assert all(isinstance(d, int) for d in shape)
        # -1 ("any size") only stands for LoRA ranks.
        assert all(d > 0 for d in shape) or (table_id in LORA_TABLES and all(d > 0 or d == -1 for d in shape))
    assert tab.optional <= set(tab.shapes)
    assert tab.required_keys == set(tab.shapes) - tab.optional


def test_position_ids_and_the_roberta_pooler_are_the_only_optional_keys():
    assert table("clip_l").optional == {"embeddings.position_ids"}
    assert table("clip_l").shapes["embeddings.position_ids"] == (1, 77)
    assert table("clip_g_hf").optional == {"text_model.embeddings.position_ids"}
    for xlmr in ("xlmr_m9", "xlmr_m18"):
        assert table(xlmr).optional == {"roberta.embeddings.position_ids", "roberta.pooler.dense.weight",
                                        "roberta.pooler.dense.bias"}
    assert all(not table(t).optional for t in TABLE_IDS if t not in ("clip_l", "clip_g_hf", "xlmr_m9", "xlmr_m18"))


def test_derived_tables_differ_from_their_base_only_where_said():
    for derived_id, (base_id, overrides) in DERIVED.items():
        derived, base = table(derived_id), table(base_id)
        removed = {k for k, v in overrides.items() if v is None}
        added = {k for k, v in overrides.items() if v is not None and k not in base.shapes}
        assert set(derived.shapes) == (set(base.shapes) - removed) | added
        changed = {k for k in derived.shapes if k in base.shapes and derived.shapes[k] != base.shapes[k]}
        assert changed | added | removed == set(overrides)
    # SDXL inpaint / pix2pix change the input channels only; unCLIP adds label_emb; the ae VAE is 16-channel.
    assert set(DERIVED["unet_sdxl_inpaint"][1]) == {"input_blocks.0.0.weight"}
    assert {k.split(".")[0] for k in DERIVED["unet_sd2_unclip_h"][1]} == {"label_emb"}
    assert table("vae_16ch").shapes["decoder.conv_in.weight"] == (512, 16, 3, 3)
    assert not any(k.startswith(("quant_conv", "post_quant_conv")) for k in table("vae_16ch").shapes)


def test_every_family_slot_references_existing_tables():
    assert len({f.name for f in FAMILIES}) == len(FAMILIES)
    for fam in FAMILIES:
        assert fam.kind in ("checkpoint", "component")
        assert fam.slots and len({s.component for s in fam.slots}) == len(fam.slots)
        assert any(s.required for s in fam.slots), fam.name
        for slot in fam.slots:
            assert slot.tables and slot.mounts, (fam.name, slot.component)
            for table_id in slot.tables:
                assert table_id in TABLE_IDS, (fam.name, slot.component, table_id)


def test_checkpoint_families_have_an_optional_ema_slot_mirroring_the_unet():
    for fam in FAMILIES:
        if fam.kind != "checkpoint":
            continue
        ema = fam.slot("ema_unet")
        assert ema is not None and not ema.required, fam.name
        assert ema.tables == fam.slot("unet").tables
        assert ema.mounts == (Mount(EMA, ema=True),)


def test_no_table_key_is_a_known_buffer():
    for fam in FAMILIES:
        for slot in fam.slots:
            for table_id, mount in itertools.product(slot.tables, slot.mounts):
                clash = {mount.key(k) for k in table(table_id).shapes} & KNOWN_BUFFERS
                assert not clash, (fam.name, table_id, clash)


# Fingerprints ---------------------------------------------------------------------------------

def _combinations(fam: Family):
    """Every way to fill the family's required-or-not component slots (EMA left out)."""
    slots = [s for s in fam.slots if s.component != "ema_unet"]
    choices = [[(s.component, t, m) for t in s.tables for m in s.mounts] for s in slots]
    return list(itertools.product(*choices))


def _header(combo) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for _, table_id, mount in combo:
        for key, shape in table(table_id).shapes.items():
            shapes[mount.key(key)] = tuple(abs(d) for d in shape)
    return shapes


_CASES = [
    pytest.param(fam, combo, id=f"{fam.name}:" + "+".join(f"{t}@{m.prefix or '-'}" for _, t, m in combo))
    for fam in FAMILIES
    for combo in _combinations(fam)
]


@pytest.mark.parametrize(("fam", "combo"), _CASES)
def test_each_full_header_identifies_as_its_own_family(fam, combo):
    """(table, mount) fingerprints are unique: a family's complete key set names that family."""
    header = _header(combo)
    ident = identify(header)
    assert ident.architecture == fam.name, ident.evidence
    for component, table_id, mount in combo:
        slot = ident.slot(component)
        assert (slot.table, slot.mount) == (table_id, mount)
        assert slot.complete, (component, slot.missing[:3], slot.mismatched[:3])
    # Within one file no key belongs to two components.
    owners = [k for s in ident.slots for k in s.keys]
    assert len(owners) == len(set(owners)) == len(header)


def test_no_two_families_share_a_full_key_set():
    seen: dict[frozenset, str] = {}
    for fam in FAMILIES:
        for combo in _combinations(fam):
            fingerprint = frozenset(_header(combo).items())
            assert fingerprint not in seen, f"{fam.name} and {seen.get(fingerprint)} accept the same header"
            seen[fingerprint] = fam.name


@pytest.mark.parametrize("name", [f.name for f in FAMILIES if f.kind == "checkpoint"])
def test_full_header_with_ema_keeps_its_family_and_claims_every_ema_key(name):
    from lib_modeldoc.samples import family_specs

    specs = family_specs(name, ema=True)
    ident = identify({s.key: s.shape for s in specs})
    assert ident.architecture == name
    ema = ident.slot("ema_unet")
    assert ema.complete and len(ema.keys) == len(table(ident.slot("unet").table).shapes)


# The EMA naming rule and the generator, against the reference ---------------------------------

@pytest.fixture
def gen_tables(monkeypatch):
    """tools/gen_tables.py as a module (tools/ is no package), leaving no bytecode behind."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    spec = importlib.util.spec_from_file_location("gen_tables", ROOT / "tools" / "gen_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_reference
@pytest.mark.parametrize(("unet", "reference"), [
    ("unet_sd1", "UNET-v1-EMA.txt"),
    ("unet_sd1_pix2pix", "UNET-v1-Pix2Pix-EMA.txt"),
])
def test_ema_rule_reproduces_the_reference_ema_table(unet, reference):
    mount = Mount(EMA, ema=True)
    produced = {_fmt(mount.key(k)[len(EMA):], shape) for k, shape in table(unet).shapes.items()}
    assert produced == _reference_lines(reference)
    # And the mount puts them where LitEma does: no dot after the prefix.
    assert mount.key("input_blocks.0.0.weight") == "model_ema.diffusion_modelinput_blocks00weight"


@needs_reference
def test_package_tables_match_their_reference_lists(gen_tables):
    gen = gen_tables
    for stem, table_id in gen.TABLES.items():
        produced = {_fmt(k, s) for k, s in table(table_id).shapes.items()}
        assert produced == _reference_lines(f"{stem}.txt"), table_id


@needs_reference
def test_gen_tables_regenerates_byte_identical_tables(gen_tables, tmp_path, capsys):
    gen = gen_tables
    assert gen.main([str(REFERENCE_KEYS), str(tmp_path)]) == 0
    assert str(tmp_path) in capsys.readouterr().out
    produced = sorted(p.name for p in tmp_path.iterdir())
    shipped = sorted(p.name for p in PACKAGE_TABLES.iterdir() if p.is_file())
    assert produced == shipped
    for name in produced:
        assert (tmp_path / name).read_bytes() == (PACKAGE_TABLES / name).read_bytes(), name


@needs_reference
@pytest.mark.parametrize(("reference", "table_id"), [("LoRA-v1-UNET.txt", "lora_unet_sd1_a"),
                                                     ("LoRA-v1-CLIP.txt", "lora_clip_sd1_a")])
def test_lora_reference_lists_without_alpha_are_the_shipped_tables_less_alpha(reference, table_id):
    without_alpha = {_fmt(k, s) for k, s in table(table_id).shapes.items() if not k.endswith(".alpha")}
    assert len(without_alpha) < len(table(table_id).shapes)
    assert without_alpha == _reference_lines(reference)


@needs_reference
def test_gen_tables_refuses_a_reference_that_is_not_its_derived_table(gen_tables, tmp_path):
    """The inpainting UNet ships as unet_sd1 + one changed conv; a reference saying otherwise stops the run."""
    assert "unet_sd1_inpaint.txt" not in {p.name for p in PACKAGE_TABLES.iterdir()}
    assert DERIVED["unet_sd1_inpaint"][0] == "unet_sd1"
    keys = tmp_path / "keys"
    keys.mkdir()
    for source in REFERENCE_KEYS.glob("*.txt"):
        (keys / source.name).write_bytes(source.read_bytes())
    (keys / "LICENSE.toolkit-data").write_bytes((REFERENCE_KEYS / "LICENSE.toolkit-data").read_bytes())
    inpaint = keys / "UNET-v1-Inpainting.txt"
    inpaint.write_text(inpaint.read_text().replace("input_blocks.0.0.bias [320]", "input_blocks.0.0.bias [321]"))
    with pytest.raises(SystemExit, match=r"UNET-v1-Inpainting.txt: not unet_sd1 \+ tables.DERIVED\['unet_sd1_inpaint'\]"):
        gen_tables.main([str(keys), str(tmp_path / "out")])


# Built tables: the builders' naming rules reproduce the reference lists they can be checked on ---

def test_clip_builder_reproduces_the_sd2_text_encoder(gen_tables):
    assert gen_tables.clip_text(1024, 24, 1024) == dict(table("clip_h").shapes)


def test_hf_clip_builder_reproduces_the_sd1_text_encoder(gen_tables):
    assert gen_tables.hf_clip_text(768, 12) == dict(table("clip_l").shapes)


def test_controlnet_builder_reproduces_the_sd1_controlnet(gen_tables):
    assert gen_tables.controlnet(dict(table("unet_sd1").shapes)) == dict(table("controlnet_sd1").shapes)


@pytest.mark.parametrize("table_id", ["unclip_embedder_h", "unclip_embedder_l", "xlmr_m9", "xlmr_m18", "clip_g_hf",
                                      "controlnet_sd2", "controlnet_sdxl"])
def test_built_tables_are_what_the_builders_make(gen_tables, table_id):
    build, inputs = gen_tables.BUILT[table_id]
    assert dict(table(table_id).shapes) == build(*(dict(table(t).shapes) for t in inputs))
    text = (PACKAGE_TABLES / f"{table_id}.txt").read_text()
    assert text.startswith("# generated by tools/gen_tables.py (built by ")


def test_built_tables_hold_the_published_sizes():
    h, l = table("unclip_embedder_h").shapes, table("unclip_embedder_l").shapes
    assert h["ln_final.weight"] == (1024,) and l["ln_final.weight"] == (768,)  # AUTOMATIC1111's H/L test key
    assert h["visual.proj"] == (1280, 1024) and l["visual.proj"] == (1024, 768)
    assert not any(k.startswith("transformer.") for k in h)  # unCLIP-H deletes the text transformer
    assert table("xlmr_m9").shapes["transformation.weight"] == (768, 1024)
    assert table("xlmr_m18").shapes["transformation.weight"] == (1024, 1024)  # AUTOMATIC1111's m18 test
    assert table("controlnet_sdxl").shapes["label_emb.0.0.weight"] == (1280, 2816)
    assert table("controlnet_sdxl").shapes["zero_convs.8.0.weight"] == (1280, 1280, 1, 1)
    assert "zero_convs.9.0.weight" not in table("controlnet_sdxl").shapes
    assert table("controlnet_sd2").shapes["input_blocks.1.1.proj_in.weight"] == (320, 320)  # linear, as SD2
