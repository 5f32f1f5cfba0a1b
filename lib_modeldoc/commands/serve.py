"""``serve [--models DIR] [--host H] [--port N]``: the Model Doctor tab without a WebUI."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ModelDocError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the Model Doctor tab in a browser, without a WebUI (needs gradio)")
    p.add_argument("--models", metavar="DIR", help="folder of model files (WebUI layout or flat); "
                   "default: a built-in sample library")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=7870, help="port (default: %(default)s)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from ..ui.standalone import serve
    except ImportError as exc:  # gradio missing: say how to get it, in one line
        raise ModelDocError(
            f"serve needs gradio ({exc}); install it with: pip install -r requirements-standalone.txt"
        ) from None
    if args.models is not None:
        import os

        if not os.path.isdir(args.models):
            raise ModelDocError(f"{args.models}: not a folder (--models takes a folder of model files)")
    serve(args.models, host=args.host, port=args.port, log=lambda line: print(line, flush=True))
    return 0
