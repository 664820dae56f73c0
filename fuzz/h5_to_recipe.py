#!/usr/bin/env python3
"""Turns an HDF5 file (a checkpoint, a sample set) into a recipe for the HDF5 fuzz harnesses
(format: fuzz/h5recipe.h); the recipes of real files are the seed corpora (fuzz/corpus/).

usage: fuzz/h5_to_recipe.py IN.h5 OUT.recipe
"""
import struct
import sys

import h5py
import numpy as np

CODES = {np.dtype("<f4"): 0, np.dtype("<f8"): 1, np.dtype("<i4"): 2, np.dtype("<i8"): 3,
         np.dtype("<u8"): 4, np.dtype("u1"): 5, np.dtype(">f4"): 8, np.dtype("<i2"): 9}


def s(name):
    b = name.encode()
    assert len(b) < 256, name
    return bytes([len(b)]) + b


def type_and_data(dtype, value, shape):
    """(type bytes, data bytes) for a value of dtype; None if the recipe cannot express it."""
    if isinstance(value, h5py.Empty):
        value = []
    if h5py.check_string_dtype(dtype) is not None:
        info = h5py.check_string_dtype(dtype)
        vals = np.asarray(value, dtype=object).reshape(-1)
        if info.length is None:   # variable length
            out = b""
            for v in vals:
                b = v.encode() if isinstance(v, str) else bytes(v)
                out += struct.pack("<H", len(b)) + b
            return bytes([6]), out
        n = info.length
        assert 1 <= n <= 256
        out = b"".join((v.encode() if isinstance(v, str) else bytes(v)).ljust(n, b"\0")[:n] for v in vals)
        return bytes([7, n - 1]), out
    dt = np.dtype(dtype)
    if dt not in CODES:
        return None
    return bytes([CODES[dt]]), np.asarray(value, dtype=dt).tobytes()


def space(shape):
    if shape is None:
        return bytes([7])
    assert len(shape) <= 6
    return bytes([len(shape)]) + b"".join(struct.pack("<I", d) for d in shape)


def attrs(obj, path):
    out = b""
    for name in obj.attrs:
        aid = obj.attrs.get_id(name)
        dtype, shape = aid.dtype, aid.shape
        value = obj.attrs[name]
        td = type_and_data(dtype, value, shape)
        if td is None:
            print(f"h5_to_recipe: skipping attribute {path}@{name} ({dtype})", file=sys.stderr)
            continue
        out += bytes([2]) + s(path) + s(name) + td[0] + space(shape) + td[1]
    return out


def main(src, dst):
    groups, datasets, attributes = b"", b"", b""
    with h5py.File(src, "r") as f:
        attributes += attrs(f, "/")
        names = []
        f.visit(names.append)
        for name in names:
            obj, path = f[name], "/" + name
            if isinstance(obj, h5py.Group):
                groups += bytes([0]) + s(path)
            else:
                td = type_and_data(obj.dtype, obj[()], obj.shape)
                if td is None:
                    print(f"h5_to_recipe: skipping dataset {path} ({obj.dtype})", file=sys.stderr)
                    continue
                flags = (1 if obj.chunks else 0) | (2 if obj.compression else 0)
                datasets += bytes([1]) + s(path) + td[0] + space(obj.shape) + bytes([flags]) + td[1]
            attributes += attrs(obj, path)
    with open(dst, "wb") as out:
        out.write(groups + datasets + attributes)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
