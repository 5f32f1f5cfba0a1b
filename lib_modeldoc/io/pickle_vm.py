"""A pickle interpreter whose time and memory are bounded by the documented limits.

Python's own unpickler trusts the stream's sizes: ``LONG_BINPUT 0x08000000`` grows its memo
list to a billion slots, and a few kilobytes of ``EMPTY_DICT`` opcodes become gigabytes. This
one keeps the memo in a dict and counts every opcode, every byte read and every object created
against :mod:`~lib_modeldoc.io.limits`, so a hostile stream stops with one error after bounded
work. It calls nothing itself: globals, calls, ``BUILD`` and persistent ids all go to methods a
subclass defines (see :mod:`~lib_modeldoc.io.pickle_read`), and the defaults refuse.
"""

from __future__ import annotations

import codecs
import struct
from typing import Any, BinaryIO, Callable

from . import limits

__all__ = ["BoundedUnpickler", "PickleError", "PickleLimitError"]


class PickleError(Exception):
    """The stream is malformed or asks for something this reader does not do."""


class PickleLimitError(PickleError):
    """The stream is over one of the limits in :mod:`~lib_modeldoc.io.limits`."""


class _Mark:
    """The MARK sentinel's type (never seen outside the interpreter)."""


class _Stop(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


_MAX_LINE = 4096  # protocol 0 text lines: names, numbers, quoted strings of keys
_CHUNK = 1 << 16  # read-ahead; what was read past STOP is handed back (seek) for the next pickle


class BoundedUnpickler:
    """Run one pickle from ``file``; :meth:`load` returns its object.

    Subclasses resolve globals (:meth:`find_class`), persistent ids (:meth:`persistent_load`),
    calls (:meth:`call`), instance creation (:meth:`new`) and ``BUILD`` (:meth:`build`).
    """

    def __init__(self, file: BinaryIO, *, byte_budget: int = limits.MAX_PICKLE_BYTES) -> None:
        self._file = file
        self._budget = byte_budget
        self._fetched = 0  # bytes taken from the file (the limit counts these)
        self._copy_budget = byte_budget  # bytes that calls may copy (see charge_bytes)
        self._buf = b""  # read ahead from the file; _pos is the next opcode
        self._pos = 0
        self._ops_left = limits.MAX_PICKLE_OPS
        self._objects_left = limits.MAX_PICKLE_OBJECTS
        self.memo: dict[int, Any] = {}
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []

    # Hooks: the policy ------------------------------------------------------------------------
    def find_class(self, module: str, name: str) -> Any:
        raise PickleError(f"global {module}.{name} is not allowed")

    def persistent_load(self, pid: Any) -> Any:
        raise PickleError("persistent ids are not allowed")

    def call(self, func: Any, args: tuple[Any, ...]) -> Any:
        raise PickleError("calls are not allowed")

    def new(self, cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        raise PickleError("creating instances is not allowed")

    def build(self, obj: Any, state: Any) -> None:
        raise PickleError("BUILD is not allowed")

    # Budgets ----------------------------------------------------------------------------------
    def charge(self, objects: int) -> None:
        """Count ``objects`` new objects (or copied elements) against the object limit."""
        self._objects_left -= objects
        if self._objects_left < 0:
            raise PickleLimitError(
                f"pickle creates more than {limits.MAX_PICKLE_OBJECTS:,} objects (the limit)"
            )

    def charge_bytes(self, n: int) -> None:
        """Count ``n`` bytes a call copies (text encoded, arrays converted) against the byte limit.

        Calls can copy what the memo already holds as often as they like, so copies have their
        own budget, the same size as the one for bytes read.
        """
        self._copy_budget -= n
        if self._copy_budget < 0:
            raise PickleLimitError(f"pickle copies more than {self._budget >> 20} MiB of data (the limit)")

    def _read(self, n: int) -> bytes:
        pos = self._pos
        end = pos + n
        if 0 <= n and end <= len(self._buf):  # the common case: already buffered
            self._pos = end
            return self._buf[pos:end]
        return self._read_slow(n)

    def _read_slow(self, n: int) -> bytes:
        if n < 0:
            raise PickleError("negative length")
        self._fill(n - (len(self._buf) - self._pos))
        if len(self._buf) - self._pos < n:
            if self._fetched >= self._budget:
                raise PickleLimitError(f"pickle is larger than {self._budget >> 20} MiB (the limit)")
            raise PickleError("pickle data was truncated")
        return self._read(n)

    def _fill(self, wanted: int) -> None:
        """Buffer at least ``wanted`` more bytes (fewer at EOF or at the byte limit)."""
        room = self._budget - self._fetched
        chunk = self._file.read(min(room, max(wanted, _CHUNK))) if room > 0 else b""
        self._fetched += len(chunk)
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0

    def _readline(self) -> bytes:
        while True:
            end = self._buf.find(b"\n", self._pos, self._pos + _MAX_LINE + 1)
            if end >= 0:
                line = self._buf[self._pos : end]
                self._pos = end + 1
                return line
            if len(self._buf) - self._pos > _MAX_LINE:
                raise PickleLimitError(f"pickle text line longer than {_MAX_LINE} bytes")
            before = len(self._buf) - self._pos
            self._fill(_CHUNK)
            if len(self._buf) - self._pos == before:
                raise PickleError("pickle data was truncated")

    # The loop ---------------------------------------------------------------------------------
    def load(self) -> Any:
        """Run the pickle to its STOP opcode and return the object it built.

        The file is left just after STOP (read-ahead is sought back), so pickles that follow,
        as in legacy torch files, can be read next.
        """
        dispatch = _DISPATCH
        try:
            while True:
                self._ops_left -= 1
                if self._ops_left < 0:
                    raise PickleLimitError(f"pickle runs more than {limits.MAX_PICKLE_OPS:,} opcodes (the limit)")
                pos = self._pos
                if pos < len(self._buf):
                    code = self._buf[pos]
                    self._pos = pos + 1
                else:
                    code = self._read(1)[0]
                handler = dispatch.get(code)
                if handler is None:
                    raise PickleError(f"invalid or unsupported opcode 0x{code:02x}")
                handler(self)
        except _Stop as stop:
            unread = len(self._buf) - self._pos
            if unread:
                self._file.seek(-unread, 1)
            return stop.value

    # Stack helpers ----------------------------------------------------------------------------
    def _pop(self) -> Any:
        if not self.stack:
            raise PickleError("stack underflow")
        value = self.stack.pop()
        if type(value) is _Mark:
            raise PickleError("unexpected MARK on the stack")
        return value

    def _top(self) -> Any:
        if not self.stack:
            raise PickleError("stack underflow")
        return self.stack[-1]

    def _pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise PickleError("no MARK to pop to")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _push(self, value: Any) -> None:
        self._objects_left -= 1
        if self._objects_left < 0:
            self.charge(0)  # raises the limit error
        self.stack.append(value)

    # Opcodes ----------------------------------------------------------------------------------
    def _op_mark(self) -> None:
        self.charge(1)
        self.metastack.append(self.stack)
        self.stack = []

    def _op_stop(self) -> None:
        raise _Stop(self._pop())  # leftovers on the stack are ignored, as Python's unpickler does

    def _op_pop(self) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self._pop_mark()

    def _op_pop_mark(self) -> None:
        self._pop_mark()

    def _op_dup(self) -> None:
        self._push(self._top())

    def _op_proto(self) -> None:
        if self._read(1)[0] > 5:
            raise PickleError("unsupported pickle protocol")

    def _op_frame(self) -> None:
        self._read(8)  # a length hint only; the opcodes follow as usual

    # Scalars
    def _op_none(self) -> None:
        self._push(None)

    def _op_true(self) -> None:
        self._push(True)

    def _op_false(self) -> None:
        self._push(False)

    def _op_int(self) -> None:
        line = self._readline()
        if line == b"00":
            self._push(False)
        elif line == b"01":
            self._push(True)
        else:
            self._push(_text_int(line))

    def _op_long(self) -> None:
        line = self._readline()
        self._push(_text_int(line[:-1] if line.endswith(b"L") else line))

    def _op_binint(self) -> None:
        self._push(struct.unpack("<i", self._read(4))[0])

    def _op_binint1(self) -> None:
        self._push(self._read(1)[0])

    def _op_binint2(self) -> None:
        self._push(struct.unpack("<H", self._read(2))[0])

    def _op_long1(self) -> None:
        self._push(self._long_bytes(self._read(1)[0]))

    def _op_long4(self) -> None:
        self._push(self._long_bytes(struct.unpack("<i", self._read(4))[0]))

    def _long_bytes(self, n: int) -> int:
        if n > limits.MAX_INT_BYTES:
            raise PickleLimitError(f"pickled integer longer than {limits.MAX_INT_BYTES} bytes")
        return int.from_bytes(self._read(n), "little", signed=True)

    def _op_float(self) -> None:
        try:
            self._push(float(self._readline()))
        except ValueError:
            raise PickleError("malformed float") from None

    def _op_binfloat(self) -> None:
        self._push(struct.unpack(">d", self._read(8))[0])

    # Text and bytes
    def _op_string(self) -> None:
        line = self._readline()
        if len(line) < 2 or line[0] != line[-1] or line[:1] not in (b"'", b'"'):
            raise PickleError("malformed STRING")
        self._push(_py2_str(codecs.escape_decode(line[1:-1])[0]))

    def _op_binstring(self) -> None:
        self._push(_py2_str(self._read(struct.unpack("<i", self._read(4))[0])))

    def _op_short_binstring(self) -> None:
        self._push(_py2_str(self._read(self._read(1)[0])))

    def _op_unicode(self) -> None:
        self._push(_checked_text(self._readline().decode("raw-unicode-escape")))

    def _op_binunicode(self) -> None:
        self._push(self._read(struct.unpack("<I", self._read(4))[0]).decode("utf-8"))

    def _op_short_binunicode(self) -> None:
        self._push(self._read(self._read(1)[0]).decode("utf-8"))

    def _op_binunicode8(self) -> None:
        self._push(self._read(struct.unpack("<Q", self._read(8))[0]).decode("utf-8"))

    def _op_binbytes(self) -> None:
        self._push(self._read(struct.unpack("<I", self._read(4))[0]))

    def _op_short_binbytes(self) -> None:
        self._push(self._read(self._read(1)[0]))

    def _op_binbytes8(self) -> None:
        self._push(self._read(struct.unpack("<Q", self._read(8))[0]))

    def _op_bytearray8(self) -> None:
        self._push(bytearray(self._read(struct.unpack("<Q", self._read(8))[0])))

    # Containers
    def _op_empty_tuple(self) -> None:
        self._push(())

    def _op_tuple(self) -> None:
        self._push(tuple(self._pop_mark()))

    def _op_tuple1(self) -> None:
        self.stack[-1:] = [(self._top(),)]
        self.charge(1)

    def _op_tuple2(self) -> None:
        if len(self.stack) < 2:
            raise PickleError("stack underflow")
        self.stack[-2:] = [tuple(self.stack[-2:])]
        self.charge(1)

    def _op_tuple3(self) -> None:
        if len(self.stack) < 3:
            raise PickleError("stack underflow")
        self.stack[-3:] = [tuple(self.stack[-3:])]
        self.charge(1)

    def _op_empty_list(self) -> None:
        self._push([])

    def _op_list(self) -> None:
        self._push(self._pop_mark())

    def _op_empty_dict(self) -> None:
        self._push({})

    def _op_dict(self) -> None:
        items = self._pop_mark()
        if len(items) % 2:
            raise PickleError("odd number of items for DICT")
        self._push(dict(zip(items[::2], items[1::2])))

    def _op_empty_set(self) -> None:
        self._push(set())

    def _op_frozenset(self) -> None:
        self._push(frozenset(self._pop_mark()))

    def _op_append(self) -> None:
        value = self._pop()
        target = self._top()
        if type(target) is not list:
            raise PickleError(f"APPEND to a {type(target).__name__}")
        target.append(value)

    def _op_appends(self) -> None:
        items = self._pop_mark()
        target = self._top()
        if type(target) is not list:
            raise PickleError(f"APPENDS to a {type(target).__name__}")
        target.extend(items)

    def _op_setitem(self) -> None:
        value = self._pop()
        key = self._pop()
        target = self._top()
        if not isinstance(target, dict):
            raise PickleError(f"SETITEM on a {type(target).__name__}")
        target[key] = value

    def _op_setitems(self) -> None:
        items = self._pop_mark()
        target = self._top()
        if not isinstance(target, dict) or len(items) % 2:
            raise PickleError("malformed SETITEMS")
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def _op_additems(self) -> None:
        items = self._pop_mark()
        target = self._top()
        if type(target) is not set:
            raise PickleError(f"ADDITEMS to a {type(target).__name__}")
        target.update(items)

    # Memo
    def _get(self, index: int) -> None:
        try:
            self._push(self.memo[index])
        except KeyError:
            raise PickleError(f"memo index {index} was never stored") from None

    def _put(self, index: int) -> None:
        if index < 0:
            raise PickleError("negative memo index")
        if index >= limits.MAX_PICKLE_OBJECTS:  # picklers number the memo from 0, one per object
            raise PickleLimitError(f"memo index {index:,} is over the limit of {limits.MAX_PICKLE_OBJECTS:,}")
        self.charge(1)
        self.memo[index] = self._top()

    def _op_get(self) -> None:
        self._get(_text_int(self._readline()))

    def _op_binget(self) -> None:
        self._get(self._read(1)[0])

    def _op_long_binget(self) -> None:
        self._get(struct.unpack("<I", self._read(4))[0])

    def _op_put(self) -> None:
        self._put(_text_int(self._readline()))

    def _op_binput(self) -> None:
        self._put(self._read(1)[0])

    def _op_long_binput(self) -> None:
        self._put(struct.unpack("<I", self._read(4))[0])

    def _op_memoize(self) -> None:
        self._put(len(self.memo))

    # Globals, calls, objects
    def _op_global(self) -> None:
        module = self._readline().decode("utf-8")
        name = self._readline().decode("utf-8")
        self._push(self.find_class(module, name))

    def _op_stack_global(self) -> None:
        name = self._pop()
        module = self._pop()
        if type(module) is not str or type(name) is not str:
            raise PickleError("STACK_GLOBAL needs two strings")
        self._push(self.find_class(module, name))

    def _op_reduce(self) -> None:
        args = self._pop()
        func = self._pop()
        if type(args) is not tuple:
            raise PickleError("REDUCE arguments are not a tuple")
        self._push(self.call(func, args))

    def _op_newobj(self) -> None:
        args = self._pop()
        cls = self._pop()
        if type(args) is not tuple:
            raise PickleError("NEWOBJ arguments are not a tuple")
        self._push(self.new(cls, args, {}))

    def _op_newobj_ex(self) -> None:
        kwargs = self._pop()
        args = self._pop()
        cls = self._pop()
        if type(args) is not tuple or type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
            raise PickleError("malformed NEWOBJ_EX")
        self._push(self.new(cls, args, kwargs))

    def _op_inst(self) -> None:
        module = self._readline().decode("utf-8")
        name = self._readline().decode("utf-8")
        cls = self.find_class(module, name)
        self._push(self.new(cls, tuple(self._pop_mark()), {}))

    def _op_obj(self) -> None:
        items = self._pop_mark()
        if not items:
            raise PickleError("OBJ without a class")
        self._push(self.new(items[0], tuple(items[1:]), {}))

    def _op_build(self) -> None:
        state = self._pop()
        self.build(self._top(), state)

    def _op_persid(self) -> None:
        self._push(self.persistent_load(self._readline().decode("ascii")))

    def _op_binpersid(self) -> None:
        self._push(self.persistent_load(self._pop()))

    def _op_unsupported(self) -> None:
        raise PickleError("extension codes and out-of-band buffers are not used by checkpoints")


def _text_int(line: bytes) -> int:
    if len(line) > 2 * limits.MAX_INT_BYTES + 2:  # ~ 256 bits in decimal
        raise PickleLimitError(f"pickled integer longer than {limits.MAX_INT_BYTES} bytes")
    try:
        return int(line)
    except ValueError:
        raise PickleError("malformed integer") from None


def _py2_str(data: bytes) -> str:
    # Python 2 ``str`` records: read as UTF-8 text, as torch.load(encoding="utf-8") does.
    return data.decode("utf-8")


def _checked_text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PickleError("text holds a lone surrogate") from None
    return text


_OPCODES: dict[bytes, Callable[[BoundedUnpickler], None]] = {
    b"(": BoundedUnpickler._op_mark,
    b".": BoundedUnpickler._op_stop,
    b"0": BoundedUnpickler._op_pop,
    b"1": BoundedUnpickler._op_pop_mark,
    b"2": BoundedUnpickler._op_dup,
    b"F": BoundedUnpickler._op_float,
    b"I": BoundedUnpickler._op_int,
    b"J": BoundedUnpickler._op_binint,
    b"K": BoundedUnpickler._op_binint1,
    b"L": BoundedUnpickler._op_long,
    b"M": BoundedUnpickler._op_binint2,
    b"N": BoundedUnpickler._op_none,
    b"P": BoundedUnpickler._op_persid,
    b"Q": BoundedUnpickler._op_binpersid,
    b"R": BoundedUnpickler._op_reduce,
    b"S": BoundedUnpickler._op_string,
    b"T": BoundedUnpickler._op_binstring,
    b"U": BoundedUnpickler._op_short_binstring,
    b"V": BoundedUnpickler._op_unicode,
    b"X": BoundedUnpickler._op_binunicode,
    b"a": BoundedUnpickler._op_append,
    b"b": BoundedUnpickler._op_build,
    b"c": BoundedUnpickler._op_global,
    b"d": BoundedUnpickler._op_dict,
    b"}": BoundedUnpickler._op_empty_dict,
    b"e": BoundedUnpickler._op_appends,
    b"g": BoundedUnpickler._op_get,
    b"h": BoundedUnpickler._op_binget,
    b"i": BoundedUnpickler._op_inst,
    b"j": BoundedUnpickler._op_long_binget,
    b"l": BoundedUnpickler._op_list,
    b"]": BoundedUnpickler._op_empty_list,
    b"o": BoundedUnpickler._op_obj,
    b"p": BoundedUnpickler._op_put,
    b"q": BoundedUnpickler._op_binput,
    b"r": BoundedUnpickler._op_long_binput,
    b"s": BoundedUnpickler._op_setitem,
    b"t": BoundedUnpickler._op_tuple,
    b")": BoundedUnpickler._op_empty_tuple,
    b"u": BoundedUnpickler._op_setitems,
    b"G": BoundedUnpickler._op_binfloat,
    b"\x80": BoundedUnpickler._op_proto,
    b"\x81": BoundedUnpickler._op_newobj,
    b"\x82": BoundedUnpickler._op_unsupported,  # EXT1
    b"\x83": BoundedUnpickler._op_unsupported,  # EXT2
    b"\x84": BoundedUnpickler._op_unsupported,  # EXT4
    b"\x85": BoundedUnpickler._op_tuple1,
    b"\x86": BoundedUnpickler._op_tuple2,
    b"\x87": BoundedUnpickler._op_tuple3,
    b"\x88": BoundedUnpickler._op_true,
    b"\x89": BoundedUnpickler._op_false,
    b"\x8a": BoundedUnpickler._op_long1,
    b"\x8b": BoundedUnpickler._op_long4,
    b"B": BoundedUnpickler._op_binbytes,
    b"C": BoundedUnpickler._op_short_binbytes,
    b"\x8c": BoundedUnpickler._op_short_binunicode,
    b"\x8d": BoundedUnpickler._op_binunicode8,
    b"\x8e": BoundedUnpickler._op_binbytes8,
    b"\x8f": BoundedUnpickler._op_empty_set,
    b"\x90": BoundedUnpickler._op_additems,
    b"\x91": BoundedUnpickler._op_frozenset,
    b"\x92": BoundedUnpickler._op_newobj_ex,
    b"\x93": BoundedUnpickler._op_stack_global,
    b"\x94": BoundedUnpickler._op_memoize,
    b"\x95": BoundedUnpickler._op_frame,
    b"\x96": BoundedUnpickler._op_bytearray8,
    b"\x97": BoundedUnpickler._op_unsupported,  # NEXT_BUFFER
    b"\x98": BoundedUnpickler._op_unsupported,  # READONLY_BUFFER
}
_DISPATCH: dict[int, Callable[[BoundedUnpickler], None]] = {k[0]: v for k, v in _OPCODES.items()}
