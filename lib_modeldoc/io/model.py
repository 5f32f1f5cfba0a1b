"""`ModelFile`: a read-only, lazy view of any supported model file."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..dtypes import DTYPES, to_float32
from ..errors import ModelReadError
from ..strenum import StrEnum
from .buffers import BufferRing
from .paths import native_path
from .positioned import PositionedFile
from .regular import open_regular
from .safetensors_read import read_safetensors_header
from .sniff import Format, sniff_bytes
from .tensor import TensorInfo

# numpy and the pickle reader are imported where used: reading a safetensors header needs neither.
if TYPE_CHECKING:
    import numpy as np

    from .pickle_read import TensorRef

__all__ = ["ModelFormat", "ModelFile", "open_model"]


class ModelFormat(StrEnum):
    """What kind of model file a :class:`ModelFile` reads (:attr:`ModelFile.container` says more)."""

    SAFETENSORS = "safetensors"
    CKPT = "ckpt"  # a PyTorch pickle: zip, legacy or bare
    DIFFUSERS = "diffusers"  # a diffusers folder read as one model

_NOT_A_MODEL = {
    Format.HTML: "an HTML page, not a model file (a failed download?)",
    Format.TEXT: "a text file, not a model file",
    Format.TAR: "an old tar-format torch file, which is not supported",
    Format.UNKNOWN: "not a model file (neither safetensors nor a PyTorch checkpoint)",
}


class ModelFile(Mapping[str, TensorInfo]):
    """The tensors of a model file, by key, described from its header alone.

    Tensor bytes are read only when asked (:meth:`read`), one tensor at a time. For pickles the
    mapping holds the state dict the WebUI would load (``state_dict`` unwrapped); tensors kept
    elsewhere (optimizer state) are in :attr:`stray_tensors`, and plain values in :attr:`extras`.

    Use :func:`open_model` to create one; close it (or use ``with``) when done.
    """

    def __init__(
        self,
        path: str,
        format: ModelFormat,
        size: int,
        tensors: dict[str, TensorInfo],
        *,
        metadata: Mapping[str, str] | None = None,
        extras: Mapping[str, Any] | None = None,
        stray_tensors: Mapping[str, TensorInfo] | None = None,
        container: str = "",
    ) -> None:
        self.path = path
        self.format = ModelFormat(format)
        self.container = container  # finer detail: "safetensors", "torch_zip", "torch_legacy", "pickle"
        self.size = size
        self.metadata: dict[str, str] = dict(metadata or {})
        self.extras: dict[str, Any] = dict(extras or {})
        self.stray_tensors: dict[str, TensorInfo] = dict(stray_tensors or {})
        self._tensors = tensors
        self._file = PositionedFile(path) if size else None
        self._inflated: dict[str, bytes] = {}  # compressed zip records, by name

    # Mapping protocol -------------------------------------------------------------------------
    def __getitem__(self, key: str) -> TensorInfo:
        return self._tensors[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    # Reading ----------------------------------------------------------------------------------
    def read_raw(self, key: str | TensorInfo) -> np.ndarray:
        """One tensor as a C-contiguous numpy array of its stored element type.

        BF16 and FP8 tensors come back as their raw bits (uint16 / uint8); use :meth:`read` for
        float values.
        """
        import numpy as np

        info = key if isinstance(key, TensorInfo) else self._lookup(key)
        dt = DTYPES[info.dtype]
        carrier = np.dtype(dt.numpy or dt.raw)
        if info.array is not None:
            return np.ascontiguousarray(info.array).view(carrier).reshape(info.shape)
        if info.numel == 0:
            return np.zeros(info.shape, dtype=carrier)
        if info.strides is None:
            data = self._pread(info, info.data_offset, info.nbytes)
            return np.frombuffer(data, dtype=carrier).reshape(info.shape)
        # A strided view: read the storage span it touches, then copy out the view.
        extent = 1 + sum((n - 1) * s for n, s in zip(info.shape, info.strides) if n > 0)
        data = self._pread(info, info.data_offset, extent * dt.itemsize)
        base = np.frombuffer(data, dtype=carrier)
        view = np.lib.stride_tricks.as_strided(
            base, shape=info.shape, strides=tuple(s * dt.itemsize for s in info.strides)
        )
        return np.ascontiguousarray(view)

    def read(self, key: str | TensorInfo) -> np.ndarray:
        """One tensor as numpy: floats widened to float32 where numpy lacks the type."""
        info = key if isinstance(key, TensorInfo) else self._lookup(key)
        raw = self.read_raw(info)
        if DTYPES[info.dtype].numpy is None:
            # Flattened first: on a 0-dim array numpy's scalar rules break the bit tricks.
            return to_float32(raw.reshape(-1), info.dtype).reshape(info.shape)
        return raw

    def read_bytes(self, key: str | TensorInfo) -> bytes:
        """One tensor's elements as little-endian, C-ordered bytes (what safetensors stores)."""
        info = key if isinstance(key, TensorInfo) else self._lookup(key)
        if info.strides is None and info.array is None and info.numel:
            return self._pread(info, info.data_offset, info.nbytes)
        return self.read_raw(info).tobytes()

    def read_chunks(
        self, key: str | TensorInfo, chunk_bytes: int = 32 << 20, buffer: bytearray | BufferRing | None = None
    ) -> Iterator[bytes | memoryview]:
        """A tensor's bytes (as :meth:`read_bytes`) in pieces of at most ``chunk_bytes``.

        Pieces end on element boundaries, so each can be cast on its own; memory stays bounded
        whatever the tensor's size. With ``buffer``, pieces are read into it and yielded as
        views of it: each is valid only until the next one is requested. With a
        :class:`~lib_modeldoc.io.buffers.BufferRing`, pieces fill its buffers in turn and each
        stays valid until its buffer's turn comes again.
        """
        info = key if isinstance(key, TensorInfo) else self._lookup(key)
        if info.strides is not None or info.array is not None or info.member is not None or not info.numel:
            yield self.read_bytes(info)
            return
        if buffer is not None:
            chunk_bytes = len(buffer)
        step = max(info.itemsize, chunk_bytes - chunk_bytes % info.itemsize)
        for start in range(0, info.nbytes, step):
            length = min(step, info.nbytes - start)
            if buffer is None:
                yield self._pread(info, info.data_offset + start, length)
                continue
            view = memoryview(buffer.next() if isinstance(buffer, BufferRing) else buffer)[:length]
            assert self._file is not None
            if self._file.readinto_at(view, info.data_offset + start) != length:
                raise ModelReadError(f"{self.path}: file is truncated: tensor '{info.key}' runs past its end")
            yield view

    def _lookup(self, key: str) -> TensorInfo:
        try:
            return self._tensors[key]
        except KeyError:
            try:
                return self.stray_tensors[key]
            except KeyError:
                raise ModelReadError(f"{self.path}: no tensor named '{key}'") from None

    def _pread(self, info: TensorInfo, offset: int, length: int) -> bytes:
        if info.member is not None:  # compressed archive member (rare): inflated once, kept while open
            data = self._inflated.get(info.member)
            if data is None:  # sizes were capped at open (limits.MAX_INFLATED_BYTES in all)
                from .pickle_read import read_member

                data = self._inflated[info.member] = read_member(native_path(self.path), info.member, self.path)
            chunk = data[offset : offset + length]
        else:
            assert self._file is not None
            chunk = self._file.read_at(offset, length)
        if len(chunk) != length:
            raise ModelReadError(f"{self.path}: file is truncated: tensor '{info.key}' runs past its end")
        return chunk

    # Lifetime ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the open file handle."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._inflated.clear()

    def __enter__(self) -> ModelFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ModelFile({self.path!r}, {self.format}, {len(self)} tensors)"


def open_model(path: str | os.PathLike[str]) -> ModelFile:
    """Open a model file lazily: read its header, never its weights, never run its code.

    Args:
        path: a ``.safetensors`` file or a torch pickle (``.ckpt``, ``.pt``, ``.pth``, ``.bin``,
            zip or legacy format). The format is taken from the bytes, not the name. A diffusers
            pipeline folder (``model_index.json``) opens as one model under the single-file keys.

    Returns:
        A :class:`ModelFile`.

    Raises:
        ModelReadError: the file is missing, damaged or not a model; one line says which.
        UnsafeCheckpointError: a pickle names a global outside the allowlist.

    Example:
        >>> with open_model("model.safetensors") as model:
        ...     print(len(model), model.format)
    """
    where = os.fspath(path)
    native = native_path(where)  # Windows: long paths get the \\?\ prefix; messages keep `where`
    if not os.path.exists(native):
        raise ModelReadError(f"{where}: no such file")
    if os.path.isdir(native):
        from .diffusers_folder import is_diffusers_folder, open_diffusers_folder  # a folder of parts

        if is_diffusers_folder(native):
            return open_diffusers_folder(where)
    try:
        with open_regular(native, where) as f:  # a FIFO or a device is refused unread
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise ModelReadError(f"{where}: file is empty")
            head = f.read(512)
            f.seek(max(0, size - 16))
            tail = f.read(16)
            kind = sniff_bytes(head, where, tail)
            if kind is Format.SAFETENSORS:
                tensors, metadata = read_safetensors_header(f, size, where)
                return ModelFile(where, ModelFormat.SAFETENSORS, size, tensors, metadata=metadata, container="safetensors")
            if kind in (Format.TORCH_ZIP, Format.TORCH_LEGACY):
                from .pickle_read import load_torch_legacy, load_torch_zip

                loader = load_torch_zip if kind is Format.TORCH_ZIP else load_torch_legacy
                obj, _ = loader(f, size, where)
                return _from_pickle(where, size, obj, kind.value)
    except PermissionError:
        raise ModelReadError(f"{where}: permission denied") from None
    except IsADirectoryError:
        raise ModelReadError(f"{where}: is a directory, not a model file") from None
    except OSError as exc:
        raise ModelReadError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    if size < 8 and kind is Format.UNKNOWN:
        raise ModelReadError(f"{where}: too short to be a model file ({size} bytes)")
    raise ModelReadError(f"{where}: {_NOT_A_MODEL[kind]}")


# Pickle object -> tensor mapping ----------------------------------------------------------------

_STATE_DICT = "state_dict"


def _from_pickle(where: str, size: int, obj: Any, container: str) -> ModelFile:
    if not isinstance(obj, Mapping):
        raise ModelReadError(f"{where}: the pickle holds a {type(obj).__name__}, not a dict of tensors")
    tensors: dict[str, TensorInfo] = {}
    strays: dict[str, TensorInfo] = {}
    extras: dict[str, Any] = {}
    state = obj
    outer: dict[str, Any] = {}
    # The WebUI pops "state_dict", and once more if that holds another one.
    while isinstance(state.get(_STATE_DICT), Mapping):
        outer.update({k: v for k, v in state.items() if k != _STATE_DICT})
        state = state[_STATE_DICT]
    _flatten(state, "", tensors, extras, where)
    outer_tensors: dict[str, TensorInfo] = {}
    _flatten(outer, "", outer_tensors, extras, where)
    strays.update(outer_tensors)
    if container == "torch_legacy" and not tensors and not strays:
        container = "pickle"
    return ModelFile(where, ModelFormat.CKPT, size, tensors, extras=extras, stray_tensors=strays, container=container)


def _flatten(node: Mapping[Any, Any], prefix: str, tensors: dict[str, TensorInfo], extras: dict[str, Any], where: str) -> None:
    from .pickle_read import InertObject, TensorRef

    for raw_key, value in node.items():
        key = prefix + (raw_key if isinstance(raw_key, str) else repr(raw_key))
        if isinstance(value, TensorRef):
            tensors[key] = _tensor_info(key, value, where)
        elif isinstance(value, Mapping):
            _flatten(value, key + ".", tensors, extras, where)
        elif isinstance(value, InertObject) and isinstance(value.state, Mapping) and isinstance(
            value.state.get("_parameters"), Mapping
        ):
            _flatten(value.state["_parameters"], key + ".", tensors, extras, where)  # ParameterDict
        elif isinstance(value, (list, tuple)) and any(isinstance(v, (TensorRef, Mapping)) for v in value):
            _flatten({str(i): v for i, v in enumerate(value)}, key + ".", tensors, extras, where)
        else:
            extras[key] = _plain(value)


def _plain(value: Any) -> Any:
    """A JSON-safe summary of a non-tensor value."""
    import numpy as np

    from .pickle_read import InertObject

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value[:16]]
    if isinstance(value, InertObject):
        return repr(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return f"<{type(value).__name__}>"


def _tensor_info(key: str, ref: TensorRef, where: str) -> TensorInfo:
    if ref.array is not None:
        return TensorInfo(key, ref.dtype, ref.shape, -1, array=ref.array)
    from .pickle_read import StorageRef

    storage = ref.storage
    assert isinstance(storage, StorageRef)
    itemsize = DTYPES[ref.dtype].itemsize
    storage_bytes = storage.numel * DTYPES[storage.dtype].itemsize
    numel = math.prod(ref.shape)
    contiguous = _is_contiguous(ref.shape, ref.stride)
    extent = numel if contiguous else 1 + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride) if n > 0)
    if numel and (ref.offset < 0 or (ref.offset + extent) * itemsize > storage_bytes or min(ref.stride, default=0) < 0):
        raise ModelReadError(f"{where}: tensor '{key}' points outside its storage; the file is damaged")
    return TensorInfo(
        key,
        ref.dtype,
        ref.shape,
        (0 if storage.member else storage.file_offset) + ref.offset * itemsize,
        strides=None if contiguous else ref.stride,
        span=storage_bytes - ref.offset * itemsize,
        member=storage.member,
    )


def _is_contiguous(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    expected = 1
    for n, s in zip(reversed(shape), reversed(stride)):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True
