"""Write an output through a temporary file renamed into place only when complete.

The temporary file is hidden beside the target and named ``.NAME.<pid>.<token>.partial``: a
write killed before its rename (``kill -9``, a power cut) leaves one behind, and the pid in the
name tells a leftover (its process is gone) from a write still running. :func:`find_partials`
lists them (``audit`` and the tab report them); every new write sweeps the stale ones of its
folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import OutputError
from .output_rule import OutputKind, check_output
from .paths import native_path

__all__ = ["atomic_output", "check_output_path", "find_partials", "partial_name", "sweep_stale_partials", "Partial"]

PARTIAL_SUFFIX = ".partial"
_PID_PARTIAL = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]{8})\.partial$")
_OLD_PARTIAL = re.compile(r"^\.(?P<name>.+)\.(?P<token>[A-Za-z0-9_]{8})\.partial$")  # before the pid was in the name
# Without a live pid to go by, a partial file untouched this long is a leftover: a running
# write touches its file at least every few seconds.
STALE_AFTER_S = 15 * 60


def check_output_path(path: str, *, overwrite: bool = False, sources: tuple[str, ...] = ()) -> None:
    """Refuse an output that would replace a source or an existing file (see :func:`check_output`).

    Raises:
        OutputError: the output is a source, exists without ``overwrite``, or its folder is missing.
    """
    check_output(path, kind=OutputKind.MODEL, overwrite=overwrite, sources=sources)


def partial_name(name: str, *, pid: int | None = None) -> str:
    """The hidden temporary name a write of ``name`` uses (carries the writing process's pid)."""
    return f".{name}.{os.getpid() if pid is None else pid}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}"


@dataclass(frozen=True)
class Partial:
    """A temporary file of a write: ``stale`` when its writer is gone (a leftover)."""

    path: str
    size_bytes: int
    stale: bool

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "size_bytes": self.size_bytes, "stale": self.stale}


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there; go by age only
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def find_partials(folder: str) -> list[Partial]:
    """The temporary files of writes in ``folder`` (not recursive), stale or not, sorted by path."""
    found = []
    try:
        names = os.listdir(folder)
    except OSError:
        return found
    now = time.time()
    for name in sorted(names):
        if not (name.startswith(".") and name.endswith(PARTIAL_SUFFIX)):
            continue
        path = os.path.join(folder, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        old = now - st.st_mtime > STALE_AFTER_S
        match = _PID_PARTIAL.match(name)
        if match:
            pid = int(match["pid"])
            stale = pid != os.getpid() and (old or not _pid_alive(pid))
        elif _OLD_PARTIAL.match(name):
            stale = old
        else:
            continue
        found.append(Partial(path, st.st_size, stale))
    return found


def sweep_stale_partials(folder: str) -> list[Partial]:
    """Remove the leftovers of killed writes in ``folder``; returns what was removed."""
    removed = []
    for partial in find_partials(folder):
        if partial.stale:
            with contextlib.suppress(OSError):
                os.unlink(partial.path)
                removed.append(partial)
    return removed


def _new_partial(folder: str, name: str) -> tuple[int, str]:
    # 0o666 filtered by the umask, as any new file; narrowed later to the source's mode.
    for _ in range(100):
        tmp = os.path.join(folder, partial_name(name))
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", folder)


@contextlib.contextmanager
def atomic_output(path: str, *, expected_size: int | None = None, like: str | None = None) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it to ``path``.

    The yielded file's ``name`` is the temporary path, for checks before the rename. Stale
    temporary files of killed writes in the same folder are removed first.

    The new file's mode is what the umask allows, and never more than ``like``'s (a source):
    a private 0600 model gives a 0600 output.

    On any exception (including KeyboardInterrupt) the temporary file is removed and ``path`` is
    left as it was. OS errors become :class:`OutputError` with one line.
    """
    target = native_path(os.path.abspath(path))  # Windows: the \\?\ form of a long path
    folder = os.path.dirname(target)
    if expected_size is not None:
        _check_free_space(path, folder, expected_size, os.path.dirname(os.path.abspath(path)))
    sweep_stale_partials(folder)
    try:
        fd, tmp = _new_partial(folder, os.path.basename(target))
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {os.path.dirname(os.path.abspath(path))} ({exc.strerror or exc})") from None
    os.close(fd)
    f = open(tmp, "wb")  # noqa: SIM115 - closed below; by name so that f.name is the temporary path
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        _follow_mode(tmp, like)
        _replace(path, tmp, target)
    except BaseException as exc:
        f.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OutputError):
            raise
        if isinstance(exc, OSError):
            if exc.errno == errno.ENOSPC:
                raise OutputError.worded("error.output.disk_full", path=path) from None
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


def _follow_mode(tmp: str, like: str | None) -> None:
    """Narrow the new file's permissions to the source's (the owner keeps read and write)."""
    if not like or os.name == "nt":
        return
    try:
        source_bits = os.stat(like).st_mode & 0o777
        current = os.stat(tmp).st_mode & 0o777
    except OSError:
        return
    wanted = current & (source_bits | 0o600)
    if wanted != current:
        os.chmod(tmp, wanted)


def _check_free_space(path: str, folder: str, needed: int, shown: str) -> None:
    try:
        free = shutil.disk_usage(folder).free  # POSIX and Windows alike
    except OSError:
        return
    if needed > free:
        raise OutputError(
            f"{path}: needs {needed / 1e9:.2f} GB but only {free / 1e9:.2f} GB are free in {shown}"
        )
