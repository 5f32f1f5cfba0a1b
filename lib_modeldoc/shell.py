"""Command lines a user can paste as they are: quoted for their shell, run by the right Python.

The tab shows the ``convert`` command that repairs a model. Inside a WebUI that command must
use the WebUI's own interpreter (``venv\\Scripts\\python.exe`` on Windows, where ``python`` on
the PATH is often another one, or none) and must run from the extension's folder, where
``lib_modeldoc`` lives. Each shell quotes differently: POSIX shells (``shlex.quote``), the
Windows Command Prompt (the MSVC argument rules, with ``%`` kept out of variable expansion),
and PowerShell (single quotes, including the typographic ones it also accepts).
"""

from __future__ import annotations

import enum
import os
import re
import shlex
import sys
from collections.abc import Sequence

__all__ = ["Shell", "quote", "join", "module_command", "shells_for", "package_folder"]


class Shell(enum.Enum):
    """A shell a command line is written for."""

    POSIX = "sh"
    CMD = "Command Prompt"
    POWERSHELL = "PowerShell"


# Safe unquoted in every shell here: letters, digits and a few punctuation marks.
_CMD_SAFE = re.compile(r"[\w\-.:\\/=+,@]+", re.ASCII)
_POWERSHELL_SAFE = re.compile(r"[\w\-.:\\/=+]+", re.ASCII)
_POWERSHELL_QUOTES = "'\u2018\u2019\u201a\u201b"  # PowerShell ends a '...' string at any of these


def shells_for(os_name: str = os.name) -> tuple[Shell, ...]:
    """The shells to show a command for: Command Prompt and PowerShell on Windows, else sh."""
    return (Shell.CMD, Shell.POWERSHELL) if os_name == "nt" else (Shell.POSIX,)


def quote(arg: str, shell: Shell) -> str:
    """``arg`` as one word for ``shell``."""
    if shell is Shell.POSIX:
        return shlex.quote(arg)
    if shell is Shell.POWERSHELL:
        if arg and _POWERSHELL_SAFE.fullmatch(arg):
            return arg
        for mark in _POWERSHELL_QUOTES:
            arg = arg.replace(mark, mark * 2)
        return f"'{arg}'"
    return _quote_cmd(arg)


def _quote_cmd(arg: str) -> str:
    """The MSVC rules (what ``CommandLineToArgvW`` and Python read) inside ``"..."``; cmd.exe
    expands ``%NAME%`` even inside quotes, so each ``%`` is put outside them, escaped as ``^%``."""
    if arg and _CMD_SAFE.fullmatch(arg):
        return arg
    out = ['"']
    backslashes = 0
    for char in arg:
        if char == "\\":
            backslashes += 1
            continue
        if char == '"':
            out.append("\\" * (2 * backslashes + 1) + '"')
        elif char == "%":
            out.append("\\" * (2 * backslashes) + '"^%"')  # backslashes before a quote are doubled
        else:
            out.append("\\" * backslashes + char)
        backslashes = 0
    out.append("\\" * (2 * backslashes) + '"')
    return "".join(out)


def join(args: Sequence[str], shell: Shell) -> str:
    """A command line for ``shell`` that runs ``args[0]`` with the other arguments."""
    words = [quote(a, shell) for a in args]
    if shell is Shell.POWERSHELL and words and words[0].startswith("'"):
        words.insert(0, "&")  # a quoted program name is a string to PowerShell until called with &
    return " ".join(words)


def package_folder() -> str:
    """The folder holding ``lib_modeldoc`` (the extension's folder inside a WebUI)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def module_command(args: Sequence[str], shell: Shell, *, python: str | None = None,
                   folder: str | None = None) -> str:
    """``python -m lib_modeldoc ARGS`` as one line to paste into ``shell``.

    Args:
        args: the CLI arguments (paths should be absolute: the line changes folder first).
        shell: which shell's rules to quote by.
        python: the interpreter (default ``sys.executable``: inside a WebUI, the WebUI's own).
        folder: where ``lib_modeldoc`` lives (default :func:`package_folder`); the line changes
            into it first unless it is a ``site-packages`` folder, where Python finds it anyway.
    """
    python = python or sys.executable or "python"
    folder = package_folder() if folder is None else folder
    run = join([python, "-m", "lib_modeldoc", *args], shell)
    last = re.split(r"[\\/]", folder.rstrip("\\/"))[-1] if folder else ""  # either OS's separators
    if not folder or last.lower() in ("site-packages", "dist-packages"):
        return run
    if shell is Shell.POSIX:
        return f"cd {quote(folder, shell)} && {run}"
    if shell is Shell.CMD:
        return f"pushd {quote(folder, shell)} && {run}"  # pushd, unlike cd, also enters UNC folders
    return f"Set-Location -LiteralPath {quote(folder, shell)}; {run}"
