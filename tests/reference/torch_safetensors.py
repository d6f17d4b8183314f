"""A minimal safetensors reader/writer for torch tensors, shared by the reference scripts.

Debian's python3-torch has no `safetensors` package beside it, and the format is small:
an 8-byte little-endian header length, a JSON header (padded with spaces to a multiple of 8),
then the raw little-endian tensor data in header order.
"""
import json
import pathlib
import struct

import numpy as np
import torch

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"

_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.int64: "I64"}
_NP = {"F64": np.float64, "F32": np.float32, "I64": np.int64, "I32": np.int32, "U8": np.uint8,
       "BOOL": np.bool_}


def save_safetensors(path, tensors):
    """Writes {name: tensor} in the safetensors format (header padded to 8 bytes)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    """Reads a safetensors file into {name: tensor} (metadata is skipped)."""
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=np.dtype(_NP[e["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.copy().reshape(e["shape"]))
    return out


def reference_case(out, name, fn, inputs, randn, extra=None, gy=None):
    """Runs y = fn(**inputs) and backward with gy (default: randn(*y.shape), or 0.7 for a 0-d y);
    stores inputs, y, gy and the gradient of every float input under "<name>.<key>"."""
    leaves = {k: v.clone().requires_grad_(v.is_floating_point()) for k, v in inputs.items()}
    y = fn(**leaves)
    if gy is None:
        gy = randn(*y.shape) if y.dim() > 0 else torch.tensor(0.7, dtype=torch.float64)
    y.backward(gy)
    for k, v in inputs.items():
        out[f"{name}.{k}"] = v
        if leaves[k].grad is not None:
            out[f"{name}.g{k}"] = leaves[k].grad
    for k, v in (extra or {}).items():
        out[f"{name}.{k}"] = v
    out[f"{name}.y"] = y.detach()
    out[f"{name}.gy"] = gy
