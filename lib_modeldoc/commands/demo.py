"""``demo``: write a real-size (sparse) damaged sample checkpoint and inspect it."""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

from ..checks.diagnose import inspect_model
from ..report.render import render_report
from ..samples import write_demo_sample


def default_folder() -> str:
    return os.path.join(tempfile.gettempdir(), "modeldoc-samples")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="inspect a built-in damaged sample checkpoint (written sparse, a few KB on disk)")
    p.add_argument("--folder", default=default_folder(), help="where to write the sample (default: %(default)s)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = write_demo_sample(args.folder)
    print(f"Sample written: {path} (sparse: {os.path.getsize(path) / 1e9:.1f} GB apparent size)\n")
    print(render_report(inspect_model(path)))
    return 0
