"""``hash PATH... [--json]``: SHA-256, AutoV1/V2/V3, CRC32 and BLAKE3 of files, in one read each."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..analysis.hashing import FileHashes, hash_file
from ..progress import Progress
from .per_path import run_per_path
from .progress_line import StderrProgress

_ROWS = (("SHA256", "sha256"), ("AutoV1", "autov1"), ("AutoV2", "autov2"), ("AutoV3", "autov3"),
         ("CRC32", "crc32"), ("BLAKE3", "blake3"))
_PROGRESS_MIN_BYTES = 256 << 20


def add_parser(sub: Any) -> None:
    p = sub.add_parser("hash", help="SHA-256, the WebUI's short hashes (AutoV1/V2/V3), CRC32 and BLAKE3 of files")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files to hash (any file; AutoV3 only for safetensors)")
    p.add_argument("--json", action="store_true", help="print JSON (an array when several paths are given)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_per_path(
        args.paths,
        lambda path: hash_file(path, progress=_progress(path)),
        lambda hashes: hashes.to_dict(),
        render_hashes,
        as_json=args.json,
    )


def render_hashes(hashes: FileHashes) -> str:
    """The text form: each hash in lower case, then Civitai's form where it differs."""
    civitai = hashes.civitai()
    values = hashes.to_dict()
    lines = [f"{hashes.path} ({hashes.size_bytes} bytes)"]
    for label, field in _ROWS:
        value = values[field]
        if value is None:
            why = "not a safetensors file" if field == "autov3" else "install the blake3 package to compute it"
            lines.append(f"  {label:<7} -  ({why})")
            continue
        shown = civitai[field]
        if shown is None:  # only AutoV1 of a small file
            note = "Civitai: none for files under 2 MiB"
        else:
            note = f"Civitai: {shown}"
        if field in ("sha256", "blake3"):  # 64 hex: Civitai's form on its own line
            lines.append(f"  {label:<7} {value}")
            lines.append(f"  {'':<7} {note}")
        else:
            lines.append(f"  {label:<7} {value:<12}  {note}")
    return "\n".join(lines)


def _progress(path: str) -> Progress | None:
    """The shared stderr progress line for files of 256 MiB and more, only when stderr is a terminal."""
    line = StderrProgress(f"hashing {os.path.basename(path)}")
    if not line.enabled:
        return None

    def show(done: int, total: int, message: str = "") -> None:
        if total < _PROGRESS_MIN_BYTES:
            return
        line(done, total, message)
        if done >= total:
            line.finish()

    return show
