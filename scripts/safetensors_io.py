#!/usr/bin/python3
"""Minimal reader/writer of the safetensors format (no dependency on the
`safetensors` package; uses only json/struct/numpy/torch).

Layout of a file:
    8 bytes   little-endian u64 N = length of the JSON header
    N bytes   UTF-8 JSON object:
                "__metadata__": {str: str}            (optional)
                "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}
              offsets are relative to the first byte after the header;
              the header is padded with spaces to a multiple of 8 bytes.
    ...       the tensors' raw little-endian bytes, packed in offset order.

timfusion metadata conventions (all values are strings):
    "timfusion.arch"        JSON of the architecture spec, e.g.
                            {"name": "ivif-light", "kind": "single", "channels": 48,
                             "inputs": ["vis", "ir"], "cells": ["Chain2", "Chain2"],
                             "normal": ["Residualblocks_3_1", "ECAattention_3"]}
    "timfusion.provenance"  JSON object describing how the weights were made.

API:
    save(path, tensors, metadata=None)   tensors: {name: torch.Tensor | numpy array}
    load(path) -> (tensors, metadata)    tensors: {name: torch.Tensor}, in file order
    read_header(path) -> (header dict without __metadata__, metadata dict)
"""
import json
import os
import struct
import tempfile

import numpy as np
import torch

# safetensors dtype name -> (torch dtype, item size in bytes)
_DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}
_TORCH_TO_NAME = {v[0]: k for k, v in _DTYPES.items()}

# Refuse absurd headers before reading them (the official limit is 100 MB).
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    pass


def _to_torch(t):
    if isinstance(t, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(t))
    if isinstance(t, torch.Tensor):
        return t
    raise SafetensorsError("unsupported tensor type %r" % type(t))


def _tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    arr = t.numpy()
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


def dumps(tensors, metadata=None):
    """Serialise to bytes. Tensors are written sorted by name (deterministic)."""
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise SafetensorsError("metadata must map str to str (key %r)" % (k,))
        header["__metadata__"] = dict(sorted(metadata.items()))
    blobs = []
    offset = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise SafetensorsError("a tensor cannot be named __metadata__")
        t = _to_torch(tensors[name])
        if t.dtype not in _TORCH_TO_NAME:
            raise SafetensorsError("%s: unsupported dtype %s" % (name, t.dtype))
        data = _tensor_bytes(t)
        header[name] = {
            "dtype": _TORCH_TO_NAME[t.dtype],
            "shape": [int(s) for s in t.shape],
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(blobs)


def save(path, tensors, metadata=None):
    """Write atomically (temporary file in the same folder, then rename)."""
    data = dumps(tensors, metadata)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _parse_header(buf, where):
    if len(buf) < 8:
        raise SafetensorsError("%s: file too short (%d bytes)" % (where, len(buf)))
    (n,) = struct.unpack("<Q", buf[:8])
    if n > _MAX_HEADER or 8 + n > len(buf):
        raise SafetensorsError("%s: header length %d exceeds the file (%d bytes)" % (where, n, len(buf)))
    try:
        header = json.loads(bytes(buf[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError("%s: header is not valid JSON: %s" % (where, e))
    if not isinstance(header, dict):
        raise SafetensorsError("%s: header is not a JSON object" % where)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise SafetensorsError("%s: __metadata__ must map strings to strings" % where)
    data_len = len(buf) - 8 - n
    spans = []
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError("%s: tensor %s: entry needs exactly dtype, shape, data_offsets" % (where, name))
        if e["dtype"] not in _DTYPES:
            raise SafetensorsError("%s: tensor %s: unknown dtype %r" % (where, name, e["dtype"]))
        shape, offs = e["shape"], e["data_offsets"]
        if (not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape)):
            raise SafetensorsError("%s: tensor %s: bad shape %r" % (where, name, shape))
        if (not isinstance(offs, list) or len(offs) != 2 or not all(isinstance(o, int) for o in offs)
                or not 0 <= offs[0] <= offs[1] <= data_len):
            raise SafetensorsError("%s: tensor %s: bad data_offsets %r (data is %d bytes)"
                                   % (where, name, offs, data_len))
        numel = 1
        for s in shape:
            numel *= s
        if offs[1] - offs[0] != numel * _DTYPES[e["dtype"]][1]:
            raise SafetensorsError("%s: tensor %s: %d bytes for shape %s %s" % (
                where, name, offs[1] - offs[0], shape, e["dtype"]))
        spans.append((offs[0], offs[1], name))
    spans.sort()
    pos = 0
    for b, e_, name in spans:
        if b != pos:
            raise SafetensorsError("%s: tensor %s: data not packed (gap or overlap at byte %d)" % (where, name, b))
        pos = e_
    if pos != data_len:
        raise SafetensorsError("%s: %d trailing bytes after the last tensor" % (where, data_len - pos))
    return header, metadata, 8 + n


def loads(buf, where="<bytes>"):
    header, metadata, start = _parse_header(buf, where)
    tensors = {}
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dt, _ = _DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        raw = bytearray(buf[start + b:start + end])
        if len(raw) == 0:
            t = torch.empty(e["shape"], dtype=dt)
        else:
            t = torch.frombuffer(raw, dtype=dt).reshape(e["shape"]).clone()
        tensors[name] = t
    return tensors, metadata


def load(path):
    with open(path, "rb") as f:
        buf = f.read()
    return loads(buf, path)


def read_header(path):
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise SafetensorsError("%s: file too short" % path)
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER:
            raise SafetensorsError("%s: header length %d too large" % (path, n))
        f.seek(0)
        buf = f.read()
    header, metadata, _ = _parse_header(buf, path)
    return header, metadata


if __name__ == "__main__":
    import sys
    for p in sys.argv[1:]:
        h, m = read_header(p)
        print(p)
        for k, v in m.items():
            print("  meta %s = %s" % (k, v))
        for k in sorted(h):
            print("  %-60s %-4s %s" % (k, h[k]["dtype"], h[k]["shape"]))
