#!/usr/bin/env python3
"""Interop fixtures for Ember's safetensors reader and writer (tests/unit/test_safetensors.cpp).

1. Writes tests/data/safetensors_from_python.safetensors with the Python `safetensors` package
   (Hugging Face's reference implementation) from the arrays built in `reference_tensors()`.
   The C++ test loads that file and compares with values hard-coded from this construction.
2. Checks tests/data/safetensors_from_ember.safetensors, a file Ember wrote (the C++ test
   regenerates it with EMBER_REGENERATE_TEST_DATA=1 and otherwise checks that Ember still
   writes it byte for byte): it is parsed by the reference implementation and every value is
   compared with `ember_expected()`.

Requirements: `pip install safetensors numpy` (no torch). BF16 has no numpy dtype, so BF16
data are handled as raw uint16 bit patterns.

Usage: make_safetensors_reference.py [--write] [--check]   (both when neither is given)
"""
import argparse
import pathlib
import sys

import numpy as np
import safetensors

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"
FROM_PYTHON = DATA / "safetensors_from_python.safetensors"
FROM_EMBER = DATA / "safetensors_from_ember.safetensors"

# Format dtype name -> numpy dtype of the stored bytes (BF16 as its uint16 bit pattern).
NUMPY_OF = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "BF16": np.uint16,
            "I32": np.int32, "I64": np.int64, "U8": np.uint8, "BOOL": np.bool_}


def reference_tensors():
    """name -> (format dtype, array). Mirrored by the PythonReference test in C++."""
    return {
        "f32": ("F32", (np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1).astype(np.float32)),
        "f64": ("F64", np.array([0.1, -2.5e300, 5e-324], dtype=np.float64)),
        "f16": ("F16", np.array([1.0, -2.0, 0.5, 65504.0, 2.0**-24, np.inf], dtype=np.float16)),
        # 1.0, -3.0, 0.25, +inf
        "bf16": ("BF16", np.array([[0x3F80, 0xC040], [0x3E80, 0x7F80]], dtype=np.uint16)),
        "i32": ("I32", np.array([[-2147483648, 0, 2147483647]], dtype=np.int32)),
        "i64": ("I64", np.array([-9223372036854775808, 1, 9223372036854775807], dtype=np.int64)),
        "u8": ("U8", np.array([0, 1, 127, 255], dtype=np.uint8)),
        "bool": ("BOOL", np.array([True, False, True], dtype=np.bool_)),
        "scalar": ("F32", np.array(3.25, dtype=np.float32)),
        "empty": ("F32", np.zeros((0, 3), dtype=np.float32)),
    }


REFERENCE_METADATA = {"format": "np", "source": "make_safetensors_reference.py"}


def ember_expected():
    """name -> (format dtype, shape, flat values) of the file Ember writes (MakeEmberFile in C++)."""
    return {
        "a_u8": ("U8", [3], [7, 0, 255]),  # 3 bytes first: every later tensor is misaligned
        "b_f32": ("F32", [2, 2], [1.5, -2.0, 0.0, 3.0]),
        "c_f64": ("F64", [], [-0.125]),
        "d_f16": ("F16", [3], [1.0, -0.5, 2048.0]),
        "e_bf16": ("BF16", [2], [0x3F80, 0xC2F7]),  # bits of 1.0 and -123.5
        "f_i32": ("I32", [2], [-5, 2147483647]),
        "g_i64": ("I64", [1], [-9000000000]),
        "h_bool": ("BOOL", [4], [True, False, False, True]),
        "i_empty": ("F32", [0, 3], []),
        # transpose of [[1, 2, 3], [4, 5, 6]] written from a non-contiguous view
        "j_view": ("F32", [3, 2], [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]),
    }


EMBER_METADATA = {"framework": "ember", "note": "quote \" backslash \\ tab \t é"}


def spec(dtype, arr, keep):
    arr = np.array(arr, order="C", copy=True)  # (ascontiguousarray would make 0-d arrays 1-d)
    keep.append(arr)
    name = {"BF16": "bfloat16"}.get(dtype, arr.dtype.name)
    shape = list(arr.shape)
    if hasattr(safetensors, "TensorSpec"):  # safetensors >= 0.7
        return safetensors.TensorSpec(dtype=name, shape=shape, data_ptr=arr.ctypes.data, data_len=arr.nbytes)
    return {"dtype": name, "shape": shape, "data": arr.tobytes()}


def write_reference():
    keep = []
    tensors = {k: spec(dt, a, keep) for k, (dt, a) in reference_tensors().items()}
    blob = bytes(safetensors.serialize(tensors, metadata=REFERENCE_METADATA))
    FROM_PYTHON.write_bytes(blob)
    print(f"wrote {FROM_PYTHON} ({len(blob)} bytes, safetensors {safetensors.__version__})")


def check_ember():
    blob = FROM_EMBER.read_bytes()
    parsed = dict(safetensors.deserialize(blob))
    expected = ember_expected()
    errors = []
    if sorted(parsed) != sorted(expected):
        errors.append(f"names {sorted(parsed)} != {sorted(expected)}")
    for name, (dtype, shape, values) in expected.items():
        if name not in parsed:
            continue
        got = parsed[name]
        if got["dtype"] != dtype or list(got["shape"]) != shape:
            errors.append(f"{name}: {got['dtype']} {got['shape']} != {dtype} {shape}")
            continue
        arr = np.frombuffer(bytes(got["data"]), dtype=NUMPY_OF[dtype])
        want = np.array(values, dtype=NUMPY_OF[dtype])
        if arr.shape != want.shape or not np.array_equal(arr, want):
            errors.append(f"{name}: values {arr.tolist()} != {want.tolist()}")
    # The metadata, through the reference reader's own header parser.
    with safetensors.safe_open(str(FROM_EMBER), framework="numpy") as f:
        if f.metadata() != EMBER_METADATA:
            errors.append(f"metadata {f.metadata()} != {EMBER_METADATA}")
    # Header layout: length prefix, padding with spaces to a multiple of 8.
    n = int.from_bytes(blob[:8], "little")
    if n % 8 != 0 or not blob[8:8 + n].decode("utf-8").rstrip(" ").endswith("}"):
        errors.append(f"header of {n} bytes is not space-padded to a multiple of 8")
    if errors:
        print("Ember-written file FAILED the reference check:\n  " + "\n  ".join(errors))
        return False
    print(f"checked {FROM_EMBER}: {len(expected)} tensors and metadata match (safetensors {safetensors.__version__})")
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="write the Python-made reference file")
    ap.add_argument("--check", action="store_true", help="check the Ember-written file")
    args = ap.parse_args()
    both = not args.write and not args.check
    ok = True
    if args.write or both:
        write_reference()
    if args.check or both:
        ok = check_ember()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
