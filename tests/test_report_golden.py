"""Golden snapshots of ``inspect``: its ``--json`` (the CLI contract, byte for byte), its text and the tab's HTML.

The files under ``tests/golden/inspect`` were written by the code before the report became typed
objects; every later change to how a report is built or rendered must leave them unchanged. Only
the temporary folder and wall-clock seconds are masked. ``MODELDOC_UPDATE_GOLDEN=1`` rewrites them
(do that only for a deliberate change of output, and review the diff).
"""

from __future__ import annotations

import os
import pathlib
import re
import sys

import numpy as np
import pytest

from lib_modeldoc.samples import (
    Spec, broken_position_ids, family_specs, write_demo_sample, write_safetensors_sample, write_sample,
)

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden" / "inspect"
UPDATE = bool(os.environ.get("MODELDOC_UPDATE_GOLDEN"))
SD1_POS = "cond_stage_model.transformer.text_model.embeddings.position_ids"


def _ids(specs):
    return {s.key: np.arange(s.shape[-1], dtype=np.int64).reshape(s.shape) for s in specs if s.key.endswith("position_ids")}


def _healthy_sd1(folder):
    specs = family_specs("SD1")
    return write_safetensors_sample(os.path.join(folder, "healthy-sd1.safetensors"), specs, _ids(specs))


def _sdxl_ema_float_ids(folder):
    specs = family_specs("SDXL", ema=True)
    values = _ids(specs)
    key = next(k for k in values if k.startswith("conditioner.embedders.0"))
    specs = [Spec(s.key, "F32", s.shape) if s.key == key else s for s in specs]
    values[key] = broken_position_ids({})
    return write_safetensors_sample(os.path.join(folder, "sdxl-ema.safetensors"), specs, values)


def _sd1_no_vae(folder):
    specs = family_specs("SD1", components=["unet", "clip_l"])
    return write_safetensors_sample(os.path.join(folder, "sd1-no-vae.safetensors"), specs, _ids(specs))


def _unknown(folder):
    specs = [Spec("foo.weight", "F32", (3, 5)), Spec("bar.bias", "F64", (7,)), Spec("baz", "I32", (2, 2))]
    return write_safetensors_sample(os.path.join(folder, "unknown.safetensors"), specs,
                                    metadata={"note": "hello", "recipe": '{"a": [1, 2]}'})


def _sample(name):
    return lambda folder: write_sample(os.path.join(folder, f"{name}.safetensors"), name)


def _ckpt(folder):
    import torch

    path = os.path.join(folder, "tiny.ckpt")
    torch.save({"state_dict": {"a.weight": torch.ones(2, 3), "b": torch.zeros(4, dtype=torch.float64)},
                "global_step": 7}, path)
    return path


# case -> (how to make the file, extra inspect arguments)
CASES = {
    "demo-damaged-sd15": (lambda folder: write_demo_sample(folder), []),
    "healthy-sd1": (_healthy_sd1, []),
    "sdxl-ema-float-ids": (_sdxl_ema_float_ids, []),
    "sd1-no-vae": (_sd1_no_vae, []),
    "unknown": (_unknown, []),
    "ckpt": (_ckpt, []),
    "noobai-xl-vpred": (_sample("noobai-xl-vpred"), []),
    "flux1-dev-checkpoint": (_sample("flux1-dev-checkpoint"), []),
    "sd3-medium": (_sample("sd3-medium"), []),
    "controlnet-sdxl-diffusers": (_sample("controlnet-sdxl-diffusers"), []),
    "embedding-sdxl": (_sample("embedding-sdxl"), []),
    "lora-sd15-kohya-fit": (_sample("lora-sd15-kohya"), ["--fit", "{demo}"]),
    "lora-sdxl-fit": (_sample("lora-sdxl"), ["--fit", "{demo}"]),
    "lora-flux": (_sample("lora-flux"), []),
    "clip_l-scan-components": (_sample("clip_l"), ["--scan", "--components"]),
    "flux-ae-scan": (_sample("flux-ae"), ["--scan"]),
}


def _mask(text: str, folder: str) -> str:
    # the tab's pasteable command names this checkout and this Python: neither is part of the output's shape
    text = text.replace(folder, "<tmp>").replace(sys.executable, "<python>")
    text = text.replace(str(pathlib.Path(__file__).resolve().parent.parent), "<checkout>")
    text = re.sub(r'("seconds": )[0-9.e+-]+', r"\1<s>", text)
    return re.sub(r"in [0-9]+\.[0-9] s\b", "in <s> s", text)


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        return
    assert path.exists(), f"no golden file {path}: run with MODELDOC_UPDATE_GOLDEN=1 once"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden snapshot"


@pytest.mark.parametrize("case", sorted(CASES))
def test_inspect_output_matches_its_golden_snapshot(case, tmp_path, cli):
    make, extra = CASES[case]
    folder = str(tmp_path)
    demo = write_demo_sample(os.path.join(folder, "demo")) if "{demo}" in extra else ""
    path = make(folder)
    args = [a.replace("{demo}", demo) for a in extra]

    rc, out, err = cli("inspect", path, "--json", *args)
    assert rc == 0, err
    _check(f"{case}.json", _mask(out, folder))

    rc, out, err = cli("inspect", path, *args)
    assert rc == 0, err
    _check(f"{case}.txt", _mask(out, folder))

    rc, out, err = cli("inspect", path, "--brief", *args)
    assert rc == 0, err
    _check(f"{case}.brief.txt", _mask(out, folder))

    from lib_modeldoc.checks.diagnose import fit_adapter, inspect_model
    from lib_modeldoc.ui import views

    report = inspect_model(path, scan="--scan" in args, identify_components="--components" in args)
    if demo:
        report = fit_adapter(report, demo)
    html = "\n".join([views.verdict_html(report), views.verdict_html(report, dropped_by="Forge"),
                      views.chart_html(report), views.details_html(report)])
    _check(f"{case}.html", _mask(html, folder))


def test_several_paths_give_a_json_array_in_order(tmp_path, cli):
    folder = str(tmp_path)
    paths = [_healthy_sd1(folder), _unknown(folder)]
    rc, out, err = cli("inspect", *paths, "--json")
    assert rc == 0, err
    _check("several.json", _mask(out, folder))
