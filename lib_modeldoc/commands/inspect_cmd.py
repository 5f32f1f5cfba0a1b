"""``inspect PATH... [--json]``: identify a model and report what is wrong with it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..diagnose import inspect_model
from ..errors import ModelDocError
from ..render import render_report


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
    results: list[dict[str, Any]] = []
    failed = False
    for index, path in enumerate(args.paths):
        try:
            report = inspect_model(path, scan=args.scan, identify_components=args.components)
        except ModelDocError as exc:
            if len(args.paths) == 1:
                raise
            failed = True
            print(f"modeldoc: error: {exc}", file=sys.stderr)
            results.append({"path": path, "error": str(exc)})
            continue
        if args.json:
            results.append(report.to_dict())
        else:
            if index:
                print()
            print(render_report(report, details=not args.brief))
    if args.json:
        print(json.dumps(results[0] if len(args.paths) == 1 else results, indent=2, ensure_ascii=False))
    return 2 if failed else 0
