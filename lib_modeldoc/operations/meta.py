"""View and edit a safetensors file's ``__metadata__`` without touching its tensors.

An edit writes a new header and copies the data section byte for byte, so AutoV3 (the hash of
the data section, ``shared/reference/formats.md`` section 3) stays the same while SHA-256 and
AutoV2 change with the header. The merge recipe AUTOMATIC1111's checkpoint merger stores
(``sd_merge_recipe``, ``sd_merge_models``) is decoded, and the models it names can be looked up
among the user's files: the recipe keeps each input's legacy hash (AutoV1, a 64 KiB read), so only
a file whose AutoV1 matches is hashed in full to confirm it.

Example:
    >>> view = read_metadata("merge.safetensors")
    >>> view.fields["title"], [m.name for m in view.merge_models]
    >>> edit_metadata("merge.safetensors", "out.safetensors", MetadataEdit(set={"modelspec.title": "Mine"}))
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..analysis.hashing import AUTOV1_LENGTH, AUTOV1_OFFSET, HashRing
from ..errors import ModelReadError, PlanError
from ..io.atomic import atomic_output, check_output_path
from ..io.paths import native_path, same_file
from ..io.safetensors_read import MAX_HEADER_SIZE, read_safetensors_header
from ..io.sniff import Format, sniff_bytes
from ..progress import Progress

__all__ = [
    "COMMON_FIELDS",
    "MergeInput",
    "MetadataView",
    "MetadataEdit",
    "EditResult",
    "read_metadata",
    "edit_metadata",
    "resolve_merge_inputs",
]

#: The metadata keys most tools show, by the short name the CLI options and the tab use.
#: All are ModelSpec keys (``shared/reference/formats.md`` 4.1), which every value holds as a string.
COMMON_FIELDS: dict[str, str] = {
    "title": "modelspec.title",
    "author": "modelspec.author",
    "description": "modelspec.description",
    "license": "modelspec.license",
    "usage_hint": "modelspec.usage_hint",
    "trigger_phrase": "modelspec.trigger_phrase",
    "date": "modelspec.date",
}

MERGE_RECIPE_KEY = "sd_merge_recipe"
MERGE_MODELS_KEY = "sd_merge_models"
_COPY_CHUNK = 8 << 20


@dataclass(frozen=True)
class MergeInput:
    """One model a merge was made from, as ``sd_merge_models`` records it.

    Attributes:
        sha256: the input's full SHA-256 (the key of its entry).
        name: the checkpoint name the merging WebUI showed.
        legacy_hash: its AutoV1 (8 hex), or ``""`` when the entry has none.
        recipe: that input's own merge recipe, when it was itself a merge.
        found: the path of a file of the user's with this SHA-256, once resolved.
    """

    sha256: str
    name: str
    legacy_hash: str = ""
    recipe: Mapping[str, Any] | None = None
    found: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "name": self.name, "legacy_hash": self.legacy_hash,
                "recipe": dict(self.recipe) if self.recipe else None, "found": self.found}


@dataclass(frozen=True)
class MetadataView:
    """What a file's metadata says.

    Attributes:
        path: the file.
        metadata: every key, as stored (strings).
        fields: the :data:`COMMON_FIELDS` present, by short name.
        merge_recipe: ``sd_merge_recipe`` decoded, or ``None``.
        merge_models: ``sd_merge_models`` decoded, in the order stored.
        undecodable: keys that look like JSON (start with ``{``) but do not parse.
    """

    path: str
    metadata: Mapping[str, str]
    fields: Mapping[str, str]
    merge_recipe: Mapping[str, Any] | None
    merge_models: tuple[MergeInput, ...]
    undecodable: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "metadata": dict(self.metadata),
            "fields": dict(self.fields),
            "merge_recipe": dict(self.merge_recipe) if self.merge_recipe is not None else None,
            "merge_models": [m.to_dict() for m in self.merge_models],
            "undecodable": list(self.undecodable),
        }


@dataclass(frozen=True)
class MetadataEdit:
    """Changes to apply: ``set`` keys (after ``delete``), or ``replace`` the whole metadata first."""

    set: Mapping[str, str] = field(default_factory=dict)
    delete: tuple[str, ...] = ()
    replace: Mapping[str, str] | None = None

    def apply(self, metadata: Mapping[str, str]) -> dict[str, str]:
        """The metadata after this edit. Raises :class:`PlanError` for a key it cannot delete."""
        result = dict(self.replace if self.replace is not None else metadata)
        for key in self.delete:
            if key not in result:
                raise PlanError(f"metadata has no key {key!r} to delete")
            del result[key]
        for key, value in self.set.items():
            if not isinstance(key, str) or not key or not isinstance(value, str):
                raise PlanError(f"metadata keys and values must be text: {key!r}")
            if not (_is_utf8(key) and _is_utf8(value)):
                raise PlanError(f"metadata key {key!r} or its value is not valid text (UTF-8)")
            result[key] = value
        return result


@dataclass(frozen=True)
class EditResult:
    """A written edit: the output and the hashes before and after (AutoV3 is the same for both)."""

    source: str
    output: str
    metadata: Mapping[str, str]
    sha256_before: str
    sha256_after: str
    autov3: str
    size_bytes: int

    @property
    def autov2_before(self) -> str:
        return self.sha256_before[:10]

    @property
    def autov2_after(self) -> str:
        return self.sha256_after[:10]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "output": self.output, "metadata": dict(self.metadata),
            "autov2_before": self.autov2_before, "autov2_after": self.autov2_after,
            "sha256_before": self.sha256_before, "sha256_after": self.sha256_after,
            "autov3": self.autov3[:12], "size_bytes": self.size_bytes,
        }


def read_metadata(path: str | os.PathLike[str]) -> MetadataView:
    """Read ``path``'s metadata (a safetensors file) and decode the merge recipe.

    Raises:
        ModelReadError: not a readable safetensors file (a ``.ckpt`` has no metadata header).
    """
    header = _read_header(os.fspath(path))
    return _view(header.path, header.metadata)


def edit_metadata(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    edit: MetadataEdit,
    *,
    overwrite: bool = False,
    in_place: bool = False,
    progress: Progress | None = None,
) -> EditResult:
    """Write ``source`` with its metadata edited to ``output``; the tensors are copied unchanged.

    Args:
        source: a safetensors file.
        output: where to write; the same file as ``source`` only with ``in_place``.
        edit: the changes.
        overwrite: replace an existing ``output`` that is not the source.
        in_place: allow ``output`` to be ``source``; it is then replaced atomically, once the new
            file is complete.
        progress: called as ``(bytes_done, bytes_total, message)``.

    Raises:
        ModelReadError: ``source`` is not a readable safetensors file.
        PlanError: the edit deletes a key that is not there.
        OutputError: ``output`` cannot be written (exists, is the source without ``in_place``, …).
    """
    src, out = os.fspath(source), os.fspath(output)
    header = _read_header(src)
    metadata = edit.apply(header.metadata)
    if not (same_file(src, out) and in_place):  # the one command that may replace its source, and only when asked
        check_output_path(out, overwrite=overwrite, sources=(src,))
    new_header = _encode_header(header.entries, metadata)
    if len(new_header) - 8 > MAX_HEADER_SIZE:
        raise PlanError(f"the edited header would be {len(new_header) - 8} bytes, over safetensors' 100 MB limit")
    data_size = header.file_size - header.data_start
    total = len(new_header) + data_size
    before, after, data_hash = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    # The source is closed before the output is renamed into place: with --in-place that rename
    # replaces the source, which Windows refuses while a handle to it is open.
    with atomic_output(out, expected_size=total) as dst, open(native_path(src), "rb") as f:
        f.seek(0)
        before.update(f.read(header.data_start))
        dst.write(new_header)
        after.update(new_header)
        done = 0
        # each block is hashed three times (before, after, data section) in three threads
        with HashRing([before, after, data_hash], block_size=_COPY_CHUNK) as ring:
            while done < data_size:
                block = ring.free_block()
                with memoryview(block.buffer) as view:
                    n = f.readinto(view[: min(_COPY_CHUNK, data_size - done)])
                    if not n:
                        raise ModelReadError(f"{src}: the file shrank while it was being read")
                    dst.write(view[:n])
                ring.hash(block, n)
                done += n
                if progress is not None:
                    progress(done, data_size, "copying tensors")
    return EditResult(src, out, metadata, before.hexdigest(), after.hexdigest(), data_hash.hexdigest(), total)


def resolve_merge_inputs(
    inputs: Iterable[MergeInput], candidates: Iterable[str | os.PathLike[str]],
    known_sha256: Callable[[str], str | None] | None = None,
) -> tuple[MergeInput, ...]:
    """Find each merge input among ``candidates`` (paths of the user's model files).

    A candidate is hashed in full only when its AutoV1 (64 KiB at 1 MiB) equals the input's
    legacy hash, so resolving against a whole models folder costs one small read per file.
    Inputs without a legacy hash are matched by full SHA-256 only against candidates already
    hashed. Unreadable candidates are skipped. ``known_sha256`` (e.g. the WebUI's hash cache) gives a
    candidate's SHA-256 when it is known for the file as it is now: such a file is not read at all.
    The search stops as soon as every input is found, so candidates with known hashes go first.
    """
    wanted = list(inputs)
    by_legacy: dict[str, list[int]] = {}
    for index, item in enumerate(wanted):
        if item.legacy_hash:
            by_legacy.setdefault(item.legacy_hash.lower(), []).append(index)
    found: dict[int, str] = {}
    hashed: dict[str, str] = {}  # sha256 -> path
    def all_found() -> bool:
        return all(index in found or item.sha256.lower() in hashed for index, item in enumerate(wanted))

    for candidate in candidates:
        if all_found():
            break
        path = os.fspath(candidate)
        cached = known_sha256(path) if known_sha256 is not None else None
        if cached:
            hashed.setdefault(cached.lower(), path)
            continue
        try:
            legacy = _autov1(path)
        except OSError:
            continue
        if legacy not in by_legacy:
            continue
        try:
            digest = _sha256_file(path)
        except OSError:
            continue
        hashed[digest] = path
        for index in by_legacy[legacy]:
            if wanted[index].sha256.lower() == digest:
                found.setdefault(index, path)
    return tuple(
        _with_found(item, found.get(index) or hashed.get(item.sha256.lower()))
        for index, item in enumerate(wanted)
    )


# Internals ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    path: str
    file_size: int
    data_start: int
    metadata: dict[str, str]
    entries: list[tuple[str, str, tuple[int, ...], int, int]]  # key, dtype, shape, begin, end


def _read_header(path: str) -> _Header:
    native = native_path(path)  # Windows: a long path in its \\?\ form; messages keep `path`
    if not os.path.isfile(native):
        what = "is not a regular file" if os.path.exists(native) else "no such file"
        raise ModelReadError(f"{path}: {what}")
    try:
        with open(native, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(512)
            kind = sniff_bytes(head, path, b"")
            if kind is not Format.SAFETENSORS:
                raise ModelReadError(
                    f"{path}: metadata lives only in safetensors files; convert it to .safetensors first"
                )
            tensors, metadata = read_safetensors_header(f, size, path)
            f.seek(0)
            (n,) = struct.unpack("<Q", f.read(8))
    except OSError as exc:
        raise ModelReadError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    data_start = 8 + n
    entries = [
        (info.key, info.dtype, info.shape, info.data_offset - data_start, info.data_offset - data_start + info.nbytes)
        for info in tensors.values()
    ]
    return _Header(path, size, data_start, dict(metadata), entries)


def _encode_header(entries: list[tuple[str, str, tuple[int, ...], int, int]], metadata: Mapping[str, str]) -> bytes:
    """The length prefix and JSON header; offsets unchanged, so the data section copies as is."""
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    for key, dtype, shape, begin, end in entries:
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [begin, end]}
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw


def _view(path: str, metadata: Mapping[str, str]) -> MetadataView:
    fields = {short: metadata[key] for short, key in COMMON_FIELDS.items() if key in metadata}
    undecodable: list[str] = []
    recipe = _decode(metadata, MERGE_RECIPE_KEY, undecodable)
    models_raw = _decode(metadata, MERGE_MODELS_KEY, undecodable)
    models: list[MergeInput] = []
    if isinstance(models_raw, Mapping):
        for sha, entry in models_raw.items():
            entry = entry if isinstance(entry, Mapping) else {}
            sub = entry.get("sd_merge_recipe")
            models.append(MergeInput(
                sha256=str(sha),
                name=str(entry.get("name") or ""),
                legacy_hash=str(entry.get("legacy_hash") or ""),
                recipe=sub if isinstance(sub, Mapping) else None,
            ))
    return MetadataView(
        path=path,
        metadata=dict(metadata),
        fields=fields,
        merge_recipe=recipe if isinstance(recipe, Mapping) else None,
        merge_models=tuple(models),
        undecodable=tuple(undecodable),
    )


def _decode(metadata: Mapping[str, str], key: str, undecodable: list[str]) -> Any:
    text = metadata.get(key)
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # a damaged recipe is shown raw, never fatal
        undecodable.append(key)
        return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from undecodable command-line bytes
        return False
    return True


def _autov1(path: str) -> str:
    with open(native_path(path), "rb") as f:
        f.seek(AUTOV1_OFFSET)
        return hashlib.sha256(f.read(AUTOV1_LENGTH)).hexdigest()[:8]


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(native_path(path), "rb") as f:
        for block in iter(lambda: f.read(_COPY_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _with_found(item: MergeInput, path: str | None) -> MergeInput:
    if path is None:
        return item
    return MergeInput(item.sha256, item.name, item.legacy_hash, item.recipe, path)
