"""``audit``: a health report of a whole model folder, with duplicates found.

Every model file under a folder gets one row (architecture, size, pruned size, finding ids,
optionally its hashes). A diffusers folder (pipeline or ControlNet) is one model, one row: its
component files are not listed apart; two copies of one folder are a ``file`` duplicate (every
file in them the same bytes). Duplicates are found in two kinds:

* **file**: byte-identical files. Candidates share a size, then a sample of their bytes; only
  those still alike are read in full (SHA-256).
* **component**: the same component in different files (one VAE saved as ``.vae.pt``, inside
  three checkpoints and as an fp16 ``.safetensors``). Candidates share a quick fingerprint (key
  structure plus a few small tensors); only those are read in full and compared by fingerprint.

A file that cannot be read is listed under ``errors`` with its one-line message; the audit goes
on. Files are processed by a small thread pool (numpy, hashlib and file reads release the GIL).
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import struct
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..arch.identify import identify_model
from ..checks.diagnose import inspect_open_model
from ..errors import ModelDocError, ModelReadError
from ..io.atomic import Partial, find_partials
from ..io.folders import is_regular, walk_files, walk_folders
from ..io.model import open_model
from ..io.paths import native_path
from ..io.sniff import LEGACY_TORCH_START, MODEL_SUFFIXES, Format, sniff_bytes
from ..progress import Progress
from ..workers import worker_pool
from .fingerprint import component_tensors, fingerprint_component, quick_fingerprint

__all__ = ["AuditRow", "Duplicate", "AuditError", "Audit", "find_model_files", "audit_folder"]

logger = logging.getLogger(__name__)

_SAMPLES = 16  # blocks read from each same-size file before hashing it whole
_SAMPLE_BYTES = 1 << 16
_BLOCK = 8 << 20


@dataclass(frozen=True)
class AuditRow:
    """One readable model file."""

    path: str
    format: str
    architecture: str
    size_bytes: int
    pruned_size_bytes: int
    findings: tuple[str, ...]
    hashes: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path, "format": self.format, "architecture": self.architecture,
            "size_bytes": self.size_bytes, "pruned_size_bytes": self.pruned_size_bytes,
            "findings": list(self.findings),
        }
        if self.hashes is not None:
            out["hashes"] = self.hashes
        return out


@dataclass(frozen=True)
class Duplicate:
    """Files that hold the same bytes (``file``) or the same component (``component``)."""

    kind: str  # "file" or "component"
    paths: tuple[str, ...]
    digest: str  # sha256 of the file, or the component fingerprint
    bytes_each: int  # file size, or the component's stored bytes in the first file
    component: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.component is not None:
            out["component"] = self.component
        out["paths"] = list(self.paths)
        out["sha256" if self.kind == "file" else "fingerprint"] = self.digest
        out["bytes_each"] = self.bytes_each
        return out


@dataclass(frozen=True)
class AuditError:
    """A file that could not be audited."""

    path: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "message": self.message}


@dataclass(frozen=True)
class Audit:
    """The result of :func:`audit_folder`."""

    folder: str
    files: tuple[AuditRow, ...]
    duplicates: tuple[Duplicate, ...]
    errors: tuple[AuditError, ...]
    partials: tuple[Partial, ...] = ()  # temporary files of writes; stale ones are leftovers of killed writes

    @property
    def leftovers(self) -> tuple[Partial, ...]:
        """Hidden ``.NAME.*.partial`` files whose writer is gone (the next write there removes them)."""
        return tuple(p for p in self.partials if p.stale)

    @property
    def total_bytes(self) -> int:
        return sum(r.size_bytes for r in self.files)

    @property
    def prunable_bytes(self) -> int:
        """What pruning every file (no junk, no EMA, fp16) would save."""
        return sum(max(0, r.size_bytes - r.pruned_size_bytes) for r in self.files)

    @property
    def duplicate_bytes(self) -> int:
        """What deleting all but one copy of each identical file would save."""
        return sum(d.bytes_each * (len(d.paths) - 1) for d in self.duplicates if d.kind == "file")

    def to_dict(self) -> dict[str, Any]:
        """The CLI contract's JSON (``files``, ``duplicates``, ``errors``) plus a summary."""
        return {
            "folder": self.folder,
            "files": [r.to_dict() for r in self.files],
            "duplicates": [d.to_dict() for d in self.duplicates],
            "errors": [e.to_dict() for e in self.errors],
            "leftovers": [p.to_dict() for p in self.leftovers],
            "summary": {
                "files": len(self.files), "errors": len(self.errors), "total_bytes": self.total_bytes,
                "prunable_bytes": self.prunable_bytes, "duplicate_file_bytes": self.duplicate_bytes,
            },
        }


def _looks_like_model(path: str) -> bool:
    """For files without a model suffix: do the first bytes say safetensors or torch?"""
    try:
        with open(native_path(path), "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    kind = sniff_bytes(head)
    if kind is Format.SAFETENSORS:  # and a header length that fits the file
        return len(head) >= 8 and 2 <= struct.unpack("<Q", head[:8])[0] <= os.path.getsize(native_path(path)) - 8
    if kind is Format.TORCH_LEGACY:  # torch's magic number, not any pickle
        return head.startswith(LEGACY_TORCH_START)
    if kind is Format.TORCH_ZIP:  # any zip: only a torch archive has a data.pkl
        try:
            with zipfile.ZipFile(native_path(path)) as archive:
                return any(name.endswith("data.pkl") for name in archive.namelist())
        except (OSError, zipfile.BadZipFile):
            return False
    return False


def find_model_files(folder: str | os.PathLike[str]) -> list[str]:
    """Model files under ``folder``, recursively, sorted.

    A file counts when its suffix is a model suffix (:data:`.io.sniff.MODEL_SUFFIXES`) or,
    whatever its name, when its first bytes are those of a safetensors or torch file. A diffusers
    folder is one entry, its files not listed. Hidden files and folders are skipped; a file reached
    twice (links) is listed once.

    Raises:
        ModelReadError: ``folder`` is not a directory.
    """
    return _walk_models(folder)[0]


def _walk_models(folder: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """Model files under ``folder`` and every folder visited (see :func:`find_model_files`)."""
    root = os.fspath(folder)
    if not os.path.isdir(root):
        raise ModelReadError(f"{root}: not a directory" if os.path.exists(root) else f"{root}: no such folder")
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    visited: list[str] = []
    for current, entries in walk_folders(root, diffusers=True):
        visited.append(current)
        for path, st in entries:
            if st is None:
                found.append(path)  # a dangling link: reported as an error later
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            # Only regular files are sniffed: opening a FIFO blocks, reading a device never ends.
            if stat.S_ISDIR(st.st_mode) or path.lower().endswith(MODEL_SUFFIXES) \
                    or (is_regular(st) and _looks_like_model(path)):  # a folder here is a diffusers one
                seen.add((st.st_dev, st.st_ino))
                found.append(path)
    return found, visited


@dataclass
class _Scanned:
    row: AuditRow
    quick: dict[str, str] = field(default_factory=dict)  # component -> quick fingerprint
    component_bytes: dict[str, int] = field(default_factory=dict)


def _scan(path: str, hashes: bool) -> _Scanned:
    with open_model(path) as model:
        report = inspect_open_model(model)
        ident = identify_model(model)
        quick, sizes = {}, {}
        for name, tensors in component_tensors(model, ident).items():
            quick[name] = quick_fingerprint(model, tensors)
            sizes[name] = sum(t.nbytes for t in tensors.values())
    ids = tuple(dict.fromkeys(f.id for f in report.findings))
    file_hashes = None
    if hashes and not os.path.isdir(native_path(path)):  # a folder has no file hashes (AutoV2 is of one file)
        from .hashing import hash_file  # the hashing module is only needed with --hashes

        file_hashes = hash_file(path).to_dict()
        file_hashes.pop("path", None)
    row = AuditRow(path, report.format, report.architecture, report.size_bytes, report.pruned_size_bytes, ids,
                   file_hashes)
    return _Scanned(row, quick, sizes)


def _folder_files(folder: str) -> list[tuple[str, str]]:
    """Every file of a diffusers folder as ``(relative name, path)``: its bytes are the folder's content."""
    return [(os.path.relpath(p, folder), p) for p, st in walk_files(folder) if is_regular(st)]


def _sample_digest(path: str, size: int) -> str:
    """A digest of a few blocks of the file (of every file, by name, of a diffusers folder)."""
    if os.path.isdir(native_path(path)):
        h = hashlib.sha256()
        for name, file in _folder_files(path):
            h.update(f"{name}\0{_sample_digest(file, os.path.getsize(native_path(file)))}\n".encode())
        return h.hexdigest()
    h = hashlib.sha256()
    with open(native_path(path), "rb") as f:
        for i in range(_SAMPLES):
            f.seek((size - _SAMPLE_BYTES) * i // max(1, _SAMPLES - 1) if size > _SAMPLE_BYTES else 0)
            h.update(f.read(_SAMPLE_BYTES))
    return h.hexdigest()


def _sha256(path: str) -> str:
    """The file's SHA-256; of a diffusers folder, the SHA-256 of its files' names and SHA-256s."""
    if os.path.isdir(native_path(path)):
        return hashlib.sha256("".join(f"{name}\0{_sha256(file)}\n" for name, file in _folder_files(path))
                              .encode()).hexdigest()
    h = hashlib.sha256()
    with open(native_path(path), "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def _fingerprint(path: str, component: str) -> str:
    with open_model(path) as model:
        ident = identify_model(model)
        tensors = component_tensors(model, ident)[component]
        return fingerprint_component(model, component, tensors).fingerprint


def _groups(items: Iterable[tuple[Any, str]]) -> list[list[str]]:
    """Paths sharing a key, for keys shared by at least two paths."""
    by_key: dict[Any, list[str]] = defaultdict(list)
    for key, path in items:
        by_key[key].append(path)
    return [paths for paths in by_key.values() if len(paths) > 1]


@dataclass(frozen=True)
class _Failed:
    message: str


def _guard(fn: Callable[..., Any], path: str, *args: Any) -> Any:
    """``fn(path, *args)``, or :class:`_Failed` with a one-line message: one bad file never stops the audit."""
    try:
        return fn(path, *args)
    except ModelDocError as exc:
        return _Failed(str(exc))
    except OSError as exc:
        return _Failed(f"{path}: cannot be read ({exc.strerror or exc})")
    except Exception as exc:  # a bug on one file: report it, go on with the others
        logger.debug("audit of %s failed", path, exc_info=True)
        return _Failed(f"{path}: internal error ({type(exc).__name__}: {exc})")


def audit_folder(
    folder: str | os.PathLike[str],
    *,
    hashes: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Audit:
    """Audit every model file under ``folder``.

    Args:
        folder: the folder to walk (recursively).
        hashes: also compute every file's hashes (sha256, AutoV1/2/3, CRC32, BLAKE3); reads
            every file in full.
        workers: threads to use (default: the CPU count, at most 4).
        progress: ``progress(done, total, message)``, counted in files.

    Returns:
        An :class:`Audit`; files that could not be read are in ``errors``.

    Raises:
        ModelReadError: ``folder`` is not a directory.

    Example:
        >>> result = audit_folder("models/Stable-diffusion")
        >>> [d.paths for d in result.duplicates if d.kind == "file"]
        [('models/Stable-diffusion/a.safetensors', 'models/Stable-diffusion/old/a.safetensors')]
    """
    root = os.fspath(folder)
    paths, visited = _walk_models(root)
    partials = tuple(p for current in visited for p in find_partials(current))
    workers = max(1, workers or min(4, os.cpu_count() or 1))
    scanned: dict[str, _Scanned] = {}
    errors: dict[str, str] = {}

    with worker_pool(workers, "modeldoc-audit") as pool:
        def run(fn: Callable[..., Any], jobs: list[Any], message: str) -> dict[Any, Any]:
            """``fn`` over ``jobs`` in the pool; failures go to ``errors``, successes are returned."""
            out = {}
            calls = pool.map(lambda job: _guard(fn, *(job if isinstance(job, tuple) else (job,))), jobs)
            for done, (job, result) in enumerate(zip(jobs, calls), 1):
                path = job[0] if isinstance(job, tuple) else job
                if isinstance(result, _Failed):
                    errors.setdefault(path, result.message)
                else:
                    out[job] = result
                if progress is not None:
                    progress(done, len(jobs), f"{message} {path}")
            return out

        # 1. Inspect every file: headers plus the few tensors the checks read.
        scanned = run(lambda p: _scan(p, hashes), paths, "inspecting")

        # 2. Identical files: same size, then the same sampled bytes, then the same SHA-256
        # (known already with --hashes, except for diffusers folders, which have no file hashes).
        sha = {p: s.row.hashes["sha256"] for p, s in scanned.items() if s.row.hashes}
        rest = {p: s for p, s in scanned.items() if p not in sha}
        same_size = [p for g in _groups((s.row.size_bytes, p) for p, s in rest.items()) for p in g]
        samples = run(lambda p: _sample_digest(p, scanned[p].row.size_bytes), same_size, "sampling")
        alike = [p for g in _groups((samples[p], p) for p in samples) for p in g]
        sha.update(run(_sha256, alike, "hashing"))
        file_groups = [sorted(g) for g in _groups((digest, p) for p, digest in sha.items())]

        # 3. Identical components: a quick fingerprint shared by two different contents, then in full.
        content_of = {p: p for p in scanned}  # each file's representative among its identical copies
        for group in file_groups:
            for p in group:
                content_of[p] = group[0]
        quick: dict[tuple[str, str], set[str]] = defaultdict(set)
        for p, s in scanned.items():
            for name, digest in s.quick.items():
                quick[(name, digest)].add(content_of[p])
        jobs = sorted({(rep, name) for (name, _), reps in quick.items() if len(reps) > 1 for rep in reps})
        prints = run(_fingerprint, jobs, "fingerprinting")

    duplicates = [Duplicate("file", tuple(g), sha[g[0]], scanned[g[0]].row.size_bytes) for g in file_groups]
    by_print: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (rep, name), digest in prints.items():
        by_print[(name, digest)].extend(p for p in scanned if content_of[p] == rep)
    for (name, digest), group in by_print.items():
        if len({content_of[p] for p in group}) > 1:
            group = sorted(group)
            duplicates.append(Duplicate("component", tuple(group), digest, scanned[group[0]].component_bytes[name], name))
    duplicates.sort(key=lambda d: (d.kind != "file", d.component or "", d.paths))
    rows = tuple(scanned[p].row for p in sorted(scanned))
    return Audit(root, rows, tuple(duplicates), tuple(AuditError(p, m) for p, m in sorted(errors.items())), partials)
