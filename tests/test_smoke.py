"""End-to-end: the demo sample is identified and its damage reported through the CLI."""

import json

from lib_modeldoc.cli import main
from lib_modeldoc.samples import write_demo_sample


def test_demo_sample_findings(tmp_path, capsys):
    path = write_demo_sample(str(tmp_path))
    assert main(["inspect", path, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["architecture"] == "SD1"
    ids = {f["id"] for f in report["findings"]}
    assert {"clip.position_ids.offset", "junk", "ema", "precision.fp64", "precision.waste"} <= ids
    assert report["clip_position_ids"][0]["wrong"] == [41, 76]
    assert report["junk"]["keys"] == 196
    assert report["ema"]["keys"] == 688  # the UNet copy + decay, num_updates
    assert 2_100_000_000 < report["pruned_size_bytes"] < 2_200_000_000


def test_missing_path_is_one_line_exit_2(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err == f"modeldoc: error: {tmp_path / 'nope.safetensors'}: no such file\n"
