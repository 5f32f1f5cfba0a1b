"""The command line speaks the locale's language (zh_CN, ru_RU; English otherwise); ``--json`` stays English."""

from __future__ import annotations

import json
import os

import pytest

from lib_modeldoc.report.messages import Language
from lib_modeldoc.samples import write_demo_sample


@pytest.fixture
def damaged(tmp_path):
    return write_demo_sample(str(tmp_path))


def test_chinese_locale_prints_a_chinese_verdict_and_findings(damaged, cli, monkeypatch):
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    rc, out, err = cli("inspect", damaged)
    assert rc == 0, err
    assert "结论：已损坏（1 个错误，" in out
    assert "CLIP position_ids 在 77 个位置中有" in out  # the finding, with its numbers
    assert "convert --fix-clip 可修复" in out  # what fixes it, still in command-line terms
    assert "剪枝可节省" in out and "修复方法：" in out and "备注：" in out
    assert "Verdict" not in out and "shifted at" not in out


def test_russian_locale_prints_a_russian_verdict(damaged, cli, monkeypatch):
    monkeypatch.setenv("LC_ALL", "ru_RU.UTF-8")
    rc, out, err = cli("inspect", damaged, "--brief")
    assert rc == 0, err
    assert "Вердикт: повреждена (1 ошибка, " in out
    assert "CLIP position_ids сдвинуты в" in out
    assert "Verdict" not in out


def test_other_locales_and_json_stay_english(damaged, cli, monkeypatch):
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    rc, out, _ = cli("inspect", damaged, "--brief")
    assert "Verdict: damaged (1 error, " in out
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    rc, out, _ = cli("inspect", damaged, "--json")
    assert rc == 0
    findings = json.loads(out)["findings"]
    offset = next(f for f in findings if f["id"] == "clip.position_ids.offset")
    assert offset["message"].startswith("CLIP position_ids are shifted at ")
    assert "message_id" not in offset and "params" not in offset  # the contract's fields only
    assert not any("\u4e00" <= c <= "\u9fff" for c in out)


@pytest.mark.parametrize("encoding, expected", [("utf-8", "结论：已损坏"), ("cp1252", "Verdict: damaged")])
def test_an_output_that_cannot_hold_chinese_gets_english(damaged, encoding, expected):
    """A pipe in a Windows code page cannot hold Chinese: English, not a UnicodeEncodeError."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "LANG": "zh_CN.UTF-8", "PYTHONIOENCODING": encoding, "PYTHONPATH": root}
    env.pop("LC_ALL", None)
    done = subprocess.run([sys.executable, "-m", "lib_modeldoc", "inspect", damaged, "--brief"], env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout.decode(encoding)


def test_language_for_stream():
    import io

    from lib_modeldoc.report.messages import language_for_stream

    assert language_for_stream(Language.ZH, io.TextIOWrapper(io.BytesIO(), encoding="utf-8")) is Language.ZH
    assert language_for_stream(Language.RU, io.TextIOWrapper(io.BytesIO(), encoding="cp1251")) is Language.RU
    assert language_for_stream(Language.ZH, io.TextIOWrapper(io.BytesIO(), encoding="cp1252")) is Language.EN
