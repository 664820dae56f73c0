#!/usr/bin/env python3
"""Checked reading of hyperanalyze result files: the reader of the plot scripts (analysis/plot_*.py).

Every dataset and attribute a plot uses is checked against the layout its subcommand writes
(class, rank, related lengths) before any of it is used, so that a damaged or foreign file ends
with one line, "<script>: error: result file 'F': dataset /accuracy must be a 1-D float array, got
a 4-element array of variable-length string", exit status 1, instead of a traceback.

usage: python3 analysis/resultfile.py KIND FILE.h5     check FILE as a KIND result (exit 0 or 1)
KIND: accuracy, adversarial, ensemble, filters, ood, paths, pca.
"""
import os
import sys

import h5py
import numpy as np

# kind -> (datasets, optional datasets, attributes, length relations)
# a dataset: name -> (class, rank); class "float", "int" or "number"; a name ending in "/*" means
# every dataset of that group (at least one). A relation (a, b, d): len(a) == len(b) + d.
LAYOUTS = {
    "accuracy": ({"accuracy": ("float", 1), "histogram/edges": ("float", 1), "histogram/counts": ("number", 1)},
                 {}, {"step": "int", "mean": "float", "images": "int", "split": "str"},
                 [("histogram/edges", "histogram/counts", 1)]),
    "adversarial": ({"eps": ("float", 1), "labels": ("int", 1), "targets": ("int", 1), "generated/attacked": ("int", 1),
                     "generated/untargeted/*": ("float", 1), "generated/targeted/*": ("float", 1)},
                    {f"deep/{m}/{l}": ("float", 1) for m in ("untargeted", "targeted")
                     for l in ("source", "other", "ensemble_transfer", "ensemble_whitebox")} | {"deep/attacked": ("int", 1)},
                    {"members": "int", "images": "int", "clip": "int"},
                    [("generated/attacked", "labels", 0), ("targets", "labels", 0)]),
    "ensemble": ({"sizes": ("int", 1), "curve/*": ("float", 2), "reliability/accuracy": ("float", 2),
                  "reliability/confidence": ("float", 2), "reliability/count": ("float", 2)},
                 {}, {"single_accuracy_mean": "float", "images": "int", "split": "str", "k": "int", "m": "int"}, []),
    "filters": ({"slices": ("float", 3)}, {}, {"layer": "int", "filter": "int", "channel": "int"}, []),
    "ood": ({"sizes": ("int", 1), "auroc/entropy": ("float", 1), "auroc/mutual_information": ("float", 1),
             "scores/mutual_information": ("float", 1), "is_outlier": ("int", 1)},
            {}, {}, [("auroc/entropy", "sizes", 0), ("scores/mutual_information", "is_outlier", 0)]),
    "paths": ({"t": ("float", 1), "interpolated/accuracy": ("float", 2), "direct/accuracy": ("float", 2)},
              {}, {"images": "int", "split": "str", "step": "int"}, []),
    "pca": ({"projections": ("float", 2), "explained_variance_ratio": ("float", 1)},
            {"accuracy": ("float", 1)}, {"what": "str", "networks": "int", "dim": "int", "step": "int"}, []),
}


class ResultError(Exception):
    pass


def _describe(obj):
    dt = obj.dtype
    if h5py.check_string_dtype(dt) is not None:
        t = "variable-length string" if h5py.check_string_dtype(dt).length is None else "fixed-length string"
    elif dt.kind == "f":
        t = f"float{8 * dt.itemsize}"
    elif dt.kind in "iu":
        t = f"{'u' if dt.kind == 'u' else ''}int{8 * dt.itemsize}"
    else:
        t = f"{dt.kind}-kind"
    shape = obj.shape
    if shape is None:
        return f"an empty (null) dataspace of {t}"
    if shape == ():
        return f"a scalar of {t}"
    if len(shape) == 1:
        return f"a {shape[0]}-element array of {t}"
    return f"an array of shape {shape} of {t}"


def _class_ok(dt, cls):
    if h5py.check_string_dtype(dt) is not None:
        return False
    return dt.kind in {"float": "f", "int": "iu", "number": "fiu"}[cls]


class Result:
    """A result file checked against the layout of one hyperanalyze subcommand."""

    def __init__(self, path, kind):
        self.path, self.kind = path, kind
        self.data, self.attrs = {}, {}
        try:
            f = h5py.File(path, "r")
        except (OSError, ValueError) as e:
            raise ResultError(f"result file '{path}' cannot be read as HDF5 ({e})")
        with f:
            self._read(f)
            self.all_attrs = {k: f.attrs[k] for k in f.attrs}
            self.all_attrs.update(self.attrs)

    def fail(self, msg):
        raise ResultError(f"result file '{self.path}': {msg}")

    def _dataset(self, f, name, cls, rank):
        obj = f.get(name)
        if obj is None:
            self.fail(f"missing dataset /{name} (a result of hyperanalyze {self.kind} has it)")
        if not isinstance(obj, h5py.Dataset):
            self.fail(f"/{name} must be a dataset, got a group")
        want = f"a {rank}-D {cls} array" if rank else f"a {cls} scalar"
        if not _class_ok(obj.dtype, cls) or obj.shape is None or len(obj.shape) != rank:
            self.fail(f"dataset /{name} must be {want}, got {_describe(obj)}")
        self.data[name] = obj[()]

    def _group(self, f, name, cls, rank):
        g = f.get(name)
        if not isinstance(g, h5py.Group) or len(g) == 0:
            self.fail(f"/{name} must be a group of datasets (a result of hyperanalyze {self.kind} has it)")
        for k in g:
            self._dataset(f, f"{name}/{k}", cls, rank)

    def _attr(self, f, name, typ):
        if name not in f.attrs:
            self.fail(f"missing root attribute \"{name}\" (a result of hyperanalyze {self.kind} has it)")
        aid = f.attrs.get_id(name)
        v = f.attrs[name]
        is_str = h5py.check_string_dtype(aid.dtype) is not None
        ok = aid.shape == () and (is_str if typ == "str" else (not is_str and aid.dtype.kind in
                                                                  ("iu" if typ == "int" else "fiu")))
        if not ok:
            self.fail(f"attribute \"{name}\" must be a single {dict(str='string', int='integer').get(typ, typ)}, got "
                      f"{_describe(aid)}")
        self.attrs[name] = v.decode() if isinstance(v, bytes) else (v if typ == "str" else np.asarray(v).item())

    def _read(self, f):
        if self.kind not in LAYOUTS:
            raise ResultError(f"unknown result kind '{self.kind}' (one of {', '.join(LAYOUTS)})")
        datasets, optional, attrs, relations = LAYOUTS[self.kind]
        cmd = f.attrs.get("command")
        cmd = cmd.decode() if isinstance(cmd, bytes) else cmd
        if isinstance(cmd, str) and cmd.startswith("hyperanalyze ") and cmd != f"hyperanalyze {self.kind}":
            self.fail(f"it is a result of '{cmd}', not of hyperanalyze {self.kind}")
        for name, (cls, rank) in datasets.items():
            if name.endswith("/*"):
                self._group(f, name[:-2], cls, rank)
            else:
                self._dataset(f, name, cls, rank)
        for name, (cls, rank) in optional.items():
            if name in f:
                self._dataset(f, name, cls, rank)
        for name, typ in attrs.items():
            self._attr(f, name, typ)
        for a, b, d in relations:
            if len(self.data[a]) != len(self.data[b]) + d:
                self.fail(f"/{a} has {len(self.data[a])} entries but /{b} has {len(self.data[b])} "
                          f"(expected {len(self.data[b]) + d})")


def load(path, kind):
    """The checked contents of a result file (.data, .attrs); a bad file ends the script with one
    line on stderr and exit status 1."""
    try:
        return Result(path, kind)
    except ResultError as e:
        print(f"{os.path.basename(sys.argv[0])}: error: {e}", file=sys.stderr)
        sys.exit(1)


class _Checked:
    """What the plot scripts used of an h5py.File, over the checked contents: f[name][...],
    name in f, iteration over a group's names (f["curve"]), f.attrs."""

    def __init__(self, r):
        self._r, self.attrs = r, r.all_attrs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __contains__(self, name):
        return name in self._r.data or any(k.startswith(name + "/") for k in self._r.data)

    def __getitem__(self, name):
        if name in self._r.data:
            return self._r.data[name]
        names = [k[len(name) + 1:] for k in self._r.data if k.startswith(name + "/")]
        if not names:
            raise KeyError(f"{name} is not part of the checked layout of a {self._r.kind} result")
        return names


def open(path, kind):  # noqa: A001 (used as resultfile.open, like h5py.File)
    """load(), behind the small part of the h5py.File interface the plot scripts use."""
    return _Checked(load(path, kind))


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stdout if len(argv) == 2 else sys.stderr)
        return 0 if len(argv) == 2 else 2
    load(argv[2], argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
