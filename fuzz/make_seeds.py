#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/): a few tiny valid files,
each < 4 KiB, built from the formats' definitions (no Ember, no third-party packages). Rerun
after changing it; the output is deterministic."""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF


def safetensors(tensors, metadata=None, checksums=False):
    """tensors: list of (name, dtype, shape, raw bytes), written in the given order."""
    header, data = {}, b""
    meta = dict(metadata or {})
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
        if checksums:
            meta["crc32c." + name] = "%08x" % crc32c(raw)
    if meta:
        header = {"__metadata__": meta, **header}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def idx(type_byte, dims, payload):
    return bytes([0, 0, type_byte, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def write(target, name, blob):
    assert len(blob) < 4096, (name, len(blob))
    with open(os.path.join(HERE, "corpus", target, name), "wb") as f:
        f.write(blob)


def main():
    f32 = struct.pack("<4f", 1.5, -2.0, 0.0, 3.0)
    write("safetensors", "empty.safetensors", safetensors([]))
    write("safetensors", "one_f32.safetensors", safetensors([("w", "F32", [2, 2], f32)]))
    write("safetensors", "all_dtypes_meta_crc.safetensors", safetensors([
        ("a_u8", "U8", [3], bytes([7, 0, 255])),
        ("b_f32", "F32", [2, 2], f32),
        ("c_f64", "F64", [], struct.pack("<d", -0.125)),
        ("d_f16", "F16", [2], struct.pack("<2H", 0x3C00, 0xC000)),
        ("e_bf16", "BF16", [1], struct.pack("<H", 0x3F80)),
        ("f_i32", "I32", [2], struct.pack("<2i", -5, 2147483647)),
        ("g_i64", "I64", [1], struct.pack("<q", -9000000000)),
        ("h_bool", "BOOL", [3], bytes([1, 0, 1])),
        ("i_empty", "F32", [0, 3], b""),
    ], {"framework": "ember", "note": "quote \" tab \t \u00e9"}, checksums=True))
    write("safetensors", "meta_only.safetensors", safetensors([], {"k": "v"}))
    write("safetensors", "zero_size_boundaries.safetensors", safetensors([
        ("z0", "F32", [0], b""), ("a", "U8", [2], b"\x01\x02"), ("z1", "I64", [0, 5], b""),
        ("b", "U8", [1], b"\x03")]))

    u8 = bytes((i * 7) % 256 for i in range(24))
    write("idx", "u8_2x3x4.idx", idx(0x08, [2, 3, 4], u8))
    write("idx", "u8_2x3x4.idx.gz", gzip.compress(idx(0x08, [2, 3, 4], u8), mtime=0))
    write("idx", "i8_4.idx", idx(0x09, [4], bytes([0x80, 0xFF, 0, 0x7F])))
    write("idx", "i16_5.idx", idx(0x0B, [5], struct.pack(">5h", -32768, -1, 0, 1, 32767)))
    write("idx", "i32_2x2.idx", idx(0x0C, [2, 2], struct.pack(">4i", -2**31, -1, 0, 2**31 - 1)))
    write("idx", "f32_3.idx", idx(0x0D, [3], struct.pack(">3f", 1.5, -2.25, 3.0e38)))
    write("idx", "f64_2.idx.gz", gzip.compress(idx(0x0E, [2], struct.pack(">2d", 0.1, -1e300)), mtime=0))
    write("idx", "empty_0x28.idx", idx(0x08, [0, 28], b""))
    write("idx", "two_members.idx.gz",
          gzip.compress(idx(0x08, [2, 3, 4], u8)[:20], mtime=0) + gzip.compress(idx(0x08, [2, 3, 4], u8)[20:], mtime=0))


if __name__ == "__main__":
    main()
