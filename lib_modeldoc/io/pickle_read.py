"""Read torch pickles (``.ckpt``/``.pt``/``.pth``/``.bin``) without running anything in them.

A restricted unpickler, run on the bounded interpreter of :mod:`~lib_modeldoc.io.pickle_vm`,
resolves only a closed allowlist of globals, each to an inert stand-in of our own: tensors become
:class:`TensorRef` records of where their bytes are, training callbacks become
:class:`InertObject` records. Any other global stops the load with
:class:`~lib_modeldoc.errors.UnsafeCheckpointError` before it is called. Every argument a
stand-in receives is validated; ``BUILD`` reaches only the stand-ins that need a state, and only
with validated fields. The object that comes back is checked to be a finite tree: no cycles, no
nesting deeper than :data:`~lib_modeldoc.io.limits.MAX_NESTING`. torch is never imported.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import itertools
import lzma
import math
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np

from ..dtypes import DTYPES, LEGACY_STORAGES, TORCH_NAMES
from ..errors import LimitExceededError, ModelReadError, UnsafeCheckpointError
from . import limits
from .pickle_vm import BoundedUnpickler, PickleError, PickleLimitError

__all__ = [
    "InertObject", "NumpyArray", "StorageRef", "TensorRef", "load_torch_zip", "load_torch_legacy", "read_member",
]

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


class NumpyArray(InertObject):
    """Stand-in for an array pickled by numpy: its data, once ``BUILD`` has given valid fields."""

    origin = "numpy.ndarray"
    array: np.ndarray | None = None

    def __repr__(self) -> str:
        return "<ndarray>"


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


class _NdarrayClass:
    """Marker for ``numpy.ndarray`` as the class argument of ``_reconstruct`` (never called)."""


class _ObjectClass:
    """Marker for ``builtins.object`` as the base argument of ``copyreg._reconstructor``."""


# Validation of what the pickle hands the stand-ins -------------------------------------------

def _index(value: Any, what: str) -> int:
    """A non-negative int below 2**62 (never a bool, never a float)."""
    if type(value) is not int or not 0 <= value < 1 << 62:
        raise PickleError(f"{what} {str(value)[:40]} is not a valid size or offset")
    return value


def _dims(value: Any, what: str) -> tuple[int, ...]:
    if type(value) not in (tuple, list) or len(value) > limits.MAX_DIMS:
        raise PickleError(f"{what} is not a list of at most {limits.MAX_DIMS} dimensions")
    dims = tuple(_index(v, what) for v in value)
    if any(d > limits.MAX_DIM for d in dims) or math.prod(d for d in dims if d) > limits.MAX_DIM:
        raise PickleError(f"{what} {list(dims)[:8]} is larger than any tensor can be")
    return dims


def _rebuild_tensor(storage: StorageRef, offset: Any, size: Any, stride: Any, *_: Any) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise PickleError("tensor rebuilt from something that is not a storage")
    shape, strides = _dims(size, "tensor shape"), _dims(stride, "tensor stride")
    if len(shape) != len(strides):
        raise PickleError("tensor shape and stride differ in length")
    return TensorRef(storage, _index(offset, "tensor offset"), shape, strides, storage.dtype)


def _rebuild_tensor_v3(
    storage: StorageRef, offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any,
    dtype: _TorchDType, *_: Any,
) -> TensorRef:
    ref = _rebuild_tensor(storage, offset, size, stride)
    if not isinstance(dtype, _TorchDType):
        raise PickleError("tensor rebuilt with an unknown dtype")
    ref.dtype = dtype.dtype
    return ref


def _rebuild_parameter(data: TensorRef, *_: Any) -> TensorRef:
    if not isinstance(data, TensorRef):
        raise PickleError("parameter rebuilt from something that is not a tensor")
    return data


def _rebuild_from_type_v2(func: Callable[..., Any], new_type: Any, args: Any, state: Any) -> Any:
    if func not in (_rebuild_tensor, _rebuild_tensor_v3, _rebuild_parameter) or new_type is not _TensorClass:
        raise PickleError("unsupported tensor subclass")
    if type(args) is not tuple:
        raise PickleError("malformed tensor record")
    return func(*args)


def _rebuild_from_numpy(data: Any, dtype: Any, device: Any = None, requires_grad: Any = None) -> TensorRef:
    if not isinstance(data, NumpyArray) or data.array is None or not isinstance(dtype, _TorchDType):
        raise PickleError("tensor rebuilt from something that is not a numpy array")
    target = DTYPES[dtype.dtype]
    array = data.array
    if target.numpy is not None and array.dtype != np.dtype(target.numpy):
        if array.dtype.kind not in "biuf" or array.nbytes > limits.MAX_PICKLE_BYTES:
            raise PickleError("in-pickle tensor data of an unsupported type")
        array = array.astype(target.numpy)
    elif target.numpy is None and array.dtype.itemsize != target.itemsize:
        raise PickleError("in-pickle tensor data does not match its dtype")
    return TensorRef(None, 0, tuple(array.shape), (), dtype.dtype, array)


# Plain numbers, and short text/bytes for scalars such as a run name (never records or objects).
_NUMPY_SPEC = re.compile(r"[<>|=]?(?:[?bBhHiIlLqQefdFD]|[biuf][1248]|c(?:8|16)|b1|[US][1-9][0-9]{0,3})")


def _numpy_dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    """``numpy.dtype(spec)`` for plain numeric specs only (never records, objects or strings)."""
    if type(spec) is not str or not _NUMPY_SPEC.fullmatch(spec) or type(align) is not bool or type(copy) is not bool:
        raise PickleError(f"unsupported numpy dtype {str(spec)[:40]}")
    return np.dtype(spec)


def _numpy_dtype_class(name: str) -> Callable[..., np.dtype] | None:
    """numpy 2 pickles a dtype as its class, e.g. ``numpy.dtypes.Float64DType('f8', False, True)``."""
    cls = getattr(np, "dtypes", None) and getattr(np.dtypes, name, None)
    if cls is None or not name.endswith("DType"):
        return None

    def make(spec: Any = None, align: Any = False, copy: Any = False) -> np.dtype:
        made = _numpy_dtype(spec, align, copy)
        if type(made) is not cls:
            raise PickleError(f"numpy {name} does not match {spec!r}")
        return made

    return make


def _numpy_scalar(dtype: Any, data: Any = b"") -> Any:
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufcUS" or not isinstance(data, (bytes, bytearray)):
        raise PickleError("unsupported numpy scalar")
    if len(data) != dtype.itemsize:
        raise PickleError("numpy scalar of the wrong size")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_reconstruct(cls: Any, shape: Any, dtype: Any) -> NumpyArray:
    # numpy pickles an array as _reconstruct(ndarray, (0,), b"b") then BUILD with its fields:
    # nothing is allocated here; _build_array makes the array from the validated state.
    if cls is not _NdarrayClass:
        raise PickleError("unsupported numpy array class")
    return NumpyArray()


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    # Protocol 2 pickles spell bytes as _codecs.encode(str, "latin1").
    if encoding not in ("latin1", "latin-1") or type(text) is not str:
        raise PickleError("unsupported _codecs.encode call")
    return text.encode("latin1")


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    if not (isinstance(cls, type) and issubclass(cls, InertObject)) or base is not _ObjectClass:
        raise PickleError("unsupported object reconstruction")
    return _new_inert(cls, (), {})


def _new_inert(cls: type[InertObject], args: tuple[Any, ...], kwargs: dict[str, Any]) -> InertObject:
    """An inert stand-in holding its arguments; its __init__ and __new__ run nothing of the file's."""
    obj = cls.__new__(cls)
    obj.args, obj.state = args, (dict(kwargs) if kwargs else None)
    return obj


def _build_array(target: NumpyArray, state: Any) -> None:
    """numpy's array state ``(version, shape, dtype, is_fortran, raw bytes)``, validated."""
    if target.array is not None or type(state) is not tuple or len(state) != 5:
        raise PickleError("malformed numpy array state")
    _, shape, dtype, fortran, raw = state
    shape = _dims(shape, "numpy array shape")
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc" or type(fortran) is not bool:
        raise PickleError("unsupported numpy array type")
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != math.prod(shape) * dtype.itemsize:
        raise PickleError("numpy array data does not match its shape")
    flat = np.frombuffer(raw, dtype=dtype) if raw else np.zeros(0, dtype=dtype)
    target.array = flat.reshape(shape, order="F" if fortran else "C")


def _build_dtype(target: np.dtype, state: Any) -> None:
    # numpy's builtin dtypes are shared singletons: their state is checked, never applied.
    if type(state) is not tuple or not 8 <= len(state) <= 9 or state[0] not in (3, 4):
        raise PickleError("malformed numpy dtype state")
    if any(v is not None for v in state[2:5]) or state[1] not in ("<", "|", "=", ">"):
        raise PickleError("numpy record and sub-array dtypes are not supported")
    if state[1] == ">" and target.itemsize > 1:
        raise PickleError("big-endian numpy values are not supported")


_INERT_CLASSES = {
    key: _inert_class(*key)
    for key in (
        ("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint"),
        ("lightning.pytorch.callbacks.model_checkpoint", "ModelCheckpoint"),
        ("torch.nn.modules.container", "ParameterDict"),
        ("argparse", "Namespace"),
    )
}
_REBUILDERS = {
    "_rebuild_tensor": _rebuild_tensor,
    "_rebuild_tensor_v2": _rebuild_tensor,
    "_rebuild_tensor_v3": _rebuild_tensor_v3,
    "_rebuild_parameter": _rebuild_parameter,
    "_rebuild_parameter_with_state": _rebuild_parameter,
    "_rebuild_device_tensor_from_numpy": _rebuild_from_numpy,
}
# Stand-ins that copy their argument: each element copied counts against the object limit.
_COPYING = (collections.OrderedDict, set, frozenset, tuple)
_CALLABLE = frozenset(
    [*_REBUILDERS.values(), _rebuild_from_type_v2, _numpy_dtype, _numpy_scalar, _numpy_reconstruct,
     _codecs_encode, _copyreg_reconstructor, *_COPYING]
)


def _allowed_global(module: str, name: str) -> Any:
    """The stand-in for an allowed global, or ``None``: the allowlist, closed."""
    if module == "collections" and name == "OrderedDict":
        return collections.OrderedDict
    if module in ("builtins", "__builtin__") and name in ("set", "frozenset", "object"):
        # ``object`` is the base argument of copyreg._reconstructor (protocol 0/1 objects).
        return {"set": set, "frozenset": frozenset, "object": _ObjectClass}[name]
    if module == "torch._utils":
        return _REBUILDERS.get(name)
    if module == "torch._tensor" and name == "_rebuild_from_type_v2":
        return _rebuild_from_type_v2
    if (module, name) in (("torch", "Tensor"), ("torch.nn.parameter", "Parameter"), ("torch", "Size")):
        return tuple if name == "Size" else _TensorClass
    if module == "torch" and name in LEGACY_STORAGES:
        return _StorageType(LEGACY_STORAGES[name].code)
    if module in ("torch", "torch.storage") and name == "UntypedStorage":
        return _StorageType("U8")
    if module == "torch" and name in TORCH_NAMES:
        return _TorchDType(TORCH_NAMES[name].code)
    if module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        return {"scalar": _numpy_scalar, "_reconstruct": _numpy_reconstruct}.get(name)
    if module == "numpy" and name in ("dtype", "ndarray"):
        return {"dtype": _numpy_dtype, "ndarray": _NdarrayClass}[name]
    if module == "numpy.dtypes" and name != "ObjectDType":
        return _numpy_dtype_class(name)
    if module == "_codecs" and name == "encode":
        return _codecs_encode
    if module == "copyreg" and name == "_reconstructor":
        return _copyreg_reconstructor
    return _INERT_CLASSES.get((module, name))


class _RestrictedUnpickler(BoundedUnpickler):
    """The allowlist as a policy for the bounded interpreter."""

    def __init__(self, file: BinaryIO, where: str, table: _StorageTable) -> None:
        super().__init__(file)
        self._where = where
        self._table = table
        self._callables = set(_CALLABLE)
        self._arrays: list[NumpyArray] = []

    def load(self) -> Any:
        obj = super().load()
        if any(array.array is None for array in self._arrays):
            raise PickleError("a numpy array was never given its data")
        return obj

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
        if callable(target) and not isinstance(target, type):
            self._callables.add(target)  # numpy.dtypes makers are made per name
        return target

    def persistent_load(self, pid: Any) -> Any:
        return self._table(pid)

    def call(self, func: Any, args: tuple[Any, ...]) -> Any:
        if isinstance(func, type) and issubclass(func, InertObject):
            return self.new(func, args, {})
        if func not in self._callables:
            raise PickleError(f"a pickle call to {type(func).__name__} is not allowed")
        if func in _COPYING:
            if len(args) > 1 or (args and type(args[0]) not in (list, tuple, dict, set, frozenset)):
                raise PickleError(f"unsupported {func.__name__} arguments")
            self.charge(len(args[0]) if args else 0)
        elif func is _codecs_encode and args and type(args[0]) is str:
            self.charge_bytes(len(args[0]))  # a memoized text can be encoded again and again
        elif func is _numpy_scalar and args and isinstance(args[0], np.dtype):
            self.charge_bytes(args[0].itemsize)
        elif func is _rebuild_from_numpy and args and isinstance(args[0], NumpyArray) and args[0].array is not None:
            self.charge_bytes(args[0].array.nbytes)  # converted to the tensor's dtype: a copy
        result = func(*args)
        if isinstance(result, TensorRef):
            self._table.count_tensor()
        elif isinstance(result, NumpyArray):
            self._arrays.append(result)
        return result

    def new(self, cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if cls is collections.OrderedDict and not args and not kwargs:
            return collections.OrderedDict()
        if not (isinstance(cls, type) and issubclass(cls, InertObject)) or cls is NumpyArray:
            raise PickleError(f"creating a {getattr(cls, '__name__', type(cls).__name__)} is not allowed")
        self.charge(len(kwargs))
        return _new_inert(cls, args, kwargs)

    def build(self, obj: Any, state: Any) -> None:
        # BUILD sets state only on the stand-ins that have one; never setattr on anything.
        if isinstance(obj, NumpyArray):
            _build_array(obj, state)
        elif isinstance(obj, InertObject):
            obj.state = state
        elif isinstance(obj, np.dtype):
            _build_dtype(obj, state)
        else:
            raise PickleError(f"BUILD on a {type(obj).__name__} is not something a checkpoint does")


class _StorageTable:
    """Collects the storages a pickle names, one object per key, each record validated."""

    def __init__(self) -> None:
        self.storages: dict[str, StorageRef] = {}
        self.views: list[tuple[StorageRef, str]] = []
        self.tensors = 0

    def count_tensor(self) -> None:
        self.tensors += 1
        if self.tensors > limits.MAX_TENSORS:
            raise PickleLimitError(f"pickle holds more than {limits.MAX_TENSORS:,} tensors (the limit)")

    def __call__(self, pid: Any) -> Any:
        if type(pid) is tuple and len(pid) == 4 and pid[0] == "module":
            # Legacy files name an nn.Module's class (e.g. ParameterDict) as ("module", cls,
            # source_file, source); cls was resolved by find_class, so it is already inert.
            if isinstance(pid[1], type) and issubclass(pid[1], InertObject):
                return pid[1]
        if not (type(pid) is tuple and len(pid) in (5, 6) and pid[0] == "storage"):
            raise PickleError(f"unsupported persistent id {str(pid)[:60]}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType) or type(key) not in (str, int) or len(str(key)) > 64:
            raise PickleError("malformed storage record")
        key, numel = str(key), _index(numel, "storage size")
        root = self.storages.get(key)
        if root is None:
            if len(self.storages) >= limits.MAX_TENSORS:
                raise PickleLimitError(f"pickle names more than {limits.MAX_TENSORS:,} storages (the limit)")
            root = self.storages[key] = StorageRef(key, storage_type.dtype, numel)
        elif root.dtype != storage_type.dtype or root.numel != numel:
            raise PickleError(f"storage {key} is described two different ways")
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return root
        # Legacy view: (view_key, offset_in_elements, view_size) into the root storage.
        if type(view) is not tuple or len(view) != 3:
            raise PickleError("malformed storage view")
        view_offset, view_size = _index(view[1], "storage view offset"), _index(view[2], "storage view size")
        if view_offset + view_size > root.numel:
            raise PickleError(f"storage view runs past the end of storage {key}")
        ref = StorageRef(str(view[0])[:64], root.dtype, view_size, view_offset=view_offset * DTYPES[root.dtype].itemsize)
        self.views.append((ref, key))
        return ref

    def resolve_views(self) -> None:
        for ref, root_key in self.views:
            root = self.storages[root_key]
            ref.file_offset = root.file_offset + ref.view_offset
            ref.member = root.member


def _children(node: Any) -> Iterator[Any] | None:
    """What a container holds, or ``None`` for a leaf."""
    if isinstance(node, dict):
        return itertools.chain(node.keys(), node.values())
    if isinstance(node, (list, tuple, set, frozenset)):
        return iter(node)
    if isinstance(node, InertObject):
        return iter((node.args, node.state))
    return None


def _check_tree(root: Any) -> None:
    """Refuse a cycle, nesting deeper than MAX_NESTING, or a value that expands past MAX_PICKLE_OBJECTS.

    Shared parts are allowed (tied weights share a tensor) but counted wherever they appear, so
    code that walks the result as a tree does bounded work. Each container is visited once.
    """
    end = object()
    expanded: dict[int, int] = {}
    children = _children(root)
    if children is None:
        return
    frames: list[list[Any]] = [[root, children, 1]]
    on_path = {id(root)}
    while frames:
        frame = frames[-1]
        child = next(frame[1], end)
        if child is end:
            frames.pop()
            on_path.discard(id(frame[0]))
            expanded[id(frame[0])] = frame[2]
            if frames:
                frames[-1][2] += frame[2]
                _check_size(frames[-1][2])
            continue
        grandchildren = _children(child)
        if grandchildren is None:
            frame[2] += 1
        elif id(child) in on_path:
            raise PickleError("the pickled object contains itself (a cycle)")
        elif id(child) in expanded:
            frame[2] += expanded[id(child)]
        elif len(frames) >= limits.MAX_NESTING:
            raise PickleLimitError(f"pickle nests containers more than {limits.MAX_NESTING} deep (the limit)")
        else:
            on_path.add(id(child))
            frames.append([child, grandchildren, 1])
            continue
        _check_size(frame[2])


def _check_size(size: int) -> None:
    if size > limits.MAX_PICKLE_OBJECTS:
        raise PickleLimitError(
            f"pickled object expands to more than {limits.MAX_PICKLE_OBJECTS:,} values (the limit)"
        )


def _unpickle(data: BinaryIO, where: str, table: _StorageTable) -> Any:
    try:
        obj = _RestrictedUnpickler(data, where, table).load()
        _check_tree(obj)
        return obj
    except UnsafeCheckpointError:
        raise
    except PickleLimitError as exc:
        raise LimitExceededError(f"{where}: {exc}; the file is damaged or hostile") from None
    except (PickleError, ValueError, TypeError, AttributeError, IndexError, KeyError, struct.error,
            OverflowError, MemoryError, RecursionError) as exc:
        # UnicodeDecodeError is a ValueError; TypeError: an unhashable dict key.
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ModelReadError(f"{where}: pickle is damaged or not a checkpoint ({detail})") from None


# Zip archives --------------------------------------------------------------------------------

_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, OverflowError,
               RuntimeError, NotImplementedError, zlib.error, lzma.LZMAError, struct.error)
_SUPPORTED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def _zip_entry_count(f: BinaryIO, file_size: int) -> int | None:
    """Entries the end-of-central-directory record announces (read before zipfile parses them)."""
    tail_size = min(file_size, 22 + 65535)
    f.seek(file_size - tail_size)
    tail = f.read(tail_size)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(tail):
        return None
    (count,) = struct.unpack("<H", tail[pos + 10 : pos + 12])
    if count == 0xFFFF and pos >= 20 and tail[pos - 20 : pos - 16] == b"PK\x06\x07":
        (z64,) = struct.unpack("<Q", tail[pos - 12 : pos - 4])
        if 0 <= z64 <= file_size - 56:
            f.seek(z64)
            record = f.read(56)
            if record[:4] == b"PK\x06\x06":
                (count,) = struct.unpack("<Q", record[32:40])
    return count


def _check_member(info: zipfile.ZipInfo, where: str, limit: int) -> None:
    """Refuse, before inflating anything, a record that is encrypted, oddly compressed or too big."""
    if info.flag_bits & 0x1:
        raise ModelReadError(f"{where}: zip record {info.filename} is encrypted; checkpoints never are")
    if info.compress_type not in _SUPPORTED_METHODS:
        raise ModelReadError(f"{where}: zip record {info.filename} uses unsupported compression method {info.compress_type}")
    if info.file_size > limit:
        raise LimitExceededError(
            f"{where}: zip record {info.filename} inflates to {info.file_size:,} bytes, over the "
            f"{limit:,}-byte limit for it; the file is damaged or hostile"
        )


def _read_checked(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, limit: int) -> bytes:
    _check_member(info, where, limit)
    try:
        with archive.open(info) as member:
            data = member.read(info.file_size + 1)
    except _ZIP_ERRORS as exc:
        raise ModelReadError(f"{where}: zip record {info.filename} cannot be read ({_detail(exc)})") from None
    if len(data) != info.file_size:
        raise ModelReadError(f"{where}: zip record {info.filename} is damaged (its size does not match)")
    return data


def _detail(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120] or type(exc).__name__


def read_member(path: str, member: str, where: str) -> bytes:
    """A compressed zip record, inflated whole (its size was checked when the file was opened)."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(member)
            return _read_checked(archive, info, where, limits.MAX_INFLATED_BYTES)
    except KeyError:
        raise ModelReadError(f"{where}: zip record {member} is missing (the file changed?)") from None
    except _ZIP_ERRORS as exc:
        raise ModelReadError(f"{where}: zip archive is truncated or damaged ({_detail(exc)})") from None


def load_torch_zip(f: BinaryIO, file_size: int, where: str) -> tuple[Any, dict[str, StorageRef]]:
    """Unpickle a torch zip checkpoint and locate every storage's bytes in the file.

    Returns:
        ``(obj, storages)``: the unpickled object, with :class:`TensorRef` leaves, and its storages.
    """
    count = _zip_entry_count(f, file_size)
    if count is not None and count > limits.MAX_ZIP_ENTRIES:
        raise LimitExceededError(
            f"{where}: zip archive announces {count:,} records, over the limit of {limits.MAX_ZIP_ENTRIES:,}"
        )
    try:
        archive = zipfile.ZipFile(f)
        entries = archive.infolist()
    except _ZIP_ERRORS as exc:
        raise ModelReadError(f"{where}: zip archive is truncated or damaged ({_detail(exc)})") from None
    if len(entries) > limits.MAX_ZIP_ENTRIES:
        raise LimitExceededError(f"{where}: zip archive holds more than {limits.MAX_ZIP_ENTRIES:,} records (the limit)")
    infos = {info.filename: info for info in entries}
    pickles = [name for name in infos if name.endswith("/data.pkl") and name.count("/") == 1]
    if not pickles:
        if any(name.endswith("constants.pkl") for name in infos):
            raise ModelReadError(f"{where}: a TorchScript archive, not a checkpoint of weights")
        raise ModelReadError(f"{where}: a zip archive without data.pkl, not a PyTorch checkpoint")
    if len(pickles) > 1:
        raise ModelReadError(f"{where}: zip archive holds {len(pickles)} data.pkl records; refusing an ambiguous checkpoint")
    prefix = pickles[0][: -len("data.pkl")]
    order = infos.get(prefix + "byteorder")
    if order is not None and _read_checked(archive, order, where, limits.MAX_SMALL_RECORD_BYTES).strip() == b"big":
        raise ModelReadError(f"{where}: big-endian checkpoints are not supported")
    pickled = _read_checked(archive, infos[pickles[0]], where, limits.MAX_PICKLE_BYTES)
    table = _StorageTable()
    obj = _unpickle(io.BytesIO(pickled), where, table)
    inflated = 0
    for key, storage in table.storages.items():
        info = infos.get(f"{prefix}data/{key}")
        if info is None:
            raise ModelReadError(f"{where}: storage data/{key} named by the pickle is missing from the archive")
        need = storage.numel * DTYPES[storage.dtype].itemsize
        if info.file_size < need:
            raise ModelReadError(f"{where}: storage data/{key} holds {info.file_size} bytes but {need} are needed")
        if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
            if not 0 <= info.header_offset <= file_size - 30:
                raise ModelReadError(f"{where}: zip entry data/{key} is damaged (it starts outside the file)")
            f.seek(info.header_offset)
            local = f.read(30)
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                raise ModelReadError(f"{where}: zip entry data/{key} is damaged")
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            storage.file_offset = info.header_offset + 30 + name_len + extra_len
            if storage.file_offset + need > file_size:
                raise ModelReadError(f"{where}: file is truncated: storage data/{key} runs past its end")
        else:
            inflated += info.file_size
            _check_member(info, where, limits.MAX_INFLATED_BYTES - inflated + info.file_size)
            storage.member = info.filename
    return obj, table.storages


def load_torch_legacy(f: BinaryIO, file_size: int, where: str) -> tuple[Any, dict[str, StorageRef]]:
    """Unpickle a legacy (pre-zip) torch file, or a bare pickle, and locate its storages."""
    table = _StorageTable()
    f.seek(0)
    first = _unpickle(f, where, table)
    if type(first) is not int or first != LEGACY_MAGIC:
        if table.storages:
            raise ModelReadError(f"{where}: pickle names tensor storages but has no torch header")
        return first, {}  # a bare pickle of plain data
    protocol = _unpickle(f, where, table)
    if type(protocol) is not int or protocol != LEGACY_PROTOCOL:
        raise ModelReadError(f"{where}: unsupported legacy torch protocol {str(protocol)[:40]}")
    _unpickle(f, where, table)  # sys_info
    obj = _unpickle(f, where, table)
    keys = _unpickle(f, where, table)
    if type(keys) is not list or not all(type(k) in (str, int) for k in keys):
        raise ModelReadError(f"{where}: legacy checkpoint has no storage list; the file is damaged")
    if len(keys) > limits.MAX_TENSORS:
        raise LimitExceededError(f"{where}: legacy checkpoint lists {len(keys):,} storages, over the limit of {limits.MAX_TENSORS:,}")
    pos = f.tell()
    for key in keys:
        storage = table.storages.get(str(key))
        f.seek(pos)
        count = f.read(8)
        if len(count) < 8:
            raise ModelReadError(f"{where}: file is truncated: storage {str(key)[:64]} is missing")
        (numel,) = struct.unpack("<q", count)
        if storage is None:
            raise ModelReadError(f"{where}: storage {str(key)[:64]} is not named by the pickle; the file is damaged")
        storage.file_offset = pos + 8
        pos = storage.file_offset + numel * DTYPES[storage.dtype].itemsize
        if numel < storage.numel or pos > file_size:
            raise ModelReadError(f"{where}: file is truncated: storage {str(key)[:64]} runs past its end")
    missing = set(table.storages) - {str(k) for k in keys}
    if missing:
        raise ModelReadError(f"{where}: storage {sorted(missing)[0]} has no data; the file is damaged")
    table.resolve_views()
    return obj, table.storages
