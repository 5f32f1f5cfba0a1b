"""One verdict: :func:`~lib_modeldoc.report.data.verdict` decides, the CLI's text and the tab word it."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.report.data import Finding, Health, Severity, TensorGroup, verdict
from lib_modeldoc.report.render import verdict_lines
from lib_modeldoc.samples import family_specs, write_demo_sample, write_safetensors_sample
from lib_modeldoc.ui.views import verdict_html

INFO = Finding("ema", Severity.INFO, "an EMA copy")
WARNING = Finding("junk", Severity.WARNING, "junk")
ERROR = Finding("clip.position_ids.offset", Severity.ERROR, "shifted")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return inspect_model(write_demo_sample(str(tmp_path_factory.mktemp("demo"))))


@pytest.mark.parametrize("findings, health, errors, warnings, line, state", [
    ((), Health.HEALTHY, 0, 0, "Verdict: healthy - nothing wrong found", "ok"),
    ((INFO,), Health.HEALTHY, 0, 0, "Verdict: healthy - nothing wrong found", "ok"),
    ((INFO, WARNING), Health.PROBLEMS, 0, 1, "Verdict: works, with problems (0 errors, 1 warning)", "warning"),
    ((WARNING, ERROR, WARNING), Health.DAMAGED, 1, 2, "Verdict: damaged (1 error, 2 warnings)", "error"),
])
def test_the_verdict_and_both_front_ends_agree(demo, findings, health, errors, warnings, line, state):
    report = dataclasses.replace(demo, findings=findings)
    judged = verdict(report)
    assert (judged.health, judged.errors, judged.warnings) == (health, errors, warnings)
    assert judged.problems == tuple(f for f in findings if f.severity is not Severity.INFO)
    assert verdict_lines(report)[1] == line
    assert f'data-verdict="{state}"' in verdict_html(report)


def test_the_report_is_frozen_and_its_parts_are_typed(demo):
    with pytest.raises(dataclasses.FrozenInstanceError):
        demo.findings = ()  # type: ignore[misc]
    assert demo.junk.groups[0].pattern == "embedding_manager.*" and demo.junk.groups[0].group == "embedding_manager"
    assert demo.ema.keys == 688
    obj = demo.to_dict()
    assert obj["junk"]["groups"][0] == {"pattern": "embedding_manager.*", "keys": demo.junk.groups[0].keys,
                                        "bytes": demo.junk.groups[0].bytes, "group": "embedding_manager"}
    assert all("group" not in g for g in obj["unknown"]["groups"])  # kept tensors have no junk group name
    assert TensorGroup("x.*", 1, 2).to_dict() == {"pattern": "x.*", "keys": 1, "bytes": 2}


def test_finding_params_stay_out_of_the_json():
    finding = Finding("precision.fp64", Severity.WARNING, "2 float64 tensors", params={"count": 2})
    assert finding.to_dict() == {"id": "precision.fp64", "severity": "warning", "message": "2 float64 tensors"}
    assert finding == Finding("precision.fp64", Severity.WARNING, "2 float64 tensors")


def test_a_healthy_file_is_healthy(tmp_path):
    specs = family_specs("SD1")
    ids = {s.key: np.arange(77, dtype=np.int64).reshape(s.shape) for s in specs if s.key.endswith("position_ids")}
    path = write_safetensors_sample(os.path.join(tmp_path, "sd1.safetensors"), specs, ids)
    assert verdict(inspect_model(path)).health is Health.HEALTHY
