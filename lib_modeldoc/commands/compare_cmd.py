"""``compare A B [--json] [--plot OUT.png]``: per component and per block, how two models differ."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..analysis.compare import Comparison, compare_models
from ..io.output_rule import OutputKind, check_output
from ..progress import Progress

_SHOWN_KEYS = 8


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compare", help="compare two models per component and block (identical, cosine, relative difference)",
        description="Compare two model files. Keys are matched per component without the checkpoint prefix, "
                    "so a checkpoint compares with a standalone VAE/UNet/CLIP file or an old-layout file.",
    )
    p.add_argument("a", metavar="A", help="first model file")
    p.add_argument("b", metavar="B", help="second model file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="also write a per-block heatmap (needs matplotlib)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.plot:
        from ..analysis.compare_plot import require_matplotlib

        require_matplotlib()  # before minutes of reading, not after
        check_output(args.plot, kind=OutputKind.REPORT, sources=(args.a, args.b))
    result = compare_models(args.a, args.b, progress=_progress() if sys.stderr.isatty() else None)
    if args.plot:
        from ..analysis.compare_plot import plot_comparison

        plot_comparison(result, args.plot)
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(render_comparison(result))
        if args.plot:
            print(f"Plot written: {args.plot}")
    return 0


def _progress() -> Progress:
    last = [-1]

    def show(done: int, total: int, message: str) -> None:
        percent = int(100 * done / max(total, 1))
        if percent != last[0]:
            last[0] = percent
            print(f"\r{message} {percent}%", end="", file=sys.stderr, flush=True)

    return show








def render_comparison(result: Comparison) -> str:
    """The text report of ``compare``: a table per component, then the blocks that differ."""
    lines = [f"A: {result.a} ({result.a_architecture})", f"B: {result.b} ({result.b_architecture})"]
    differing = [c for c in result.components.values() if not c.identical]
    if result.identical:
        lines.append("Verdict: identical (same keys, same values)")
    else:
        lines.append(f"Verdict: different ({len(differing)} of {len(result.components)} compared parts differ"
                     + (", some parts exist in one file only)" if result.only_in_a or result.only_in_b else ")"))
    if result.components:
        lines.append("")
        lines.append(f"  {'part':<10} {'cosine':>11} {'rel.diff':>9} {'keys':>6} {'differ':>6}  verdict")
        for c in result.components.values():
            s = c.stats
            lines.append(f"  {c.name:<10} {s.cosine_text:>11} {s.relative_text:>9} "
                         f"{s.keys_compared:>6} {s.keys_different:>6}  {c.verdict}")
    for side, names in (("A", result.only_in_a), ("B", result.only_in_b)):
        if names:
            lines.append(f"Only in {side}: " + ", ".join(names))
    for side, keys in (("A", result.missing_in_a), ("B", result.missing_in_b)):
        if keys:
            shown = ", ".join(keys[:_SHOWN_KEYS]) + (", ..." if len(keys) > _SHOWN_KEYS else "")
            lines.append(f"Missing in {side}: {len(keys)} key{'s' * (len(keys) != 1)} ({shown})")
    for c in differing:
        if c.shape_mismatch:
            lines.append(f"{c.name}: {len(c.shape_mismatch)} keys with different shapes (e.g. {c.shape_mismatch[0]})")
        changed = [(name, s) for name, s in c.blocks if not s.identical]
        if not changed:
            continue
        lines.append("")
        lines.append(f"{c.name}, blocks that differ ({len(changed)} of {len(c.blocks)}):")
        for name, s in changed:
            lines.append(f"  {name:<18} cosine {s.cosine_text:>11}  rel {s.relative_text:>9}  "
                         f"{s.keys_different}/{s.keys_compared} keys differ")
    return "\n".join(lines)
