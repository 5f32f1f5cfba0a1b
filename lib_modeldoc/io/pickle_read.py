"""Read torch pickles (``.ckpt``/``.pt``/``.pth``/``.bin``) without running anything in them.

A restricted unpickler resolves only a closed allowlist of globals, each to an inert stand-in of
our own: tensors become :class:`TensorRef` records of where their bytes are, training callbacks
become :class:`InertObject` records. Any other global stops the load with
:class:`~lib_modeldoc.errors.UnsafeCheckpointError` before it is called. torch is never imported.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable

import numpy as np

from ..dtypes import DTYPES, TORCH_NAMES
from ..errors import ModelReadError, UnsafeCheckpointError

__all__ = ["InertObject", "StorageRef", "TensorRef", "load_torch_zip", "load_torch_legacy"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


@dataclass(eq=False)
class StorageRef:
    """A storage named by the pickle: its record key, element type and size."""

    key: str
    dtype: str  # safetensors code; "U8" for untyped (byte) storages
    numel: int
    file_offset: int = -1  # absolute offset of byte 0, once located
    member: str | None = None  # zip member, when compressed and not addressable
    view_offset: int = 0  # legacy views: bytes into the root storage


@dataclass(eq=False)
class TensorRef:
    """A tensor as the pickle describes it: a strided view into a storage."""

    storage: StorageRef | None
    offset: int  # in elements of dtype
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str
    array: np.ndarray | None = None  # tensors rebuilt from in-pickle numpy data


class InertObject:
    """Stand-in for an allowed class (e.g. Lightning's ModelCheckpoint): holds data, does nothing."""

    origin = "object"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.state: Any = dict(kwargs) if kwargs else None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.origin}>"


class _InertMeta(type):
    def __repr__(cls) -> str:
        return f"<class {cls.origin}>"


def _inert_class(module: str, name: str) -> type:
    return _InertMeta(name, (InertObject,), {"origin": f"{module}.{name}"})


@dataclass(frozen=True)
class _StorageType:
    dtype: str


@dataclass(frozen=True)
class _TorchDType:
    dtype: str


class _TensorClass:
    """Marker for ``torch.Tensor`` / ``torch.nn.Parameter`` as used by _rebuild_from_type_v2."""


def _rebuild_tensor(storage: StorageRef, offset: int, size: Any, stride: Any, *_: Any) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise pickle.UnpicklingError("tensor rebuilt from something that is not a storage")
    return TensorRef(storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride), storage.dtype)


def _rebuild_tensor_v3(
    storage: StorageRef, offset: int, size: Any, stride: Any, requires_grad: Any, hooks: Any,
    dtype: _TorchDType, *_: Any,
) -> TensorRef:
    ref = _rebuild_tensor(storage, offset, size, stride)
    if not isinstance(dtype, _TorchDType):
        raise pickle.UnpicklingError("tensor rebuilt with an unknown dtype")
    ref.dtype = dtype.dtype
    return ref


def _rebuild_parameter(data: TensorRef, *_: Any) -> TensorRef:
    return data


def _rebuild_from_type_v2(func: Callable[..., Any], new_type: Any, args: Any, state: Any) -> Any:
    if func not in (_rebuild_tensor, _rebuild_tensor_v3, _rebuild_parameter) or new_type is not _TensorClass:
        raise pickle.UnpicklingError("unsupported tensor subclass")
    return func(*args)


def _rebuild_from_numpy(data: Any, dtype: _TorchDType, device: Any, requires_grad: Any) -> TensorRef:
    array = np.ascontiguousarray(data)
    return TensorRef(None, 0, array.shape, (), dtype.dtype, array.astype(DTYPES[dtype.dtype].numpy or array.dtype))


def _numpy_scalar(dtype: np.dtype, data: bytes = b"") -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("unsupported numpy scalar")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_reconstruct(cls: Any, shape: Any, dtype: Any) -> np.ndarray:
    if cls is not np.ndarray:
        raise pickle.UnpicklingError("unsupported numpy array class")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Protocol 2 pickles spell bytes as _codecs.encode(str, "latin1").
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError("unsupported _codecs.encode call")
    return text.encode("latin1")


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    if not (isinstance(cls, type) and issubclass(cls, InertObject)) or base is not object:
        raise pickle.UnpicklingError("unsupported object reconstruction")
    return cls.__new__(cls)


_LEGACY_STORAGES = {
    "FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16", "DoubleStorage": "F64",
    "LongStorage": "I64", "IntStorage": "I32", "ShortStorage": "I16", "CharStorage": "I8",
    "ByteStorage": "U8", "BoolStorage": "BOOL",
}
_TORCH_DTYPE_ALIASES = {"half": "F16", "float": "F32", "double": "F64", "long": "I64", "int": "I32", "short": "I16"}
_INERT_CLASSES = {
    ("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint"),
    ("lightning.pytorch.callbacks.model_checkpoint", "ModelCheckpoint"),
    ("torch.nn.modules.container", "ParameterDict"),
    ("argparse", "Namespace"),
}


def _allowed_global(module: str, name: str) -> Any:
    """The stand-in for an allowed global, or ``None``: the allowlist, closed."""
    if module == "collections" and name == "OrderedDict":
        return collections.OrderedDict
    if module in ("builtins", "__builtin__") and name in ("set", "frozenset", "object"):
        # ``object`` is the base argument of copyreg._reconstructor (protocol 0/1 objects).
        return {"set": set, "frozenset": frozenset, "object": object}[name]
    if module == "torch._utils":
        return {
            "_rebuild_tensor": _rebuild_tensor,
            "_rebuild_tensor_v2": _rebuild_tensor,
            "_rebuild_tensor_v3": _rebuild_tensor_v3,
            "_rebuild_parameter": _rebuild_parameter,
            "_rebuild_parameter_with_state": _rebuild_parameter,
            "_rebuild_device_tensor_from_numpy": _rebuild_from_numpy,
        }.get(name)
    if module == "torch._tensor" and name == "_rebuild_from_type_v2":
        return _rebuild_from_type_v2
    if (module, name) in (("torch", "Tensor"), ("torch.nn.parameter", "Parameter"), ("torch", "Size")):
        return tuple if name == "Size" else _TensorClass
    if module == "torch" and name in _LEGACY_STORAGES:
        return _StorageType(_LEGACY_STORAGES[name])
    if module in ("torch", "torch.storage") and name == "UntypedStorage":
        return _StorageType("U8")
    if module == "torch" and (name in TORCH_NAMES or name in _TORCH_DTYPE_ALIASES):
        return _TorchDType(TORCH_NAMES[name].code if name in TORCH_NAMES else _TORCH_DTYPE_ALIASES[name])
    if module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        return {"scalar": _numpy_scalar, "_reconstruct": _numpy_reconstruct}.get(name)
    if module == "numpy" and name in ("dtype", "ndarray"):
        return {"dtype": np.dtype, "ndarray": np.ndarray}[name]
    if module == "numpy.dtypes" and name.endswith("DType") and name != "ObjectDType":
        return getattr(np.dtypes, name, None) if hasattr(np, "dtypes") else None
    if module == "_codecs" and name == "encode":
        return _codecs_encode
    if module == "copyreg" and name == "_reconstructor":
        return _copyreg_reconstructor
    if (module, name) in _INERT_CLASSES:
        return _inert_class(module, name)
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, where: str, persistent_load: Callable[[Any], Any]) -> None:
        super().__init__(file, encoding="utf-8")
        self._where = where
        self._persistent = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        # Protocol 0-2 pickles spell globals by their Python 2 names (copy_reg, __builtin__,
        # commands); map them back as pickle does, so the allowlist and the message name what
        # would really be called.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        target = _allowed_global(module, name)
        if target is None:
            raise UnsafeCheckpointError(
                f"{self._where}: refused to load: its pickle calls {module}.{name}, which no model "
                "file needs; nothing from the file was run"
            )
        return target

    def persistent_load(self, pid: Any) -> Any:
        return self._persistent(pid)


class _StorageTable:
    """Collects the storages a pickle names, one object per key."""

    def __init__(self) -> None:
        self.storages: dict[str, StorageRef] = {}
        self.views: list[tuple[StorageRef, str]] = []

    def __call__(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 4 and pid[0] == "module":
            # Legacy files name an nn.Module's class (e.g. ParameterDict) as ("module", cls,
            # source_file, source); cls was resolved by find_class, so it is already inert.
            if isinstance(pid[1], type) and issubclass(pid[1], InertObject):
                return pid[1]
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {str(pid)[:60]}")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int):
            raise pickle.UnpicklingError("malformed storage record")
        root = self.storages.get(key)
        if root is None:
            root = self.storages[key] = StorageRef(key, storage_type.dtype, numel)
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return root
        # Legacy view: (view_key, offset_in_elements, view_size) into the root storage.
        view_key, view_offset, view_size = view
        ref = StorageRef(str(view_key), root.dtype, int(view_size), view_offset=int(view_offset) * DTYPES[root.dtype].itemsize)
        self.views.append((ref, key))
        return ref

    def resolve_views(self) -> None:
        for ref, root_key in self.views:
            root = self.storages[root_key]
            ref.file_offset = root.file_offset + ref.view_offset
            ref.member = root.member


def _unpickle(data: BinaryIO, where: str, table: Callable[[Any], Any]) -> Any:
    try:
        return _RestrictedUnpickler(data, where, table).load()
    except UnsafeCheckpointError:
        raise
    except RecursionError:
        raise ModelReadError(f"{where}: pickle nests too deeply; the file is damaged") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, struct.error, UnicodeDecodeError, MemoryError, OverflowError) as exc:
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ModelReadError(f"{where}: pickle is damaged or not a checkpoint ({detail})") from None


def load_torch_zip(f: BinaryIO, file_size: int, where: str) -> tuple[Any, dict[str, StorageRef]]:
    """Unpickle a torch zip checkpoint and locate every storage's bytes in the file.

    Returns:
        ``(obj, storages)``: the unpickled object, with :class:`TensorRef` leaves, and its storages.
    """
    try:
        archive = zipfile.ZipFile(f)
        infos = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelReadError(f"{where}: zip archive is truncated or damaged ({exc})") from None
    pickles = [name for name in infos if name.endswith("/data.pkl") and name.count("/") == 1]
    if not pickles:
        if any(name.endswith("constants.pkl") for name in infos):
            raise ModelReadError(f"{where}: a TorchScript archive, not a checkpoint of weights")
        raise ModelReadError(f"{where}: a zip archive without data.pkl, not a PyTorch checkpoint")
    if len(pickles) > 1:
        raise ModelReadError(f"{where}: zip archive holds {len(pickles)} data.pkl records; refusing an ambiguous checkpoint")
    prefix = pickles[0][: -len("data.pkl")]
    order = infos.get(prefix + "byteorder")
    if order is not None and archive.read(order).strip() == b"big":
        raise ModelReadError(f"{where}: big-endian checkpoints are not supported")
    try:
        pickled = archive.read(pickles[0])
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelReadError(f"{where}: data.pkl cannot be read ({exc})") from None
    table = _StorageTable()
    obj = _unpickle(io.BytesIO(pickled), where, table)
    for key, storage in table.storages.items():
        info = infos.get(f"{prefix}data/{key}")
        if info is None:
            raise ModelReadError(f"{where}: storage data/{key} named by the pickle is missing from the archive")
        need = storage.numel * DTYPES[storage.dtype].itemsize
        if info.file_size < need:
            raise ModelReadError(f"{where}: storage data/{key} holds {info.file_size} bytes but {need} are needed")
        if info.compress_type == zipfile.ZIP_STORED:
            f.seek(info.header_offset)
            local = f.read(30)
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                raise ModelReadError(f"{where}: zip entry data/{key} is damaged")
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            storage.file_offset = info.header_offset + 30 + name_len + extra_len
            if storage.file_offset + need > file_size:
                raise ModelReadError(f"{where}: file is truncated: storage data/{key} runs past its end")
        else:
            storage.member = info.filename
    return obj, table.storages


def load_torch_legacy(f: BinaryIO, file_size: int, where: str) -> tuple[Any, dict[str, StorageRef]]:
    """Unpickle a legacy (pre-zip) torch file, or a bare pickle, and locate its storages."""
    table = _StorageTable()
    f.seek(0)
    first = _unpickle(f, where, table)
    if first != LEGACY_MAGIC:
        if table.storages:
            raise ModelReadError(f"{where}: pickle names tensor storages but has no torch header")
        return first, {}  # a bare pickle of plain data
    protocol = _unpickle(f, where, table)
    if protocol != LEGACY_PROTOCOL:
        raise ModelReadError(f"{where}: unsupported legacy torch protocol {protocol!r}")
    _unpickle(f, where, table)  # sys_info
    obj = _unpickle(f, where, table)
    keys = _unpickle(f, where, table)
    if not isinstance(keys, list):
        raise ModelReadError(f"{where}: legacy checkpoint has no storage list; the file is damaged")
    pos = f.tell()
    for key in keys:
        storage = table.storages.get(str(key))
        f.seek(pos)
        count = f.read(8)
        if len(count) < 8:
            raise ModelReadError(f"{where}: file is truncated: storage {key} is missing")
        (numel,) = struct.unpack("<q", count)
        if storage is None:
            raise ModelReadError(f"{where}: storage {key} is not named by the pickle; the file is damaged")
        storage.file_offset = pos + 8
        pos = storage.file_offset + numel * DTYPES[storage.dtype].itemsize
        if numel < storage.numel or pos > file_size:
            raise ModelReadError(f"{where}: file is truncated: storage {key} runs past its end")
    missing = set(table.storages) - {str(k) for k in keys}
    if missing:
        raise ModelReadError(f"{where}: storage {sorted(missing)[0]} has no data; the file is damaged")
    table.resolve_views()
    return obj, table.storages
