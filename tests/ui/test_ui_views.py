"""The tab's HTML (no gradio needed): verdict first, chart, details, plan; everything escaped."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.samples import family_specs, write_demo_sample, write_safetensors_sample
from lib_modeldoc.ui import views
from lib_modeldoc.ui.actions import default_output_name, output_path
from lib_modeldoc.ui.host import Choice, Session, resolve_choice


def test_verdict_of_the_damaged_sample_says_what_is_wrong_what_to_do_and_the_gain(tmp_path):
    report = inspect_model(write_demo_sample(str(tmp_path)))
    html = views.verdict_html(report)
    assert 'data-verdict="error"' in html
    assert "Damaged — 1 error, 2 warnings" in html
    assert "CLIP position_ids are shifted at 2 of 77 positions" in html
    assert "Space to gain: <b>6.06 GB</b> (8.20 GB → 2.13 GB" in html
    assert "“Fix CLIP position_ids” resets the shifted ids; the junk is dropped; float64 is narrowed" in html
    assert html.index("Damaged") < html.index("Space to gain") < html.index("What to do")


def test_chart_has_a_segment_per_component_and_the_pruned_bar(tmp_path):
    report = inspect_model(write_demo_sample(str(tmp_path)))
    html = views.chart_html(report)
    for name in ("unet", "vae", "clip_l", "ema_unet", "junk"):
        assert f"modeldoc-seg-{name}" in html
    assert 'data-bar="pruned"' in html and "2.13 GB" in html
    assert "UNet 3.44 GB (42%)" in html


def test_healthy_file_verdict_and_no_pruned_bar(tmp_path):
    specs = family_specs("SDXL", dtype="F16")
    ids = {s.key: np.arange(77, dtype=np.int64).reshape(s.shape) for s in specs if s.key.endswith("position_ids")}
    report = inspect_model(write_safetensors_sample(str(tmp_path / "xl.safetensors"), specs, ids))
    assert 'data-verdict="ok"' in views.verdict_html(report)
    assert "Healthy" in views.verdict_html(report)
    assert 'data-bar="pruned"' not in views.chart_html(report)
    assert "CLIP-G" in views.details_html(report)


def test_everything_from_the_file_is_escaped(tmp_path):
    name = tmp_path / "<img src=x onerror=alert(1)>.safetensors"
    specs = family_specs("VAE", dtype="F16")
    write_safetensors_sample(str(name), specs, metadata={"evil": "<script>alert(1)</script>"})
    report = inspect_model(str(name))
    for html in (views.verdict_html(report), views.details_html(report), views.chart_html(report)):
        assert "<img" not in html and "<script" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;.safetensors" in views.verdict_html(report)


def test_plan_preview_and_result_messages():
    plan = {"source_size_bytes": 8_000_000_000, "size_bytes": 2_000_000_000, "format": "safetensors", "keys": 10,
            "changes": ["dropped ema (<3 GB>)"], "warnings": ["careful"]}
    html = views.plan_html(plan, "/out/x.safetensors", exists=True, description="Plan for <x>")
    assert "8.00 GB → 2.00 GB" in html and "saves 6.00 GB" in html
    assert "dropped ema (&lt;3 GB&gt;)" in html and "exists" in html and "Plan for &lt;x&gt;" in html
    done = views.result_html({"output": "/out/x.safetensors", "size_bytes": 2_000_000_000, "keys": 10, "verified": True},
                             listed_as="x.safetensors")
    assert "Wrote /out/x.safetensors (2.00 GB, 10 tensors) and verified" in done and "Listed as" in done


def test_output_names_and_paths(tmp_path):
    assert default_output_name("/m/merge.ckpt") == "merge-fixed.safetensors"
    assert default_output_name("/m/merge.safetensors", "ckpt") == "merge-fixed.ckpt"
    assert output_path(str(tmp_path), "out.safetensors", "ckpt") == str(tmp_path / "out.ckpt")
    assert output_path(str(tmp_path), "../../etc/out", "safetensors") == str(tmp_path / "out.safetensors")


def test_choices_resolve_labels_then_paths(tmp_path):
    choices = [Choice("a [123]", "/models/a.safetensors"), Choice("VAE: v", "/models/VAE/v.pt", "vae")]
    assert resolve_choice("a [123]", choices) == "/models/a.safetensors"
    assert resolve_choice("VAE: v", choices) == "/models/VAE/v.pt"
    assert resolve_choice(f' "{tmp_path}/x.ckpt" ', choices) == f"{tmp_path}/x.ckpt"
    assert resolve_choice("  ", choices) is None


def test_sessions_are_independent_copies():
    import copy

    first = Session()
    first.written = "/a"
    second = copy.deepcopy(first)
    assert second is not first and second.written is None
    first.begin("task(1)")
    second.begin("task(1)")
    first.interrupt()
    assert first.stopped() and not second.stopped()


def test_the_cli_never_imports_gradio(tmp_path):
    path = write_demo_sample(str(tmp_path))
    code = ("import sys; from lib_modeldoc.cli import main; rc = main(['inspect', sys.argv[1], '--brief']); "
            "assert 'gradio' not in sys.modules, 'gradio imported'; sys.exit(rc)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", code, path], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Verdict: damaged" in done.stdout
