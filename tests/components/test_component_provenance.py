"""Every command that writes a model stamps it the same way: ``format=pt`` and one ``modeldoc`` record."""

from __future__ import annotations

import json

from components_support import read_metadata

NAME = "modèle-é.safetensors"  # a source name outside ASCII: stored as it is, not as \u escapes


def _header(path) -> bytes:
    with open(path, "rb") as f:
        return f.read(int.from_bytes(f.read(8), "little"))


def test_convert_replace_export_and_build_stamp_one_provenance(tmp_path, trimmed_tables, make_model, cli):
    src = make_model(NAME, "SD1", dtype="F32", metadata={"ss_note": "kept by convert and replace"})
    runs = {
        "convert": ("convert", src, "-o", tmp_path / "c.safetensors"),
        "replace": ("replace", src, "--component", "vae", "--from", src, "-o", tmp_path / "r.safetensors"),
        "export": ("export", src, "--component", "vae", "-o", tmp_path / "e.safetensors"),
        "build": ("build", "--arch", "SD1", "--unet", src, "--vae", src, "--clip", src, "-o", tmp_path / "b.safetensors"),
    }
    for command, argv in runs.items():
        rc, _, err = cli(*argv)
        assert (rc, err) == (0, ""), (command, err)
        out = argv[argv.index("-o") + 1]
        metadata = read_metadata(out)
        record = json.loads(metadata["modeldoc"])
        assert metadata["format"] == "pt", command
        assert NAME in record["source"] and record["changes"], command
        assert set(record) == {"version", "source", "changes"}, command
        assert NAME.encode() in _header(out), command  # not escaped in one command and plain in another
        assert ("ss_note" in metadata) == (command in ("convert", "replace")), command
