"""The command line the tab shows: pasted as is into sh, the Command Prompt or PowerShell, each
shell reads back exactly the arguments meant (checked by parsers of each shell's rules), and on
this machine the sh line really runs from another folder."""

from __future__ import annotations

import ntpath
import os
import re
import shlex
import subprocess
import sys

import pytest

from lib_modeldoc.checks.diagnose import inspect_model
from lib_modeldoc.report.render import suggested_command
from lib_modeldoc.samples import write_demo_sample
from lib_modeldoc.shell import Shell, join, module_command, package_folder, quote, shells_for
from lib_modeldoc.ui import views

WEBUI_PYTHON = r"C:\Stable Diffusion\webui\venv\Scripts\python.exe"
EXTENSION = r"C:\Stable Diffusion\webui\extensions\sd-webui-modeldoc"

AWKWARD = [
    r"C:\models\plain.safetensors",
    r"D:\SD 模型\动漫 合并 v2.safetensors",
    r"E:\Модели\аниме (смесь) & co.ckpt",
    r"\\nas\share\models\it's 100%PATH% ^caret^.safetensors",
    r"C:\dir with trailing backslash" + "\\",
    r"%USERNAME%",
    "quote's ‘typographic’ marks",
    "",
    "-o",
    "--fix-clip",
    "C:\\" + "\\".join(["очень-длинная-папка-" + "я" * 20] * 12) + "\\модель.safetensors",
]


# Parsers of each shell's rules -----------------------------------------------------------------

def msvc_argv(line: str) -> list[str]:
    """How a Windows program's C runtime (and Python) splits its command line (VS 2008+ rules)."""
    args: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            return args
        word, quoted, started = [], False, False
        while i < n and (quoted or line[i] not in " \t"):
            started = True
            if line[i] == "\\":
                j = i
                while j < n and line[j] == "\\":
                    j += 1
                if j < n and line[j] == '"':
                    word.append("\\" * ((j - i) // 2))
                    if (j - i) % 2:
                        word.append('"')
                        i = j + 1
                    else:
                        i = j
                    continue
                word.append("\\" * (j - i))
                i = j
                continue
            if line[i] == '"':
                if quoted and i + 1 < n and line[i + 1] == '"':
                    word.append('"')
                    i += 2
                    continue
                quoted = not quoted
                i += 1
                continue
            word.append(line[i])
            i += 1
        if started:
            args.append("".join(word))


def cmd_line(line: str, env: dict[str, str]) -> str:
    """What cmd.exe hands the program: %NAME% expanded (defined names only), then ^ escapes
    removed outside quotes. Fails on an unquoted operator (& | < >), which would split the line."""
    expanded = re.sub(r"%([^%]+)%", lambda m: env.get(m.group(1).upper(), m.group(0)), line)
    out, quoted, i = [], False, 0
    while i < len(expanded):
        char = expanded[i]
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "^":
            i += 1
            char = expanded[i]
        elif not quoted and char in "&|<>":
            raise AssertionError(f"unquoted {char!r} in {line!r}")
        out.append(char)
        i += 1
    return "".join(out)


def cmd_argv(line: str) -> list[str]:
    env = {"PATH": r"C:\Windows\system32", "USERNAME": "someone"}
    return msvc_argv(cmd_line(line, env))


def powershell_words(line: str) -> list[str]:
    """PowerShell's reading of a line of bare words and '...' strings (quote marks doubled inside)."""
    words, i = [], 0
    marks = "'\u2018\u2019\u201a\u201b"
    while i < len(line):
        if line[i] == " ":
            i += 1
            continue
        if line[i] in marks:
            i += 1
            word = []
            while True:
                if line[i] in marks:
                    if i + 1 < len(line) and line[i + 1] in marks:
                        word.append(line[i])
                        i += 2
                        continue
                    i += 1
                    break
                word.append(line[i])
                i += 1
            words.append("".join(word))
            continue
        j = line.find(" ", i)
        j = len(line) if j < 0 else j
        bare = line[i:j]
        assert re.fullmatch(r"[\w\-.:\\/=+&;]+", bare, re.ASCII), f"PowerShell would interpret {bare!r}"
        words.append(bare)
        i = j
    return words


# Quoting -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("arg", AWKWARD)
def test_every_shell_reads_back_the_argument(arg):
    assert shlex.split(quote(arg, Shell.POSIX)) == [arg]
    assert cmd_argv("prog " + quote(arg, Shell.CMD)) == ["prog", arg]
    assert powershell_words(quote(arg, Shell.POWERSHELL)) == [arg]


def test_plain_words_stay_unquoted():
    for shell in (Shell.CMD, Shell.POWERSHELL):
        plain = ["python", "convert", "-o", "--fix-clip", r"C:\models\a.safetensors"]
        assert join(plain, shell) == " ".join(plain)
    assert join(["python", "convert", "-o", "/models/a.safetensors"], Shell.POSIX) == "python convert -o /models/a.safetensors"


def test_shells_per_os():
    assert shells_for("nt") == (Shell.CMD, Shell.POWERSHELL)
    assert shells_for("posix") == (Shell.POSIX,)


# The whole line ---------------------------------------------------------------------------------

ARGS = ["convert", r"D:\SD 模型\Модель & co 100%.safetensors", "-o", r"D:\SD 模型\Модель & co 100%-fixed.safetensors",
        "--fix-clip"]


def test_command_prompt_line_enters_the_extension_and_runs_the_webui_python():
    line = module_command(ARGS, Shell.CMD, python=WEBUI_PYTHON, folder=EXTENSION)
    first, second = line.split(" && ")
    assert cmd_argv(first) == ["pushd", EXTENSION]  # pushd: also enters a UNC folder, unlike cd
    assert cmd_argv(second) == [WEBUI_PYTHON, "-m", "lib_modeldoc", *ARGS]


def test_powershell_line_calls_the_quoted_python_with_the_call_operator():
    line = module_command(ARGS, Shell.POWERSHELL, python=WEBUI_PYTHON, folder=EXTENSION)
    first, second = line.split("; ")
    assert powershell_words(first) == ["Set-Location", "-LiteralPath", EXTENSION]
    words = powershell_words(second)
    assert words[0] == "&" and words[1:] == [WEBUI_PYTHON, "-m", "lib_modeldoc", *ARGS]


def test_unc_extension_folder_and_installed_package():
    unc = r"\\server\share\webui\extensions\sd-webui-modeldoc"
    assert cmd_argv(module_command(ARGS, Shell.CMD, python="python", folder=unc).split(" && ")[0]) == ["pushd", unc]
    installed = ntpath.join("C:\\", "Python310", "Lib", "site-packages")
    line = module_command(ARGS, Shell.CMD, python=r"C:\Python310\python.exe", folder=installed)
    assert cmd_argv(line) == [r"C:\Python310\python.exe", "-m", "lib_modeldoc", *ARGS]


def test_the_tab_shows_both_windows_shells(tmp_path):
    report = inspect_model(write_demo_sample(str(tmp_path)))
    lines = views.command_lines(report, os_name="nt", python=WEBUI_PYTHON, folder=EXTENSION)
    assert [label for label, _ in lines] == ["Command line (Command Prompt)", "PowerShell"]
    assert cmd_argv(lines[0][1].split(" && ")[1])[:5] == [WEBUI_PYTHON, "-m", "lib_modeldoc", "convert", report.path]
    html = views.verdict_html(report)
    assert "Command line" in html and views.e(sys.executable) in html


def test_the_cli_verdict_is_quoted_for_this_os(tmp_path):
    report = inspect_model(write_demo_sample(str(tmp_path / "my models")))
    command = suggested_command(report)
    assert command is not None and shlex.split(command)[:5] == ["python", "-m", "lib_modeldoc", "convert", report.path]
    assert cmd_argv(suggested_command(report, Shell.CMD))[4] == report.path


@pytest.mark.skipif(os.name == "nt", reason="runs the sh line")
def test_the_shown_line_runs_as_pasted_from_another_folder(tmp_path):
    """The tab's line, pasted into sh in another folder, with names in Chinese and Cyrillic."""
    folder = tmp_path / "SD 模型 Модели it's"
    report = inspect_model(write_demo_sample(str(folder)))
    [(label, line)] = views.command_lines(report)
    assert label == "Command line"
    assert line.startswith(f"cd {shlex.quote(package_folder())} && {shlex.quote(sys.executable)} -m lib_modeldoc ")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(["sh", "-c", line + " --dry-run --json"], cwd=elsewhere, capture_output=True, text=True,
                          timeout=300, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stderr
    assert '"size_bytes"' in done.stdout
    assert sorted(os.listdir(folder)) == ["damaged-merge-sd15.safetensors"]  # dry run: nothing written
