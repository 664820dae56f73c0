#!/usr/bin/env python3
"""Checks a hypertrain checkpoint the way users open it: with h5py (layout in docs/checkpoint.md).

usage: check_checkpoint.py FILE [--pattern] [--expect KEY=VALUE ...]

  --pattern           the file was written by tests/test_checkpoint.c with every element equal to
                      its row-major index within its tensor (times -1 in /adam/m, times 2 in /adam/v):
                      verifies values and element order as h5py sees them
  --expect KEY=VALUE  an integer root attribute (step, seed, data_cursor, world_size, ...) or
                      n_params / n_stats (number of datasets under /params, /bn_running)

Exit status: 0 when every check passes, 1 when one fails, 77 when h5py or numpy is missing.
"""
import argparse
import json
import sys

try:
    import h5py
    import numpy as np
except ImportError:
    print("SKIPPED (no python3-h5py)")
    sys.exit(77)

failures = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        failures.append(what)


def datasets(group):
    """{relative name: dataset} of every dataset below `group`."""
    out = {}
    group.visititems(lambda name, obj: out.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return out


def check_root_attrs(f, expect):
    a = f.attrs
    ints = ["format_version", "step", "seed", "data_cursor", "world_size"]
    for key in ["format", "format_version", "step", "seed", "data_cursor", "lr", "lambda", "world_size",
                "job", "created_by"]:
        check(key in a, f"root attribute {key!r} present")
    if failures:
        return
    check(isinstance(a["format"], str) and a["format"] == "hypertrain-checkpoint",
          f"format == 'hypertrain-checkpoint' as str (got {a['format']!r})")
    for key in ints:
        check(isinstance(a[key], (int, np.integer)), f"{key} is an integer ({type(a[key]).__name__})")
    check(a["format_version"] == 1, f"format_version == 1 (got {a['format_version']})")
    check(np.asarray(a["seed"]).dtype == np.uint64, f"seed is uint64 ({np.asarray(a['seed']).dtype})")
    check(np.asarray(a["step"]).dtype == np.int64, f"step is int64 ({np.asarray(a['step']).dtype})")
    for key in ["lr", "lambda"]:
        check(isinstance(a[key], (float, np.floating)), f"{key} is a float ({type(a[key]).__name__})")
    check(isinstance(a["job"], str), f"job is a str ({type(a['job']).__name__})")
    if isinstance(a["job"], str):
        try:
            json.loads(a["job"])
            check(True, f"job parses as JSON ({len(a['job'])} characters)")
        except ValueError as e:
            check(False, f"job parses as JSON ({e})")
    check(isinstance(a["created_by"], str) and a["created_by"].startswith("hypertrain "),
          f"created_by is 'hypertrain <version>' (got {a['created_by']!r})")
    for key, want in expect.items():
        if key in ints:
            check(int(a[key]) == want, f"{key} == {want} (got {int(a[key])})")


def check_groups(f, pattern, expect):
    for g in ["params", "adam", "adam/m", "adam/v", "bn_running"]:
        check(isinstance(f.get(g), h5py.Group), f"/{g} is a group")
    if failures:
        return
    tensors = {g: datasets(f[g]) for g in ["params", "adam/m", "adam/v", "bn_running"]}
    for g, ds in tensors.items():
        for name, d in ds.items():
            check(d.dtype == np.float32 and d.ndim in (1, 2),
                  f"/{g}/{name}: float32, {d.ndim}-D, shape {d.shape} (dtype {d.dtype})")
    shapes = {n: d.shape for n, d in tensors["params"].items()}
    for g in ["adam/m", "adam/v"]:
        check({n: d.shape for n, d in tensors[g].items()} == shapes,
              f"/{g} has the same datasets and shapes as /params")
    check(len(shapes) > 0, f"/params holds {len(shapes)} datasets")
    if "n_params" in expect:
        check(len(shapes) == expect["n_params"], f"/params holds {expect['n_params']} datasets")
    if "n_stats" in expect:
        n = len(tensors["bn_running"])
        check(n == expect["n_stats"], f"/bn_running holds {expect['n_stats']} datasets (got {n})")
    if pattern:
        factor = {"params": 1.0, "adam/m": -1.0, "adam/v": 2.0, "bn_running": 1.0}
        for g, ds in tensors.items():
            ok = all(np.array_equal(d[()], factor[g] * np.arange(d.size, dtype=np.float32).reshape(d.shape))
                     for d in ds.values())
            check(ok, f"/{g}: every element equals its row-major index (x {factor[g]:g})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--pattern", action="store_true")
    ap.add_argument("--expect", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    expect = {}
    for e in args.expect:
        key, _, value = e.partition("=")
        expect[key] = int(value)
    print(f"check_checkpoint.py {args.file}")
    try:
        f = h5py.File(args.file, "r")
    except OSError as e:
        print(f"  FAIL cannot open {args.file} with h5py: {e}")
        return 1
    with f:
        check_root_attrs(f, expect)
        check_groups(f, args.pattern, expect)
    print(f"check_checkpoint.py: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
