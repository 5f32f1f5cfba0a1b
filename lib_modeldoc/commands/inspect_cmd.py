"""``inspect PATH... [--json]``: identify a model and report what is wrong with it."""

from __future__ import annotations

import argparse
from typing import Any

from ..diagnose import inspect_model
from ..render import render_report
from .per_path import run_per_path


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inspect", help="identify a model file and report what is wrong with it")
    p.add_argument("paths", nargs="+", metavar="PATH", help="model files (.safetensors, .ckpt, .pt, .pth, .bin)")
    p.add_argument("--json", action="store_true", help="print JSON (an array when several paths are given)")
    p.add_argument("--scan", action="store_true", help="also read every tensor once: NaN/Inf, all-zero and huge values")
    p.add_argument("--components", action="store_true",
                   help="also fingerprint each component (reads it whole): known VAE/CLIP, model-toolkit metric")
    p.add_argument("--brief", action="store_true", help="print only the verdict")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_per_path(
        args.paths,
        lambda path: inspect_model(path, scan=args.scan, identify_components=args.components),
        lambda report: report.to_dict(),
        lambda report: render_report(report, details=not args.brief),
        as_json=args.json,
    )
