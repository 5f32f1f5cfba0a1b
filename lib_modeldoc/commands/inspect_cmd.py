"""``inspect PATH... [--json]``: identify a model and report what is wrong with it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..checks.diagnose import fit_adapter, inspect_model
from ..errors import PlanError
from ..report.data import Report
from ..report.messages import language_for_stream, language_from_locale
from ..report.render import render_report
from .per_path import run_per_path
from .progress_line import StderrSteps


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inspect", help="identify a model file and report what is wrong with it")
    p.add_argument("paths", nargs="+", metavar="PATH", help="model files (.safetensors, .ckpt, .pt, .pth, .bin)")
    p.add_argument("--json", action="store_true", help="print JSON (an array when several paths are given)")
    p.add_argument("--scan", action="store_true", help="also read every tensor once: NaN/Inf, all-zero and huge values")
    p.add_argument("--components", action="store_true",
                   help="also fingerprint each component (reads it whole): known VAE/CLIP, model-toolkit metric")
    p.add_argument("--vae-test", action="store_true",
                   help="also run the VAE on a built-in test image (needs torch): fp16/bf16 overflow per layer, "
                        "reconstruction PSNR, colour shift and contrast")
    p.add_argument("--vae-dir", metavar="DIR",
                   help="with --vae-test: test the VAEs in DIR too, to compare and to list those that pass")
    p.add_argument("--vae-size", type=int, default=256, metavar="PIXELS",
                   help="with --vae-test: test image side, a multiple of 8 (default 256)")
    p.add_argument("--fp16-run", choices=["auto", "native", "emulated", "none"], default=None, metavar="MODE",
                   help="with --vae-test: the confirming half-precision pass: auto (default: emulated on the CPU, "
                        "whose fp16 convolution is ~100x slower; native elsewhere), native, emulated (fp32 with "
                        "weights and every layer's output rounded to fp16) or none")
    p.add_argument("--no-fp16-run", action="store_true", help="with --vae-test: same as --fp16-run none")
    p.add_argument("--vae-image", metavar="OUT.png",
                   help="with --vae-test: save the test image and its reconstruction side by side")
    p.add_argument("--fit", metavar="CHECKPOINT",
                   help="for a LoRA or an embedding: say whether it fits this checkpoint (its header is read)")
    p.add_argument("--brief", action="store_true", help="print only the verdict")
    p.set_defaults(run=run)


def _vae_options(args: argparse.Namespace) -> Any:
    uses = args.vae_dir or args.vae_image or args.no_fp16_run or args.fp16_run or args.vae_size != 256
    if uses and not args.vae_test:
        raise PlanError("--vae-dir, --vae-size, --vae-image and --no-fp16-run need --vae-test")
    if not args.vae_test:
        return None
    if args.no_fp16_run and args.fp16_run not in (None, "none"):
        raise PlanError("--no-fp16-run contradicts --fp16-run " + args.fp16_run)
    if args.vae_image and len(args.paths) > 1:
        raise PlanError("--vae-image takes one PATH")
    if args.vae_size < 16 or args.vae_size % 8 or args.vae_size > 2048:
        raise PlanError(f"--vae-size must be a multiple of 8 from 16 to 2048 (got {args.vae_size})")
    from ..analysis.vae_test import Fp16Mode, VaeTestOptions

    mode = Fp16Mode.NONE if args.no_fp16_run else Fp16Mode(args.fp16_run or "auto")
    return VaeTestOptions(size=args.vae_size, vae_dir=args.vae_dir, fp16=mode)


def run(args: argparse.Namespace) -> int:
    vae = _vae_options(args)
    progress = StderrSteps("VAE test") if vae is not None else None

    def compute(path: str) -> Any:
        try:
            report = inspect_model(path, scan=args.scan, identify_components=args.components, vae_test=vae,
                                   progress=progress)
        finally:
            if progress is not None:
                progress.finish()
        if vae is not None and args.vae_image:
            _save_image(report, args.vae_image)
        if args.fit:
            report = fit_adapter(report, args.fit)
        return report

    # The text follows the locale (if the output can hold it); --json is a contract: always English.
    language = language_for_stream(language_from_locale(), sys.stdout)
    return run_per_path(
        args.paths,
        compute,
        lambda report: report.to_dict(),
        lambda report: render_report(report, details=not args.brief, language=language),
        as_json=args.json,
    )


def _save_image(report: Report, out: str) -> None:
    """The test image (left) and its reconstruction (right) as a PNG, written atomically."""
    from ..analysis.vae_image import png_bytes, side_by_side
    from ..io.atomic import atomic_output
    from ..io.output_rule import OutputKind, check_output

    result = report.vae_test
    assert result is not None
    check_output(out, kind=OutputKind.REPORT, sources=(report.path,))  # an old PNG may go; a model never
    with atomic_output(out, like=report.path) as f:
        f.write(png_bytes(side_by_side(result.original, result.decoded)))
