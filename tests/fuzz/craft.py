"""Hand-assembled hostile model files, one function per attack class.

Each returns the file's bytes; ``python tests/fuzz/craft.py`` (re)writes the small ones into
``tests/fuzz/corpus/``. The large ones (a 300 MB member, a million tensors) are made at test time,
where they are cheap to build, and never committed. Nothing here imports torch: the pickles are
written opcode by opcode, so they can hold what no honest writer would produce.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


class Asm:
    """A pickle written opcode by opcode (protocol 2 unless told)."""

    def __init__(self, proto: int = 2) -> None:
        self.out = bytearray(b"\x80" + bytes([proto]))

    def op(self, raw: bytes) -> Asm:
        self.out += raw
        return self

    def glob(self, module: str, name: str) -> Asm:
        return self.op(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def str(self, text: str) -> Asm:
        data = text.encode("utf-8", "surrogatepass")
        return self.op(b"X" + struct.pack("<I", len(data)) + data)

    def int(self, value: int) -> Asm:
        if 0 <= value < 256:
            return self.op(b"K" + bytes([value]))
        if -(2**31) <= value < 2**31:
            return self.op(b"J" + struct.pack("<i", value))
        data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        return self.op(b"\x8a" + bytes([len(data)]) + data)

    def ints(self, values) -> Asm:
        self.op(b"(")
        for v in values:
            self.int(v)
        return self.op(b"t")

    def bytes(self, data: bytes) -> Asm:
        # protocol 2 spells bytes as _codecs.encode(str, "latin1")
        return self.glob("_codecs", "encode").op(b"(").str(data.decode("latin1")).str("latin1").op(b"tR")

    def storage(self, key: str, numel: int, kind: str = "FloatStorage", view=None) -> Asm:
        self.op(b"(").str("storage").glob("torch", kind).str(key).str("cpu").int(numel)
        if view is not None:
            self.ints(view)
        return self.op(b"tQ")

    def tensor(self, key: str, numel: int, shape, stride, offset: int = 0, kind: str = "FloatStorage", view=None) -> Asm:
        self.glob("torch._utils", "_rebuild_tensor_v2").op(b"(")
        self.storage(key, numel, kind, view).int(offset).ints(shape).ints(stride)
        return self.op(b"\x89").glob("collections", "OrderedDict").op(b")R").op(b"tR")

    def stop(self) -> bytes:
        return bytes(self.out + b".")


def torch_zip(data_pkl: bytes, storages: dict[str, bytes] | None = None, *, compress: int = zipfile.ZIP_STORED,
              extra: dict[str, bytes] | None = None, pkl_compress: int = zipfile.ZIP_STORED) -> bytes:
    """A torch-style zip archive: ``archive/data.pkl``, ``archive/data/<key>`` and extra records."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("archive/data.pkl"), data_pkl, compress_type=pkl_compress)
        for name, data in (extra or {}).items():
            z.writestr(zipfile.ZipInfo(f"archive/{name}"), data, compress_type=compress)
        for key, data in (storages or {}).items():
            z.writestr(zipfile.ZipInfo(f"archive/data/{key}"), data, compress_type=compress)
        z.writestr(zipfile.ZipInfo("archive/version"), b"3\n")
    return buf.getvalue()


def legacy(obj_pickle: bytes, keys: list[str], storages: list[bytes]) -> bytes:
    """A pre-1.6 torch file: magic, protocol, sys_info, the object, the storage keys, raw storages."""
    magic = Asm().int(0x1950A86A20F9469CFC6C).stop()
    proto = Asm().int(1001).stop()
    sys_info = Asm().op(b"}").stop()
    key_list = Asm().op(b"(")
    for k in keys:
        key_list.str(k)
    out = magic + proto + sys_info + obj_pickle + key_list.op(b"l").stop()
    for data in storages:
        out += struct.pack("<q", len(data) // 4) + data
    return out


def safetensors(header: dict | str | bytes, data: bytes = b"") -> bytes:
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    raw = header.encode("utf-8", "surrogatepass") if isinstance(header, str) else header
    return struct.pack("<Q", len(raw)) + raw + data


# --- the classes ---------------------------------------------------------------------------------

def memo_long_binput() -> bytes:
    """9 bytes: LONG_BINPUT index 0x08000000 (the C unpickler grows its memo list to it)."""
    return bytes.fromhex("80027d72000000082e")


def memo_long_binput_variant() -> bytes:
    """LONG_BINPUT 0x7fffffff: the variant that was OOM-killed on a 24 GB machine."""
    return bytes.fromhex("80027d72ffffff7f2e")


def numpy_reconstruct_huge() -> bytes:
    """numpy _reconstruct asked for a 2**27-element float64 array (1 GiB) before any data."""
    a = Asm().op(b"}").str("x").glob("numpy.core.multiarray", "_reconstruct").op(b"(")
    a.glob("numpy", "ndarray").ints([2**27])
    a.glob("numpy", "dtype").op(b"(").str("f8").op(b"\x89\x88tR").op(b"tR")
    return a.op(b"s").stop()


def numpy_many_dims() -> bytes:
    """An in-pickle array whose state claims 100 dimensions."""
    a = Asm().op(b"}").str("x").glob("numpy.core.multiarray", "_reconstruct").op(b"(")
    a.glob("numpy", "ndarray").ints([0]).bytes(b"b").op(b"tR")
    a.op(b"(").int(1).ints([1] * 100).glob("numpy", "dtype").op(b"(").str("f4").op(b"\x89\x88tR").op(b"\x89")
    a.bytes(b"\0\0\0\0").op(b"tb")
    return a.op(b"s").stop()


def numpy_dtype_list() -> bytes:
    """numpy.dtype called with a list: TypeError inside numpy."""
    a = Asm().op(b"}").str("x").glob("numpy", "dtype").op(b"(").op(b"]").str("f4").op(b"a").op(b"tR")
    return a.op(b"s").stop()


def encode_copies(text_bytes: int = 64 << 10, copies: int = 2000) -> bytes:
    """One memoized 64 KB text encoded 2,000 times: 128 MB of copies from a 76 KB file."""
    a = Asm().op(b"(").glob("_codecs", "encode").op(b"q\x00").str("a" * text_bytes).op(b"q\x01")
    a.str("latin1").op(b"q\x02").op(b"0")
    for _ in range(copies):
        a.op(b"h\x00h\x01h\x02\x86R")
    return a.op(b"l").stop()


def zip_of_dicts(count: int = 10_000_000) -> bytes:
    """~10 KB deflated data.pkl of EMPTY_DICT ops: each byte becomes a 64-byte dict."""
    pkl = b"\x80\x02(" + b"}" * count + b"l."
    return torch_zip(pkl, pkl_compress=zipfile.ZIP_DEFLATED)


def empty_dict_ops(count: int = 4_000_000) -> bytes:
    """A bare pickle of EMPTY_DICT ops: memory x72 the file size."""
    return b"\x80\x02(" + b"}" * count + b"l."


def byteorder_member(size: int = 300 << 20) -> bytes:
    """A 300 MB (inflated) ``byteorder`` record, deflated to ~300 KB."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", Asm().op(b"}").stop())
        with z.open("archive/byteorder", "w", force_zip64=True) as member:
            block = b"l" * (1 << 20)
            for _ in range(size >> 20):
                member.write(block)
    return buf.getvalue()


def self_reference() -> bytes:
    """26 bytes: ``d = {}; d["state_dict"] = d``."""
    return Asm().op(b"}q\x00").str("state_dict").op(b"h\x00s").stop()


def self_referencing_list() -> bytes:
    """``{"k": L}`` with ``L = [L]``: a repr or a walk recurses forever."""
    return Asm().op(b"}").str("k").op(b"]q\x00h\x00a").op(b"s").stop()


def deep_lists(depth: int = 200_000) -> bytes:
    """``{"k": [[[...]]]}`` nested 200,000 deep."""
    return Asm().op(b"}").str("k").op(b"]" * depth + b"a" * (depth - 1)).op(b"s").stop()


def deep_dicts(depth: int = 100_000) -> bytes:
    """``{"a": {"a": ...}}`` nested 100,000 deep."""
    a = Asm()
    for _ in range(depth):
        a.op(b"}").str("a")
    a.op(b"}")
    a.op(b"s" * depth)
    return a.stop()


def shared_dag(levels: int = 48) -> bytes:
    """Dicts each holding the previous one twice: 2**48 paths from 48 objects."""
    a = Asm().op(b"}q\x00")
    for i in range(1, levels + 1):
        a.op(b"}(").str("a").op(b"h" + bytes([i - 1])).str("b").op(b"h" + bytes([i - 1])).op(b"u")
        a.op(b"q" + bytes([i]))
        if i < levels:
            a.op(b"0")  # POP: the next level reaches it through the memo
    return a.stop()


def build_setattr_function() -> bytes:
    """BUILD with slot state on the reader's own allowlisted function: setattr(f, "__qualname__", ...)."""
    a = Asm().op(b"}").str("x").glob("torch._utils", "_rebuild_tensor_v2")
    a.op(b"N}").str("__qualname__").str("pwned").op(b"s\x86b")
    return a.op(b"s").stop()


def build_on_tensor_ref() -> bytes:
    """A validated tensor record, then BUILD replacing its storage and dtype."""
    a = Asm().op(b"}").str("state_dict").op(b"}").str("w").tensor("0", 4, [4], [1])
    a.op(b"N}").str("storage").str("not a storage").op(b"s").str("dtype").str("NOPE").op(b"s\x86b")
    pkl = a.op(b"ss").stop()
    return torch_zip(pkl, {"0": b"\0" * 16})


def json_deep() -> bytes:
    """A safetensors header nested 100,000 lists deep."""
    return safetensors('{"a":' + "[" * 100_000 + "]" * 100_000 + "}")


def json_long_int() -> bytes:
    """A 4,301-digit integer in data_offsets."""
    return safetensors('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,' + "9" * 4301 + "]}}")


def json_dtype_list() -> bytes:
    """A list where the dtype string belongs."""
    return safetensors({"a": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)


def json_lone_surrogate_key() -> bytes:
    """A tensor named by a lone UTF-16 surrogate escape (valid JSON, not encodable text)."""
    return safetensors('{"\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4)


def json_many_dims() -> bytes:
    """An empty tensor with 100 dimensions (numpy allows at most 32 or 64)."""
    return safetensors({"a": {"dtype": "F32", "shape": [0] * 100, "data_offsets": [0, 0]}})


def json_huge_dims() -> bytes:
    """An empty tensor whose other dimensions multiply past 2**64."""
    return safetensors({"a": {"dtype": "F32", "shape": [2**62, 2**62, 0], "data_offsets": [0, 0]}})


def json_many_strings(entries: int = 1_000_000) -> bytes:
    """Metadata of a million small entries ("k1":""): each 8 bytes becomes a key and a dict slot."""
    meta = ",".join(f'"k{i}":""' for i in range(entries))
    return safetensors('{"__metadata__":{' + meta + '},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
                       b"\0" * 4)


def json_many_numbers(count: int = 3_000_000) -> bytes:
    """A list of three million floats in a tensor entry: 4 bytes of text, 32 of objects each."""
    return safetensors('{"a":{"dtype":"F32","shape":[' + ",".join(["1.5"] * count) + '],"data_offsets":[0,4]}}',
                       b"\0" * 4)


def json_many_lists(count: int = 3_000_000) -> bytes:
    """Metadata-free header of empty lists: 3 bytes become a 64-byte list."""
    return safetensors('{"a":[' + ",".join(["[]"] * count) + "]}")


def _valid_zip_with(pkl_compress: int, storage: bytes = b"\0" * 16) -> bytearray:
    pkl = Asm().op(b"}").str("w").tensor("0", 4, [4], [1]).op(b"s").stop()
    return bytearray(torch_zip(pkl, {"0": storage}, pkl_compress=pkl_compress))


def zip_encrypted() -> bytes:
    """data.pkl flagged as encrypted (general purpose bit 0) in both headers."""
    buf = _valid_zip_with(zipfile.ZIP_STORED)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = buf.index(sig)
        buf[pos + off] |= 1
    return bytes(buf)


def zip_unknown_method() -> bytes:
    """data.pkl with compression method 99 (AES) in both headers."""
    buf = _valid_zip_with(zipfile.ZIP_STORED)
    for sig, off in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        pos = buf.index(sig)
        buf[pos + off : pos + off + 2] = struct.pack("<H", 99)
    return bytes(buf)


def zip_corrupt_deflate() -> bytes:
    """data.pkl deflated, its compressed bytes overwritten with garbage."""
    buf = _valid_zip_with(zipfile.ZIP_DEFLATED)
    pos = buf.index(b"PK\x03\x04")
    n, m = struct.unpack("<HH", buf[pos + 26 : pos + 30])
    start = pos + 30 + n + m
    buf[start : start + 8] = b"\xff" * 8
    return bytes(buf)


def zip_corrupt_lzma() -> bytes:
    """data.pkl in LZMA, its stream damaged."""
    buf = _valid_zip_with(zipfile.ZIP_LZMA)
    pos = buf.index(b"PK\x03\x04")
    n, m = struct.unpack("<HH", buf[pos + 26 : pos + 30])
    start = pos + 30 + n + m
    buf[start + 4 : start + 12] = b"\xff" * 8
    return bytes(buf)


def zip_bad_local_header() -> bytes:
    """The storage's local header signature is wrong (BadZipFile on read)."""
    buf = _valid_zip_with(zipfile.ZIP_DEFLATED)
    pos = buf.index(b"PK\x03\x04", buf.index(b"PK\x03\x04") + 4)
    buf[pos : pos + 4] = b"XXXX"
    return bytes(buf)


def zip_negative_offset() -> bytes:
    """The end record claims the central directory starts later than it does: negative offsets."""
    buf = _valid_zip_with(zipfile.ZIP_STORED)
    pos = buf.rindex(b"PK\x05\x06")
    (cd_offset,) = struct.unpack("<I", buf[pos + 16 : pos + 20])
    buf[pos + 16 : pos + 20] = struct.pack("<I", cd_offset + 4096)
    return bytes(buf)


def zip_huge_offset() -> bytes:
    """A zip64 extra field puts the storage's local header at 2**63 - 1 (OverflowError on seek)."""
    buf = _valid_zip_with(zipfile.ZIP_STORED)
    # rewrite the storage's central entry with a zip64 extra giving a huge header offset
    name = b"archive/data/0"
    cpos = buf.index(b"PK\x01\x02")
    while buf[cpos + 46 : cpos + 46 + len(name)] != name:
        cpos = buf.index(b"PK\x01\x02", cpos + 4)
    n, m, k = struct.unpack("<HHH", buf[cpos + 28 : cpos + 34])
    extra = struct.pack("<HHQ", 1, 8, 2**63 - 1)
    entry = bytearray(buf[cpos : cpos + 46 + n + m + k])
    entry[42:46] = b"\xff\xff\xff\xff"
    entry[30:32] = struct.pack("<H", m + len(extra))
    entry[46 + n : 46 + n] = extra
    out = buf[:cpos] + entry + buf[cpos + 46 + n + m + k :]
    end = out.rindex(b"PK\x05\x06")
    (size,) = struct.unpack("<I", out[end + 12 : end + 16])
    out[end + 12 : end + 16] = struct.pack("<I", size + len(extra))
    return bytes(out)


def legacy_negative_view() -> bytes:
    """A legacy storage view starting 5 elements before its root storage."""
    obj = Asm().op(b"}").str("state_dict").op(b"}").str("w")
    obj.glob("torch._utils", "_rebuild_tensor_v2").op(b"(")
    obj.op(b"(").str("storage").glob("torch", "FloatStorage").str("root").str("cpu").int(4)
    obj.op(b"(").str("v").int(-5).int(2).op(b"t").op(b"tQ")
    obj.int(0).ints([2]).ints([1]).op(b"\x89").glob("collections", "OrderedDict").op(b")R").op(b"tR")
    obj.op(b"ss")
    return legacy(obj.stop(), ["root"], [b"\0" * 16])


def compressed_shared_storage(tensors: int = 2000, size: int = 64 << 20) -> bytes:
    """One deflated 64 MB storage that 2,000 tensors view: re-inflated per tensor before."""
    numel = size // 4
    a = Asm().op(b"}").str("state_dict").op(b"}(")
    for i in range(tensors):
        a.str(f"t{i}").tensor("0", numel, [numel // tensors], [1], offset=i * (numel // tensors))
    pkl = a.op(b"u").op(b"s").stop()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        info = zipfile.ZipInfo("archive/data/0")
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=True) as m:
            block = b"\0" * (1 << 20)
            for _ in range(size >> 20):
                m.write(block)
    return buf.getvalue()


def many_tensors_safetensors(count: int = 1_000_000) -> bytes:
    """A million empty tensors (shape [0]): an 60 MB header and no data."""
    parts = [f'"t{i}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}' for i in range(count)]
    return safetensors("{" + ",".join(parts) + "}")


def huge_header_safetensors(size: int = 99_000_000) -> bytes:
    """A 99 MB header: one tensor and a metadata string of the rest."""
    head = '{"__metadata__":{"x":"'
    tail = '"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    return safetensors(head + "a" * (size - len(head) - len(tail)) + tail, b"\0" * 4)


def many_tensors_pickle(count: int = 1_000_000) -> bytes:
    """A zip checkpoint of a million tensor records over one storage."""
    a = Asm().op(b"}").str("state_dict").op(b"}(")
    for i in range(count):
        a.str(f"t{i}").tensor("0", 1, [1], [1])
    pkl = a.op(b"u").op(b"s").stop()
    return torch_zip(pkl, {"0": b"\0" * 4})


# The small ones: committed to the corpus (each under ~100 KB).
SMALL = {
    "memo_long_binput.ckpt": memo_long_binput,
    "memo_long_binput_variant.ckpt": memo_long_binput_variant,
    "numpy_reconstruct_huge.ckpt": numpy_reconstruct_huge,
    "numpy_many_dims.ckpt": numpy_many_dims,
    "numpy_dtype_list.ckpt": numpy_dtype_list,
    "encode_copies.ckpt": encode_copies,
    "self_reference.ckpt": self_reference,
    "self_referencing_list.ckpt": self_referencing_list,
    "shared_dag.ckpt": shared_dag,
    "build_setattr_function.ckpt": build_setattr_function,
    "build_on_tensor_ref.ckpt": build_on_tensor_ref,
    "zip_encrypted.ckpt": zip_encrypted,
    "zip_unknown_method.ckpt": zip_unknown_method,
    "zip_corrupt_deflate.ckpt": zip_corrupt_deflate,
    "zip_corrupt_lzma.ckpt": zip_corrupt_lzma,
    "zip_bad_local_header.ckpt": zip_bad_local_header,
    "zip_negative_offset.ckpt": zip_negative_offset,
    "zip_huge_offset.ckpt": zip_huge_offset,
    "legacy_negative_view.ckpt": legacy_negative_view,
    "json_long_int.safetensors": json_long_int,
    "json_dtype_list.safetensors": json_dtype_list,
    "json_lone_surrogate_key.safetensors": json_lone_surrogate_key,
    "json_many_dims.safetensors": json_many_dims,
    "json_huge_dims.safetensors": json_huge_dims,
}

# Made at test time (too large to commit, or compressible but slow to build by hand).
LARGE = {
    "zip_of_dicts.ckpt": zip_of_dicts,
    "empty_dict_ops.ckpt": empty_dict_ops,
    "byteorder_member.ckpt": byteorder_member,
    "deep_lists.ckpt": deep_lists,
    "deep_dicts.ckpt": deep_dicts,
    "json_deep.safetensors": json_deep,
    "json_many_lists.safetensors": json_many_lists,
    "json_many_strings.safetensors": json_many_strings,
    "json_many_numbers.safetensors": json_many_numbers,
}


def main() -> None:
    os.makedirs(CORPUS, exist_ok=True)
    for name, make in SMALL.items():
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(make())


if __name__ == "__main__":
    main()
