"""``export``, ``replace`` and ``build``: component work, one command each."""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack
from typing import Any

from ..errors import PlanError
from ..io.model import open_model
from ..operations.components import COMPONENT_CHOICES, plan_build, plan_export, plan_replace
from ..operations.convert import PRECISIONS
from ..operations.plan import Plan
from ..operations.sidecars import carry_sidecars
from ..report.advice import count
from ..report.units import human_bytes
from .convert_cmd import output_format, print_sidecars, write_with_progress
from .wording import say


def _common(p: argparse.ArgumentParser, precision_help: str) -> None:
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the file to write")
    p.add_argument("--precision", choices=tuple(PRECISIONS), help=precision_help)
    p.add_argument("--format", choices=("safetensors", "ckpt"), help="output format (default: from OUT's suffix)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--dry-run", action="store_true", help="print the plan and sizes; write nothing")
    p.add_argument("--verify", action="store_true", help="after writing, re-read every tensor and compare hashes")
    p.add_argument("--json", action="store_true", help="print a JSON result")


def _format(args: argparse.Namespace) -> str:
    return output_format(args.output, args.format)


def _sidecar_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-sidecars", action="store_true",
                   help="do not copy the model's .yaml, preview, .json and .civitai.info files to the output's name")


def _finish(plan: Plan, args: argparse.Namespace, sidecars_from: str | None = None) -> int:
    if args.dry_run:
        if args.json:
            print(json.dumps({"dry_run": True, "output": args.output, **plan.to_dict()}, indent=2))
        else:
            print(plan.describe(say=say))
            print(f"(dry run: nothing written; {args.output} would be {human_bytes(plan.output_size)})")
        return 0
    result = write_with_progress(plan, args.output, args)
    carried = []
    if sidecars_from and not args.no_sidecars:
        carried = carry_sidecars(sidecars_from, args.output, overwrite=args.overwrite)
    if args.json:
        print(json.dumps({**result.to_dict(), "sidecars": [c.to_dict() for c in carried]}, indent=2))
    else:
        print(f"Wrote {result.output}: {human_bytes(result.size_bytes)}, {count(result.keys, 'tensor')}"
              + (", verified" if result.verified else ""))
        for line in plan.changes:
            print(f"  - {say(line)}")
        for line in plan.warnings:
            print(f"  warning: {say(line)}")
        print_sidecars(carried)
    return 0


class export:  # noqa: N801 - a command namespace, named as typed
    """``export SRC --component C -o OUT``."""

    @staticmethod
    def add_parser(sub: Any) -> None:
        p = sub.add_parser("export", help="write one component (unet, vae, clip ...) as its own file, without the checkpoint prefix")
        p.add_argument("source", metavar="SRC")
        p.add_argument("--component", required=True, choices=COMPONENT_CHOICES)
        p.add_argument("--fix-clip", action="store_true", help="reset CLIP position_ids to int64 0..76")
        _common(p, "float precision (default: keep for vae, fp16 otherwise)")
        p.set_defaults(run=export.run)

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        fmt = _format(args)
        with open_model(args.source) as model:
            plan = plan_export(model, args.component, precision=args.precision, fix_clip=args.fix_clip, format=fmt)
            return _finish(plan, args)


class replace:  # noqa: N801
    """``replace TARGET --component C --from SOURCE -o OUT``."""

    @staticmethod
    def add_parser(sub: Any) -> None:
        p = sub.add_parser("replace", help="copy a model with one component taken from another file (the rest byte for byte)")
        p.add_argument("target", metavar="TARGET")
        p.add_argument("--component", required=True, choices=tuple(c for c in COMPONENT_CHOICES if c != "ema-unet"))
        p.add_argument("--from", dest="source", required=True, metavar="SOURCE",
                       help="a full model or a component file, prefixed or not")
        _common(p, "precision of the new component (default: keep)")
        _sidecar_option(p)
        p.set_defaults(run=replace.run)

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        fmt = _format(args)
        with open_model(args.target) as target, open_model(args.source) as source:
            plan = plan_replace(target, args.component, source, precision=args.precision, format=fmt)
            return _finish(plan, args, sidecars_from=args.target)


class build:  # noqa: N801
    """``build --arch A --unet F --vae F --clip F [--clip-g F] -o OUT``."""

    @staticmethod
    def add_parser(sub: Any) -> None:
        p = sub.add_parser("build", help="build a checkpoint from component files")
        p.add_argument("--arch", required=True, choices=("SD1", "SD2", "SDXL", "SD3", "Flux"))
        p.add_argument("--unet", metavar="FILE", help="the UNet (SD3 / Flux: the transformer)")
        p.add_argument("--t5xxl", metavar="FILE", help="SD3 / Flux: the T5-XXL text encoder")
        p.add_argument("--vae", metavar="FILE")
        p.add_argument("--clip", metavar="FILE", help="text encoder(s): CLIP-L for SD1/SDXL/SD3/Flux, OpenCLIP-H for SD2")
        p.add_argument("--clip-g", metavar="FILE", help="SDXL's OpenCLIP-bigG, when --clip holds only CLIP-L")
        p.add_argument("--allow-missing", action="store_true",
                       help="build without a part (the WebUI then keeps the previous model's part)")
        p.add_argument("--fix-clip", action="store_true", help="reset CLIP position_ids to int64 0..76")
        _common(p, "float precision (default: keep)")
        _sidecar_option(p)
        p.set_defaults(run=build.run)

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        fmt = _format(args)
        given = {name: getattr(args, name) for name in ("unet", "vae", "clip", "clip_g", "t5xxl") if getattr(args, name)}
        if args.t5xxl and args.arch not in ("SD3", "Flux"):
            raise PlanError(f"a {args.arch} model has no T5-XXL text encoder")
        with ExitStack() as stack:
            opened: dict[str, Any] = {}
            parts = {}
            for name, path in given.items():
                if path not in opened:
                    opened[path] = stack.enter_context(open_model(path))
                parts[name] = opened[path]
            plan = plan_build(args.arch, parts, precision=args.precision, allow_missing=args.allow_missing,
                              fix_clip=args.fix_clip, format=fmt)
            return _finish(plan, args, sidecars_from=args.unet)  # the UNet names the model it came from
