"""``audit DIR [--json] [--csv OUT] [--hashes]``: a health report of a whole model folder."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from typing import Any

from ..analysis.audit import Audit, audit_folder
from ..io.atomic import atomic_output
from ..io.output_rule import OutputKind, check_output
from ..report.units import human_bytes

HASH_COLUMNS = ("sha256", "autov1", "autov2", "autov3", "crc32", "blake3")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "audit", help="report on every model file in a folder: health, sizes, duplicates",
        description="Inspect every model file under DIR (recursively; a diffusers folder counts as one model), "
                    "find identical files and identical "
                    "components (the same VAE saved many times), and list unreadable files.",
    )
    p.add_argument("folder", metavar="DIR", help="folder to audit (recursively)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--csv", metavar="OUT", help="also write one row per file as CSV")
    p.add_argument("--hashes", action="store_true", help="also compute every file's hashes (reads each file in full)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="threads to use (default: CPUs, at most 4)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.csv:
        check_output(args.csv, kind=OutputKind.REPORT)  # fail before the long part
    tty = sys.stderr.isatty()
    result = audit_folder(args.folder, hashes=args.hashes, workers=args.workers, progress=_progress if tty else None)
    if tty:
        print("\r\033[K", end="", file=sys.stderr)
    if args.csv:
        write_csv(result, args.csv, hashes=args.hashes)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(render_audit(result))
        if args.csv:
            print(f"CSV written: {args.csv}")
    return 0


def _progress(done: int, total: int, message: str) -> None:
    print(f"\r\033[K[{done}/{total}] {message[-100:]}", end="", file=sys.stderr, flush=True)


def _rel(result: Audit, path: str) -> str:
    """The path under the audited folder; a diffusers folder (one model) ends in a slash."""
    relative = os.path.relpath(path, result.folder)
    return relative + os.sep if os.path.isdir(path) else relative


def render_audit(result: Audit) -> str:
    """The text report of ``audit``: one line per file, then duplicates, errors and savings."""
    lines = [f"Audit of {result.folder}: {len(result.files)} model file{'s' * (len(result.files) != 1)}, "
             f"{human_bytes(result.total_bytes)}" + (f", {len(result.errors)} unreadable" if result.errors else "")]
    if result.files:
        lines.append(f"  {'size':>10} {'pruned':>10}  {'architecture':<13} {'findings':<40} file")
        for row in result.files:
            findings = ", ".join(row.findings) or "-"
            lines.append(f"  {human_bytes(row.size_bytes):>10} {human_bytes(row.pruned_size_bytes):>10}  "
                         f"{row.architecture:<13} {findings:<40} {_rel(result, row.path)}")
    if result.duplicates:
        lines.append("Duplicates:")
        for d in result.duplicates:
            names = ", ".join(_rel(result, p) for p in d.paths)
            if d.kind == "file":
                lines.append(f"  identical files ({human_bytes(d.bytes_each)} each): {names}")
            else:
                lines.append(f"  same {d.component} (fingerprint {d.digest[:12]}) in {len(d.paths)} files: {names}")
    if result.errors:
        lines.append("Unreadable:")
        lines += [f"  {e.message}" for e in result.errors]
    if result.leftovers:
        lines.append("Leftovers of interrupted writes (the next write into their folder removes them):")
        lines += [f"  {human_bytes(p.size_bytes):>10}  {_rel(result, p.path)}" for p in result.leftovers]
    savings = []
    if result.prunable_bytes:
        savings.append(f"pruning every file would save {human_bytes(result.prunable_bytes)}")
    if result.duplicate_bytes:
        savings.append(f"deleting duplicate copies would save {human_bytes(result.duplicate_bytes)}")
    if savings:
        text = "; ".join(savings)
        lines.append(text[0].upper() + text[1:] + ".")
    return "\n".join(lines)


def write_csv(result: Audit, path: str, *, hashes: bool = False) -> None:
    """One row per file (errors included, with their message), written atomically."""
    duplicate_of = {p: d.paths[0] for d in result.duplicates if d.kind == "file" for p in d.paths[1:]}
    error_of = {e.path: e.message for e in result.errors}
    columns = ["path", "format", "architecture", "size_bytes", "pruned_size_bytes", "findings", "duplicate_of", "error"]
    if hashes:
        columns += HASH_COLUMNS
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in result.files:
        record: dict[str, Any] = {
            "path": row.path, "format": row.format, "architecture": row.architecture,
            "size_bytes": row.size_bytes, "pruned_size_bytes": row.pruned_size_bytes,
            "findings": ";".join(row.findings), "duplicate_of": duplicate_of.get(row.path, ""), "error": error_of.get(row.path, ""),
        }
        if hashes:
            record.update({k: (row.hashes or {}).get(k) or "" for k in HASH_COLUMNS})
        writer.writerow(record)
    failed_rows = {r.path for r in result.files}
    for error in result.errors:
        if error.path not in failed_rows:
            writer.writerow({"path": error.path, "error": error.message})
    check_output(path, kind=OutputKind.REPORT, sources=tuple(r.path for r in result.files))
    with atomic_output(path) as f:
        f.write(buffer.getvalue().encode("utf-8"))
