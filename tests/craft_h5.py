#!/usr/bin/env python3
"""Crafts hostile HDF5 files from valid ones, for tests/t_hostile_h5.sh and tests/bad_inputs/hdf5.sh.

usage: tests/craft_h5.py CASE SRC.h5 DST.h5     (copies SRC to DST, then applies CASE)
       tests/craft_h5.py --list
SRC is a checkpoint, a sample set or a result file, as the case needs. Exit 77 without h5py.
"""
import shutil
import sys

try:
    import h5py
    import numpy as np
except ImportError:
    sys.exit(77)

VLEN = h5py.string_dtype()


def set_attr(f, name, value, dtype=None):
    if name in f.attrs:
        del f.attrs[name]
    f.attrs.create(name, value, dtype=dtype)


def first_dataset(f, group):
    names = []
    f[group].visit(lambda n: names.append(n) if isinstance(f[group][n], h5py.Dataset) else None)
    return f"{group}/{sorted(names)[0]}"


def replace_ds(f, name, **kw):
    del f[name]
    f.create_dataset(name, **kw)


def huge(f, name, dims):
    """A dataset with huge declared dims and no data written (a small file)."""
    del f[name]
    f.create_dataset(name, shape=dims, dtype="f4", chunks=tuple(1 for _ in dims))


CASES = {
    # root attributes (checkpoints and sample sets alike)
    "format_vlen64": lambda f: set_attr(f, "format", [f.attrs["format"]] * 64, VLEN),
    "format_s21x2000": lambda f: set_attr(f, "format", np.array([b"hypertrain-checkpoint"] * 2000, dtype="S21")),
    "format_int": lambda f: set_attr(f, "format", np.int32(7)),
    "format_empty": lambda f: set_attr(f, "format", h5py.Empty("S10")),
    "job_vlen4": lambda f: set_attr(f, "job", [f.attrs["job"]] * 4, VLEN),
    "job_float": lambda f: set_attr(f, "job", np.float64(1.5)),
    "job_not_json": lambda f: set_attr(f, "job", "{ this is not json", VLEN),
    "version_string": lambda f: set_attr(f, "format_version", "1", VLEN),
    "version_array": lambda f: set_attr(f, "format_version", np.array([1, 1], dtype="i4")),
    "step_negative": lambda f: set_attr(f, "step", np.int64(-5)),
    "step_float": lambda f: set_attr(f, "step", np.float64(2.0)),
    "lr_nan": lambda f: set_attr(f, "lr", np.float64("nan")),
    "world_size_zero": lambda f: set_attr(f, "world_size", np.int32(0)),
    "seed_string": lambda f: set_attr(f, "seed", "1", VLEN),
    # checkpoint datasets
    "param_shape": lambda f: (lambda n: replace_ds(f, n, data=np.zeros(f[n].shape + (2,), "f4")))(first_dataset(f, "/params")),
    "param_strings": lambda f: (lambda n: replace_ds(f, n, data=np.full(f[n].shape, "0.5", dtype=object), dtype=VLEN))(first_dataset(f, "/params")),
    "param_int32": lambda f: (lambda n: replace_ds(f, n, data=np.zeros(f[n].shape, "i4")))(first_dataset(f, "/adam/m")),
    "param_huge": lambda f: huge(f, first_dataset(f, "/params"), (2**40, 2**20)),
    "param_group": lambda f: (lambda n: (f.__delitem__(n), f.create_group(n)))(first_dataset(f, "/params")),
    "param_scalar": lambda f: (lambda n: replace_ds(f, n, data=np.float32(1)))(first_dataset(f, "/bn_running")),
    # sample sets
    "weights_shape": lambda f: replace_ds(f, "/weights/layer1/kernel", data=np.zeros(f["/weights/layer1/kernel"].shape[:-1] + (7,), "f4")),
    "weights_strings": lambda f: replace_ds(f, "/weights/layer1/bias", data=np.full(f["/weights/layer1/bias"].shape, "x", dtype=object), dtype=VLEN),
    "z_huge": lambda f: huge(f, "/z", (2**33, f["/z"].shape[1])),
    "z_rank3": lambda f: replace_ds(f, "/z", data=np.zeros(f["/z"].shape + (1,), "f4")),
    "metrics_strings": lambda f: replace_ds(f, "/metrics/accuracy", data=np.full(f["/metrics/accuracy"].shape, "0.9", dtype=object), dtype=VLEN),
    "metrics_split_array": lambda f: set_attr(f, "metrics_split", ["val", "test"], VLEN),
    "metrics_split_bad": lambda f: set_attr(f, "metrics_split", "train", VLEN),
    "target_arch_int": lambda f: set_attr(f, "target_architecture", np.int64(3)),
    "metrics_images_negative": lambda f: set_attr(f, "metrics_images", np.int32(-1)),
    # result files (hyperanalyze accuracy)
    "result_accuracy_strings": lambda f: replace_ds(f, "/accuracy", data=np.full(f["/accuracy"].shape, "0.9", dtype=object), dtype=VLEN),
    "result_edges_2d": lambda f: replace_ds(f, "/histogram/edges", data=np.zeros((2, 2), "f8")),
    "result_step_array": lambda f: set_attr(f, "step", np.array([1, 2], dtype="i8")),
    "result_no_accuracy": lambda f: f.__delitem__("/accuracy"),
}


def main(argv):
    if len(argv) == 2 and argv[1] == "--list":
        print("\n".join(CASES))
        return 0
    if len(argv) != 4 or argv[1] not in CASES:
        sys.exit(__doc__)
    shutil.copyfile(argv[2], argv[3])
    with h5py.File(argv[3], "r+") as f:
        CASES[argv[1]](f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
