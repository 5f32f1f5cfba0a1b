"""Write an output through a temporary file renamed into place only when complete."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import OutputError

__all__ = ["atomic_output", "check_output_path"]


def check_output_path(path: str, *, overwrite: bool = False, sources: tuple[str, ...] = ()) -> None:
    """Refuse an output that would replace a source or an existing file.

    Raises:
        OutputError: the output is a source, exists without ``overwrite``, or its folder is missing.
    """
    target = os.path.abspath(path)
    for source in sources:
        if os.path.exists(source) and os.path.exists(target) and os.path.samefile(source, target):
            raise OutputError(f"{path}: output is the same file as the source {source}; choose another name")
        if os.path.abspath(source) == target:
            raise OutputError(f"{path}: output is the same file as the source; choose another name")
    if os.path.isdir(target):
        raise OutputError(f"{path}: is a directory; give a file name for the output")
    if os.path.exists(target) and not overwrite:
        raise OutputError(f"{path}: already exists; pass --overwrite to replace it")
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise OutputError(f"{path}: folder {folder} does not exist")


@contextlib.contextmanager
def atomic_output(path: str, *, expected_size: int | None = None) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it to ``path``.

    The yielded file's ``name`` is the temporary path, for checks before the rename.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is
    left as it was. OS errors become :class:`OutputError` with one line.
    """
    target = os.path.abspath(path)
    folder = os.path.dirname(target)
    if expected_size is not None:
        _check_free_space(path, folder, expected_size)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".partial", dir=folder)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    f = open(tmp, "wb")  # noqa: SIM115 - closed below; f.name is the temporary path
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.chmod(tmp, 0o644)
        _replace(path, tmp, target)
    except BaseException as exc:
        f.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OutputError):
            raise
        if isinstance(exc, OSError):
            if exc.errno == errno.ENOSPC:
                raise OutputError(f"{path}: disk full while writing; nothing was written") from None
            raise OutputError(f"{path}: write failed ({exc.strerror or exc}); nothing was written") from None
        raise


def _replace(path: str, tmp: str, target: str) -> None:
    """Rename the finished file onto ``target`` (``os.replace``: atomic on POSIX and Windows).

    On Windows a target another program holds open (the WebUI with the model loaded, a viewer)
    cannot be replaced: that is a ``PermissionError``, said in one line.
    """
    try:
        os.replace(tmp, target)
    except PermissionError as exc:
        if os.path.exists(target):
            raise OutputError(
                f"{path}: cannot replace it: the file is open in another program or read-only "
                f"({exc.strerror or exc}); close it and try again; nothing was written"
            ) from None
        raise


def _check_free_space(path: str, folder: str, needed: int) -> None:
    try:
        free = shutil.disk_usage(folder).free  # POSIX and Windows alike
    except OSError:
        return
    if needed > free:
        raise OutputError(
            f"{path}: needs {needed / 1e9:.2f} GB but only {free / 1e9:.2f} GB are free in {folder}"
        )
