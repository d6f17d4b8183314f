#!/usr/bin/env python3
"""Writes the small IDX files that tests/unit/test_idx.cpp reads (good and malformed ones).

Independent of Ember: headers and payloads are packed by hand with struct. Run from any
directory; the files land next to this script. Deterministic (gzip mtime 0).
"""
import gzip
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def header(type_byte, dims):
    return bytes([0, 0, type_byte, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# (2, 3, 4) unsigned bytes: value i*7 mod 256 at flat index i.
u8 = header(0x08, [2, 3, 4]) + bytes((i * 7) % 256 for i in range(24))
write("u8_2x3x4.idx", u8)
write("u8_2x3x4.idx.gz", gz(u8))
write("i8_4.idx", header(0x09, [4]) + struct.pack(">4b", -128, -1, 0, 127))
write("i16_5.idx", header(0x0B, [5]) + struct.pack(">5h", -32768, -1, 0, 1, 32767))
write("i32_2x2.idx", header(0x0C, [2, 2]) + struct.pack(">4i", -2147483648, -1, 0, 2147483647))
write("f32_3.idx", header(0x0D, [3]) + struct.pack(">3f", 1.5, -2.25, 3.0e38))
write("f64_2.idx.gz", gz(header(0x0E, [2]) + struct.pack(">2d", 0.1, -1e300)))
write("empty_0x28.idx", header(0x08, [0, 28]))
# Two gzip members back to back, as `cat a.gz b.gz` makes: one logical stream.
write("two_members.idx.gz", gz(u8[:10]) + gz(u8[10:]))

# Malformed.
write("bad_magic.idx", bytes([1, 0, 8, 1]) + struct.pack(">I", 3) + b"abc")
write("bad_type.idx", header(0x0A, [3]) + b"abc")
write("zero_ndim.idx", bytes([0, 0, 8, 0]))
write("too_short.idx", bytes([0, 0]))
write("truncated_header.idx", bytes([0, 0, 8, 3]) + struct.pack(">2I", 2, 3))
write("truncated.idx", u8[:-4])
write("trailing.idx", u8 + b"xyz")
write("trailing.idx.gz", gz(u8 + b"xyz"))
write("huge_overflow.idx", header(0x08, [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF]) + b"abc")
write("huge_f64_overflow.idx", header(0x0E, [0x7FFFFFFF, 0x7FFFFFFF, 2]) + b"abc")
write("huge_alloc.idx", header(0x0D, [0x7FFFFFFF, 16]) + b"abcd")
write("huge_alloc.idx.gz", gz(header(0x0D, [0x7FFFFFFF, 16]) + b"abcd"))
full = gz(u8)
write("truncated.idx.gz", full[: len(full) // 2])
corrupt = bytearray(full)
corrupt[-6] ^= 0xFF  # inside the CRC-32 trailer
write("bad_crc.idx.gz", bytes(corrupt))
write("garbage_after.idx.gz", full + b"\x00\x00junk")
