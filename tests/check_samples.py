#!/usr/bin/env python3
"""Checks a hypertrain sample set the way users read it (h5py + numpy), independently of the C code.

usage:
  check_samples.py SAMPLES.h5 [--count N] [--checkpoint CKPT] [--data DIR] [--nets K]
      Root attributes (names, types, values), datasets (names, shapes, dtypes, chunking) against
      the stored job's target architecture, z in [-1, 1), gauge fixing (every filter of layers
      1..m-1 has RMS 1 over weights and bias; the logits' biases have mean 0), and, when the set
      stores metrics and MNIST is in DIR, an independent numpy forward pass of the first K
      networks in the documented layout (TensorFlow conv SAME, NHWC) reproducing /metrics.
  check_samples.py --corrupt KIND IN.h5 OUT.h5
      Writes a damaged copy for the bad-input tests. KIND: missing-bias, bad-shape, float64-z,
      version2, wrong-format, altered-arch, extra-layer, no-job.
Exit status 0 when every check passes; prints one line per check.
"""
import gzip
import hashlib
import json
import os
import shutil
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # the shell test turns this into a visible SKIPPED line
    print(f"SKIPPED (no h5py/numpy: {e})")
    sys.exit(77)

FAILS = []


def check(cond, msg):
    print(("  PASS " if cond else "  FAIL ") + msg)
    if not cond:
        FAILS.append(msg)


def target_layers(job):
    """(type, kernel, cin, filters, fan_in) of each conv/fc layer, plus the op list."""
    h, w, c = job["target"]["input"]
    ops, layers = [], []
    for spec in job["target"]["layers"]:
        t = spec["type"]
        if t == "conv":
            k, f = spec["kernel"], spec["filters"]
            layers.append(("conv", k, c, f, k * k * c))
            ops.append(("conv", len(layers) - 1))
            c = f
        elif t == "fc":
            fan_in = h * w * c
            layers.append(("fc", 0, c, spec["units"], fan_in))
            ops.append(("fc", len(layers) - 1))
            h, w, c = 1, 1, spec["units"]
        elif t == "relu":
            ops.append(("relu", None))
        elif t == "maxpool":
            k = spec["kernel"]
            ops.append(("maxpool", k))
            h, w = -(-h // k), -(-w // k)
    return layers, ops


def expected_shapes(layers, n):
    out = {}
    for i, (t, k, cin, f, fan_in) in enumerate(layers):
        kern = (n, k, k, cin, f) if t == "conv" else (n, fan_in, f)
        out[f"weights/layer{i + 1}/kernel"] = kern
        out[f"weights/layer{i + 1}/bias"] = (n, f)
    return out


# ---- independent forward pass (numpy, float64) ----

def conv_same(x, kern, bias):
    n, h, w, c = x.shape
    k = kern.shape[0]
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    cols = np.empty((n, h, w, k, k, c))
    for dy in range(k):
        for dx in range(k):
            cols[:, :, :, dy, dx, :] = xp[:, dy:dy + h, dx:dx + w, :]
    return cols.reshape(n * h * w, k * k * c).dot(kern.reshape(k * k * c, -1)).reshape(n, h, w, -1) + bias


def maxpool_same(x, k):
    n, h, w, c = x.shape
    oh, ow = -(-h // k), -(-w // k)
    ph, pw = oh * k - h, ow * k - w
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), constant_values=-np.inf)
    return xp.reshape(n, oh, k, ow, k, c).max(axis=(2, 4))


def forward(ops, weights, images):
    x = images
    for kind, arg in ops:
        if kind == "conv":
            kern, bias = weights[arg]
            x = conv_same(x, kern, bias)
        elif kind == "fc":
            kern, bias = weights[arg]
            x = x.reshape(x.shape[0], -1).dot(kern) + bias
        elif kind == "relu":
            x = np.maximum(x, 0)
        elif kind == "maxpool":
            x = maxpool_same(x, arg)
    x = x - x.max(axis=1, keepdims=True)
    p = np.exp(x)
    return p / p.sum(axis=1, keepdims=True)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xff
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find_idx(d, name):
    for cand in (name + ".gz", name):
        if os.path.exists(os.path.join(d, cand)):
            return os.path.join(d, cand)
    return None


def check_metrics_numpy(f, job, layers, ops, data_dir, n_check):
    split, n_img = f.attrs["metrics_split"], int(f.attrs["metrics_images"])
    prefix = "train" if split == "val" else "t10k"
    ip, lp = find_idx(data_dir, f"{prefix}-images-idx3-ubyte"), find_idx(data_dir, f"{prefix}-labels-idx1-ubyte")
    if not ip or not lp:
        print(f"  SKIPPED numpy forward pass (no MNIST in {data_dir})")
        return
    # val = the first images of the training file (the job's data.validation of them)
    imgs = read_idx(ip)[:n_img].astype(np.float64) / 255.0
    labels = read_idx(lp)[:n_img]
    h, w, c = job["target"]["input"]
    imgs = imgs.reshape(n_img, h, w, c)
    acc_file = f["metrics/accuracy"][:n_check]
    loss_file = f["metrics/loss"][:n_check]
    worst_acc, worst_loss = 0.0, 0.0
    for k in range(n_check):
        wts = [(f[f"weights/layer{i + 1}/kernel"][k].astype(np.float64), f[f"weights/layer{i + 1}/bias"][k].astype(np.float64))
               for i in range(len(layers))]
        p = forward(ops, wts, imgs)
        acc = float(np.mean(p.argmax(axis=1) == labels))
        loss = float(np.mean(-np.log(p[np.arange(n_img), labels] + 1e-30)))
        worst_acc = max(worst_acc, abs(acc - acc_file[k]))
        worst_loss = max(worst_loss, abs(loss - loss_file[k]) / max(1.0, abs(loss)))
    # float32 (C) vs float64 (numpy) may flip an argmax of a near-tie: allow one image in 100
    check(worst_acc <= max(1.0 / n_img, 0.01) and worst_loss < 1e-3,
          f"numpy forward pass of {n_check} networks on {n_img} {split} images reproduces /metrics "
          f"(accuracy within {worst_acc:.4f}, loss within {worst_loss:.1e} rel.)")


def check_set(path, count=None, ckpt=None, data_dir=None, n_check=4):
    with h5py.File(path, "r") as f:
        a = f.attrs
        check(a["format"] == "hypertrain-samples" and isinstance(a["format"], str), "format is the str 'hypertrain-samples'")
        check(a["format_version"] == 1 and a["format_version"].dtype == np.int32, "format_version is int32 1")
        types = {"count": np.int64, "seed": np.uint64, "step": np.int64, "train_seed": np.uint64, "z_dim": np.int32,
                 "n_weights": np.int64, "gauge_fixed": np.int32, "metrics_images": np.int32}
        bad = [k for k, t in types.items() if k not in a or a[k].dtype != t]
        check(not bad, f"numeric attributes with their documented types ({', '.join(types)})" + (f"; bad: {bad}" if bad else ""))
        strs = ["checkpoint", "checkpoint_sha256", "job", "target_architecture", "batch_norm", "metrics_split", "created_by"]
        bad = [k for k in strs if k not in a or not isinstance(a[k], str)]
        check(not bad, f"string attributes ({', '.join(strs)})" + (f"; bad: {bad}" if bad else ""))
        job = json.loads(a["job"])
        layers, ops = target_layers(job)
        n = int(a["count"])
        check(count is None or n == count, f"count {n}" + (f" (expected {count})" if count is not None else ""))
        check(a["batch_norm"] == "evaluation" and a["gauge_fixed"] == 1, "batch norm in evaluation mode, gauge-fixed")
        if ckpt:
            with open(ckpt, "rb") as c:
                sha = hashlib.sha256(c.read()).hexdigest()
            check(a["checkpoint_sha256"] == sha, "checkpoint_sha256 is the SHA-256 of the checkpoint file")
        z = f["z"]
        check(z.shape == (n, job["z_dim"]) and z.dtype == np.float32 and z.chunks is not None,
              f"/z {z.shape} float32, chunked {z.chunks}")
        zz = z[...]
        check(zz.min() >= -1.0 and zz.max() < 1.0 and abs(float(zz.mean())) < 0.1, f"z in [-1, 1) (mean {zz.mean():.3f})")
        shapes = expected_shapes(layers, n)
        ok = all(name in f and f[name].shape == shp and f[name].dtype == np.float32 and f[name].chunks is not None
                 for name, shp in shapes.items())
        check(ok, "weights: " + ", ".join(f"/{k} {v}" for k, v in shapes.items()))
        check(sorted(f["weights"].keys()) == sorted(f"layer{i + 1}" for i in range(len(layers))),
              f"/weights holds exactly layer1..layer{len(layers)}")
        g = f["weights/layer1"].attrs
        check(g["type"] in ("conv", "fc") and int(g["filters"]) == layers[0][3] and int(g["fan_in"]) == layers[0][4]
              and int(g["flat_offset"]) == 0, "layer attributes type, filters, fan_in, flat_offset")
        total = sum(f2 * (fi + 1) for (_, _, _, f2, fi) in layers)
        check(int(a["n_weights"]) == total, f"n_weights {int(a['n_weights'])} = sum of layer sizes {total}")
        # gauge fixing: RMS over (weights, bias) of each filter of layers 1..m-1 is 1
        # (the 1e-8 terms of the scale make a filter of raw RMS r end at r / (sqrt(r^2 + 1e-8) + 1e-8),
        # a little below 1 for tiny r: the median must be 1, no filter above 1)
        m = min(n, 64)
        rms_all = []
        for i in range(len(layers) - 1):
            kern = f[f"weights/layer{i + 1}/kernel"][:m].astype(np.float64).reshape(m, -1, layers[i][3])
            bias = f[f"weights/layer{i + 1}/bias"][:m].astype(np.float64)
            rms_all.append(np.sqrt((np.sum(kern ** 2, axis=1) + bias ** 2) / (layers[i][4] + 1)).ravel())
        rms_all = np.concatenate(rms_all) if rms_all else np.ones(1)
        med = float(np.median(np.abs(rms_all - 1.0)))
        lastb = f[f"weights/layer{len(layers)}/bias"][:m].astype(np.float64)
        check(med < 1e-4 and float(rms_all.max()) < 1.0 + 1e-5 and float(np.max(np.abs(lastb.mean(axis=1)))) < 1e-5,
              f"gauge-fixed: filter RMS 1 (median |rms - 1| {med:.1e}, max rms {rms_all.max():.6f}), "
              f"logits' biases mean 0")
        if a["metrics_split"] != "none":
            acc, loss = f["metrics/accuracy"], f["metrics/loss"]
            check(acc.shape == (n,) and acc.dtype == np.float64 and loss.shape == (n,) and loss.dtype == np.float64
                  and f["metrics"].attrs["split"] == a["metrics_split"] and int(f["metrics"].attrs["images"]) == int(a["metrics_images"]),
                  f"/metrics/accuracy and /metrics/loss ({n},) float64, split {a['metrics_split']}, {int(a['metrics_images'])} images")
            av = acc[...]
            check(np.all((av >= 0) & (av <= 1)) and np.all(np.isfinite(loss[...])), "accuracies in [0, 1], finite losses")
            if data_dir:
                check_metrics_numpy(f, job, layers, ops, data_dir, min(n_check, n))
        else:
            check("metrics" not in f, "no /metrics group (metrics none)")


def corrupt(kind, src, dst):
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        if kind == "missing-bias":
            del f["weights/layer2/bias"]
        elif kind == "bad-shape":
            k = f["weights/layer1/kernel"]
            shp = k.shape
            del f["weights/layer1/kernel"]
            f.create_dataset("weights/layer1/kernel", shape=(shp[0],) + tuple(shp[1:-1]) + (shp[-1] + 1,), dtype="f4")
        elif kind == "float64-z":
            z = f["z"][...]
            del f["z"]
            f.create_dataset("z", data=z.astype(np.float64))
        elif kind == "version2":
            f.attrs["format_version"] = np.int32(2)
        elif kind == "wrong-format":
            f.attrs["format"] = "something-else"
        elif kind == "altered-arch":
            f.attrs["target_architecture"] = f.attrs["target_architecture"].replace("fc", "fc-x", 1)
        elif kind == "extra-layer":
            f.copy("weights/layer1", "weights/layer9")
        elif kind == "no-job":
            del f.attrs["job"]
        else:
            sys.exit(f"unknown corruption {kind}")


def main(argv):
    if len(argv) >= 2 and argv[1] == "--corrupt":
        corrupt(argv[2], argv[3], argv[4])
        return 0
    path, count, ckpt, data_dir, n_check = None, None, None, None, 4
    i = 1
    while i < len(argv):
        if argv[i] == "--count": count = int(argv[i + 1]); i += 2
        elif argv[i] == "--checkpoint": ckpt = argv[i + 1]; i += 2
        elif argv[i] == "--data": data_dir = argv[i + 1]; i += 2
        elif argv[i] == "--nets": n_check = int(argv[i + 1]); i += 2
        else: path = argv[i]; i += 1
    check_set(path, count, ckpt, data_dir, n_check)
    print(f"check_samples: {'OK' if not FAILS else f'{len(FAILS)} FAILED'}")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
