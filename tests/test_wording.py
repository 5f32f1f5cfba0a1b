"""One vocabulary: the engine gives repairs and remedies as ids and never names a flag; the command
line and the tab each word every id in their own terms, and nothing the tab shows names a flag."""

from __future__ import annotations

import ast
import pathlib
import re

import numpy as np
import pytest

from lib_modeldoc.report.advice import Note, Remedy, Repair, count
from lib_modeldoc.commands import wording as cli_wording
from lib_modeldoc.errors import OutputError, PlanError
from lib_modeldoc.ui import wording as tab_wording

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "lib_modeldoc"
FLAG = re.compile(r"(?<![\w-])--[a-z]")
# the command line's own modules may name its flags (render.py is its text report); the rest is the engine
# or the tab
CLI_MODULES = {"cli.py", "__main__.py", "commands", "report/render.py"}


@pytest.mark.parametrize("front_end", [cli_wording, tab_wording], ids=["cli", "tab"])
def test_every_id_has_wording_in_each_front_end(front_end):
    assert set(front_end.REPAIRS) == set(Repair), set(Repair) ^ set(front_end.REPAIRS)
    assert set(front_end.REMEDIES) == set(Remedy), set(Remedy) ^ set(front_end.REMEDIES)
    assert all(text.strip() for text in [*front_end.REPAIRS.values(), *front_end.REMEDIES.values()])


def test_the_tab_words_name_no_flag_and_the_command_line_words_name_its_options():
    for text in [*tab_wording.REPAIRS.values(), *tab_wording.REMEDIES.values()]:
        assert "--" not in text, text
    assert cli_wording.REMEDIES[Remedy.OVERWRITE] == "pass --overwrite to replace it"
    assert "--fix-clip" in cli_wording.REPAIRS[Repair.FIX_CLIP]
    assert "“Overwrite an existing file”" in tab_wording.REMEDIES[Remedy.OVERWRITE]


def _strings(tree: ast.AST):
    """``(line, text)`` of the string constants that are not docstrings, and of the f-strings: a replacement field
    reads as ``x``, so ``f"--{group} delete"`` is the flag ``--x`` (its pieces alone, ``"--"``, name none)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
        if isinstance(node, ast.JoinedStr):
            skip.update(id(part) for part in node.values)
            text = "".join(part.value if isinstance(part, ast.Constant) else "x" for part in node.values)
            yield node.lineno, text
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


def test_an_f_string_naming_a_flag_is_caught():
    found = [text for _, text in _strings(ast.parse('raise E(f"a and --{group} delete")\nx = "no flag"'))]
    assert [text for text in found if FLAG.search(text)] == ["a and --x delete"]


def test_the_engine_and_the_tab_never_name_a_command_line_flag():
    offenders = []
    scripts = sorted((PACKAGE.parent / "scripts").glob("*.py"))  # the WebUI adapter speaks in the tab too
    for file in [*sorted(PACKAGE.rglob("*.py")), *scripts]:
        relative = file.relative_to(PACKAGE.parent if file in scripts else PACKAGE)
        if file not in scripts and (relative.parts[0] in CLI_MODULES or relative.as_posix() in CLI_MODULES):
            continue
        for line, text in _strings(ast.parse(file.read_text(encoding="utf-8"))):
            if FLAG.search(text):
                offenders.append(f"{relative}:{line}: {text[:80]!r}")
    assert not offenders, "\n".join(offenders)


def test_errors_and_notes_carry_ids_and_each_front_end_words_them():
    error = OutputError("/m/x.safetensors: already exists", remedy=Remedy.OVERWRITE)
    assert str(error) == "/m/x.safetensors: already exists" and error.remedies == (Remedy.OVERWRITE,)
    assert cli_wording.say(error) == "/m/x.safetensors: already exists; pass --overwrite to replace it"
    assert tab_wording.say(error) == ("/m/x.safetensors: already exists; "
                                      "tick “Overwrite an existing file” to replace it")
    two = PlanError("no vae given for SD1", remedy=(Remedy.GIVE_VAE, Remedy.ALLOW_MISSING))
    assert cli_wording.say(two) == "no vae given for SD1; pass --vae FILE, or pass --allow-missing"
    assert tab_wording.say(two) == "no vae given for SD1; pick a file in “VAE from”, or tick “Allow a missing part”"
    note = Note("kept as the WebUI reads them, still wrong", Remedy.FIX_CLIP)
    assert note == "kept as the WebUI reads them, still wrong"  # JSON and provenance get the plain text
    assert cli_wording.say(note).endswith("; use --fix-clip to repair")
    assert tab_wording.say(note).endswith("; tick “Fix CLIP position_ids” to repair")
    assert cli_wording.say("plain text") == tab_wording.say("plain text") == "plain text"


def test_plural_agreement():
    assert (count(0, "tensor"), count(1, "tensor"), count(2, "tensor")) == ("0 tensors", "1 tensor", "2 tensors")


def test_what_the_tab_shows_names_its_controls_not_flags(tmp_path, sparse_model):
    """The damaged sample (shifted CLIP ids, junk, fp64, EMA) as the tab shows it, its plan without the CLIP
    fix, and the errors a Write can meet: every text in the tab's words."""
    from lib_modeldoc.checks.diagnose import inspect_model
    from lib_modeldoc.samples import write_demo_sample
    from lib_modeldoc.ui import actions, views

    sample = next(pathlib.Path(write_demo_sample(str(tmp_path / "s"))).parent.glob("*.safetensors"))
    report = inspect_model(str(sample))
    assert {f.repair for f in report.findings} >= {Repair.FIX_CLIP, Repair.PRUNE_EMA, Repair.CONVERT}
    shown = [views.verdict_html(report), views.details_html(report), views.chart_html(report)]
    assert "“Fix CLIP position_ids” in Fix / prune / convert fixes this" in shown[0]
    assert "EMA weights “no-ema” drops it" in shown[1]
    request = actions.ConvertRequest(str(sample), fix_clip=False, precision="fp8_e4m3fn", folder=str(tmp_path))
    plan = actions.preview(request)
    assert "tick “Fix CLIP position_ids” to repair" in plan and "set VAE to “copy”" in plan
    shown.append(plan)
    (tmp_path / "taken.safetensors").write_bytes(b"x")
    taken = actions.ConvertRequest(str(sample), folder=str(tmp_path), name="taken")

    class Job:
        def progress(self, *args):
            pass

        def cancelled(self):
            return False

    _, error = actions.guard(lambda: actions.run(taken, Job()))
    assert "tick “Overwrite an existing file” to replace it" in error
    shown.append(error)
    build = actions.BuildRequest("SD1", parts=(("unet", str(sample)),), folder=str(tmp_path))
    _, error = actions.guard(lambda: actions.preview(build))
    assert error and "Allow a missing part" in error, error
    shown.append(error)
    for html in shown:
        # a command line offered as such (a labelled, pasteable <code> line) is the one place for flags
        prose = re.sub(r'<div class="modeldoc-cli">.*?</div>', "", html)
        assert "--" not in prose, re.findall(r".{60}--.{30}", prose)


def test_one_tensor_is_one_tensor(tmp_path):
    from safetensors.numpy import save_file

    from lib_modeldoc.checks.diagnose import inspect_model
    from lib_modeldoc.report.render import verdict_lines
    from lib_modeldoc.ui import views

    path = tmp_path / "one.safetensors"
    save_file({"w": np.ones((2,), np.float32)}, str(path))
    report = inspect_model(str(path))
    assert "1 tensor" in verdict_lines(report)[0] and "1 tensors" not in verdict_lines(report)[0]
    assert "1 tensors" not in views.verdict_html(report) and "1 tensor<" in views.verdict_html(report)
