"""``python -m lib_modeldoc``: parse arguments, call the engine, print, exit 0 or 2.

Each command lives in ``lib_modeldoc/commands/`` as a module with ``add_parser(subparsers)``
and ``run(args) -> int``. Every :class:`~lib_modeldoc.errors.ModelDocError` is caught here and
printed as one line; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import traceback
from collections.abc import Sequence

from .commands import COMMANDS, load
from .commands.wording import say
from .errors import ModelDocError

__all__ = ["main"]

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, as the contract asks; no usage dump
        self.exit(EXIT_BAD_INPUT, f"modeldoc: error: {message} (see --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that command's sub-parser is built (and imported)."""
    parser = _Parser(prog="modeldoc", description="Inspect, repair, split and convert Stable Diffusion model files.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        if only is None or name == only:
            load(name).add_parser(sub)
    return parser


def _terminate_like_ctrl_c(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# SIGTERM: kill, a service stop (POSIX). SIGBREAK: Ctrl+Break in a Windows console, which would
# otherwise end Python at once, leaving a temporary file (Windows delivers no SIGTERM).
_STOP_SIGNALS = ("SIGTERM", "SIGBREAK")


def handle_sigterm() -> None:
    """SIGTERM (and Ctrl+Break on Windows) end a command as Ctrl-C does: no temporary file is left.

    Only from the main thread (Python's rule), and only the signals this platform has.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for name in _STOP_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _terminate_like_ctrl_c)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status. Run as a program (``argv`` None), SIGTERM acts as Ctrl-C."""
    if argv is None:
        handle_sigterm()
    argv = list(sys.argv[1:] if argv is None else argv)
    named = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=named if named in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (one line printed) and --help
        return int(exc.code or 0)
    try:
        return int(args.run(args))
    except ModelDocError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"modeldoc: error: {say(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("modeldoc: error: interrupted; nothing was written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug: still one line unless --debug
        if args.debug:
            traceback.print_exc()
        print(f"modeldoc: error: internal error ({type(exc).__name__}: {exc}); rerun with --debug and report it",
              file=sys.stderr)
        return EXIT_INTERNAL
