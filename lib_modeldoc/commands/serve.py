"""``serve [--models DIR] [--host H] [--port N]``: the Model Doctor tab without a WebUI."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import MissingDependencyError, ModelDocError

STANDALONE_REQUIREMENTS = "requirements-standalone.txt"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the Model Doctor tab in a browser, without a WebUI (needs gradio)")
    p.add_argument("--models", metavar="DIR", help="folder of model files (WebUI layout or flat); "
                   "default: a built-in sample library")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=7870, help="port (default: %(default)s)")
    p.set_defaults(run=run)


def require_gradio() -> None:
    """Fail in one line, naming the requirements file, when gradio (the tab's web stack) is missing.

    ``requirements.txt`` is enough for the command line; the tab also needs
    ``requirements-standalone.txt`` (gradio and its pins).
    """
    try:
        import gradio  # noqa: F401  (imported here so the failure comes before any work)
    except ImportError as exc:
        here = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            STANDALONE_REQUIREMENTS)
        shown = here if os.path.isfile(here) else STANDALONE_REQUIREMENTS
        missing = f" (no module named {exc.name!r})" if exc.name and exc.name != "gradio" else ""
        raise MissingDependencyError(
            f"serve needs gradio, which is not installed{missing}; install the tab's requirements: pip install -r {shown}"
        ) from None


def run(args: argparse.Namespace) -> int:
    require_gradio()
    from ..ui.standalone import serve
    if args.models is not None:
        if not os.path.isdir(args.models):
            raise ModelDocError(f"{args.models}: not a folder (--models takes a folder of model files)")
    serve(args.models, host=args.host, port=args.port, log=lambda line: print(line, flush=True))
    return 0
