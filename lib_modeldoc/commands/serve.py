"""``serve [--models DIR] [--host H] [--port N] [--auth USER:PASS | --no-auth]``: the tab without a WebUI.

Closed by default: it listens on loopback; any other address needs a login (``--auth``) or an
explicit ``--no-auth``. What it reads and writes stays inside the served folder.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import ModelDocError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the Model Doctor tab in a browser, without a WebUI (needs gradio)")
    p.add_argument("--models", metavar="DIR", help="folder of model files (WebUI layout or flat); "
                   "default: a built-in sample library")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s; "
                   "any other than loopback needs --auth or --no-auth)")
    p.add_argument("--port", type=int, default=7870, help="port (default: %(default)s)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="another name the server is reached by (a DNS name, a proxy's); repeatable. "
                        "Loopback names and, on a wildcard --host, this machine's names and IPs are always allowed")
    login = p.add_mutually_exclusive_group()
    login.add_argument("--auth", metavar="USER:PASS", help="require this login (gradio's login page)")
    login.add_argument("--no-auth", action="store_true",
                       help="listen beyond loopback without a login (anyone who can reach the port can use it)")
    p.set_defaults(run=run)


def parse_auth(value: str) -> tuple[str, str]:
    """``USER:PASS`` -> ``(user, pass)``; the password may contain ``:``.

    Raises:
        ModelDocError: no ``:``, or an empty user name or password.
    """
    user, sep, password = (value or "").partition(":")
    if not sep or not user.strip() or not password:
        raise ModelDocError("--auth takes USER:PASS (a user name, a colon, a password)")
    return user.strip(), password


def run(args: argparse.Namespace) -> int:
    from ..ui.gate import is_loopback  # no gradio: refuse before the slow import

    auth = parse_auth(args.auth) if args.auth is not None else None
    if not is_loopback(args.host) and auth is None and not args.no_auth:
        raise ModelDocError(f"--host {args.host} would let other machines in without a login; "
                            "add --auth USER:PASS (or --no-auth to accept that)")
    if args.models is not None and not os.path.isdir(args.models):
        raise ModelDocError(f"{args.models}: not a folder (--models takes a folder of model files)")
    try:
        import gradio  # noqa: F401 - checked here: the tab's modules import it only when building the page

        from ..ui.standalone import serve
    except ImportError as exc:  # gradio missing: say how to get it, in one line
        raise ModelDocError(
            f"serve needs gradio ({exc}); install it with: pip install -r requirements-standalone.txt"
        ) from None
    serve(args.models, host=args.host, port=args.port, log=lambda line: print(line, flush=True), auth=auth,
          allow_no_auth=args.no_auth, host_names=args.allow_host)
    return 0
