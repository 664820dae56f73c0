#!/usr/bin/env python3
"""Independent numpy checks of the result files of hyperanalyze diversity, shift and calibrate
(tests/t_uncert.sh). Each recomputes what the file holds from the sample sets' weights with the
float64 numpy forward pass of tests/check_samples.py, and checks the provenance attributes.

usage: check_uncert.py KIND RESULT.h5 SAMPLES.h5 BASELINE.h5 DATA_DIR
Prints one summary line; exit status 1 (with the failed assertion) on any difference.
"""
import hashlib
import json
import sys

import h5py
import numpy as np

from check_samples import conv_same, find_idx, maxpool_same, read_idx, target_layers


def log_softmax_forward(ops, weights, x):
    """check_samples.forward up to the logits, then log-softmax (no log of an underflowed 0)."""
    for kind, arg in ops:
        if kind == "conv":
            x = conv_same(x, *weights[arg])
        elif kind == "fc":
            x = x.reshape(x.shape[0], -1).dot(weights[arg][0]) + weights[arg][1]
        elif kind == "relu":
            x = np.maximum(x, 0)
        elif kind == "maxpool":
            x = maxpool_same(x, arg)
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def log_probs(set_path, M, x):
    """(M, n, C) float64 log-probabilities of networks 0..M-1 of a set on images x (n, h, w, c)."""
    with h5py.File(set_path, "r") as s:
        job = json.loads(s.attrs["job"])
        layers, ops = target_layers(job)
        out = []
        for k in range(M):
            w = [(s[f"weights/layer{i + 1}/kernel"][k].astype(np.float64),
                  s[f"weights/layer{i + 1}/bias"][k].astype(np.float64)) for i in range(len(layers))]
            out.append(log_softmax_forward(ops, w, x))
    return np.stack(out)


def images(data, split, n):
    prefix = "train" if split == "val" else "t10k"
    x = read_idx(find_idx(data, f"{prefix}-images-idx3-ubyte"))[:n].astype(np.float64) / 255.0
    y = read_idx(find_idx(data, f"{prefix}-labels-idx1-ubyte"))[:n].astype(np.int64)
    return x.reshape(n, 28, 28, 1), y


def softmax_t(lp, T):
    z = lp / T
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def scores(p, y, bins=15):
    """accuracy, nll, ece of a probability table (n, C), as documented (docs/analysis.md)."""
    n = len(y)
    pred = p.argmax(1)
    conf = p.max(1)
    acc = float((pred == y).mean())
    nll = float(-np.log(p[np.arange(n), y] + 1e-30).mean())
    b = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for k in range(bins):
        m = b == k
        if m.any():
            ece += m.sum() / n * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return acc, nll, ece


def provenance(f, kind, samples, baseline):
    a = f.attrs
    assert a["command"] == f"hyperanalyze {kind}", a["command"]
    assert a["tool_version"] == "0.1.0", a["tool_version"]
    cl = a["command_line"]
    assert cl.startswith(f"hyperanalyze {kind} ") and samples in cl and "--baseline" in cl, cl
    for role, path in (("samples", samples), ("baseline", baseline)):
        want = hashlib.sha256(open(path, "rb").read()).hexdigest()
        assert a[role] == path and a[f"{role}_sha256"] == want, (role, a[f"{role}_sha256"], want)
    n = 0

    def visit(name, obj):
        nonlocal n
        if isinstance(obj, h5py.Dataset):
            assert "axes" in obj.attrs and "meaning" in obj.attrs, f"/{name} lacks axes/meaning"
            assert len(obj.attrs["axes"]) > 0 and len(obj.attrs["meaning"]) > 10, name
            n += 1
    f.visititems(visit)
    return n


def rotate(img, deg):
    """Independent bilinear rotation (counterclockwise as displayed, about the centre, zero fill)."""
    h, w = img.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    t = np.deg2rad(deg)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    sx, sy = cx + np.cos(t) * dx - np.sin(t) * dy, cy + np.sin(t) * dx + np.cos(t) * dy
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = sx - x0, sy - y0
    pad = np.pad(img.astype(np.float64), 2)

    def at(yi, xi):
        ok = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        return np.where(ok, pad[np.clip(yi, -2, h + 1) + 2, np.clip(xi, -2, w + 1) + 2], 0.0)
    return ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) +
            fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)))


def check_diversity(res, samples, baseline, data):
    with h5py.File(res, "r") as f:
        nds = provenance(f, "diversity", samples, baseline)
        M, n, split = int(f.attrs["members"]), int(f.attrs["images"]), f.attrs["split"]
        x, y = images(data, split, n)
        worst = {}
        for g, path in (("generated", samples), ("baseline", baseline)):
            lp = log_probs(path, M, x)
            err = 1 - (lp.argmax(2) == y).mean(1)
            assert np.abs(f[g + "/error"][...] - err).max() <= 1.0 / n + 1e-12, (f[g + "/error"][...], err)
            pi, pj = f[g + "/pair_i"][...], f[g + "/pair_j"][...]
            assert len(pi) == M * (M - 1) // 2 and (pi < pj).all()
            dis = np.array([(lp[i].argmax(1) != lp[j].argmax(1)).mean() for i, j in zip(pi, pj)])
            p = np.exp(lp)
            kl = np.array([(p[i] * (lp[i] - lp[j])).sum(1).mean() for i, j in zip(pi, pj)])
            klr = np.array([(p[j] * (lp[j] - lp[i])).sum(1).mean() for i, j in zip(pi, pj)])
            d_dis = np.abs(f[g + "/disagreement"][...] - dis).max()
            d_kl = (np.abs(f[g + "/kl_ij"][...] - kl) / np.maximum(1, kl)).max()
            d_klr = (np.abs(f[g + "/kl_ji"][...] - klr) / np.maximum(1, klr)).max()
            assert d_dis <= 2.0 / n and d_kl < 1e-4 and d_klr < 1e-4, (d_dis, d_kl, d_klr)
            pe = f[g + "/pair_error"][...]
            nd = f[g + "/norm_disagreement"][...]
            ok = pe > 0
            assert np.allclose(nd[ok], f[g + "/disagreement"][...][ok] / pe[ok], rtol=1e-12)
            assert np.allclose(f[g + "/kl_sym"][...], 0.5 * (f[g + "/kl_ij"][...] + f[g + "/kl_ji"][...]), rtol=1e-12)
            worst[g] = (d_dis, max(d_kl, d_klr), float(dis.mean()), float(kl.mean()))
    return (f"{nds} datasets with axes/meaning, SHA-256 of both inputs; vs numpy: " +
            "; ".join(f"{g}: disagreement within {w[0]:.4f} (mean {w[2]:.3f}), KL within {w[1]:.1e} rel (mean {w[3]:.3f})"
                      for g, w in worst.items()))


def check_shift(res, samples, baseline, data):
    with h5py.File(res, "r") as f:
        nds = provenance(f, "shift", samples, baseline)
        M, n = int(f.attrs["members"]), int(f.attrs["images"])
        angles = f["angles"][...]
        ex = f["examples"][...][..., 0]
        x, y = images(data, "test", n)
        img0 = x[0, :, :, 0].astype(np.float32)
        for k, a in enumerate(angles):
            if a % 90 == 0:
                assert np.array_equal(ex[k], np.rot90(img0, int(a // 90))), f"{a} degrees is not np.rot90"
            d = np.abs(ex[k] - rotate(img0, a)).max()
            assert d < 1e-6, (a, d)
        worst = 0.0
        for g, path in (("generated", samples), ("baseline", baseline)):
            for k, a in enumerate(angles):
                if a % 90:
                    continue
                xr = np.rot90(x, int(a // 90), axes=(1, 2))
                lp = log_probs(path, M, xr)
                p = np.exp(lp)
                ens = scores(p.mean(0), y)
                single = np.array([scores(p[m], y) for m in range(M)])
                got_e = [f[f"{g}/ensemble/{s}"][k] for s in ("accuracy", "nll", "ece")]
                got_s = [f[f"{g}/single/{s}_mean"][k] for s in ("accuracy", "nll", "ece")]
                got_sd = f[f"{g}/single/accuracy_std"][k]
                for got, want in zip(got_e + got_s, list(ens) + list(single.mean(0))):
                    worst = max(worst, abs(got - want))
                    assert abs(got - want) <= 2.0 / n, (g, a, got_e, ens, got_s, single.mean(0))
                assert abs(got_sd - single[:, 0].std()) <= 2.0 / n
    return (f"{nds} datasets with axes/meaning; /examples equal np.rot90 at multiples of 90 degrees and an "
            f"independent bilinear rotation at every angle; scores at 0/90/180 degrees equal numpy (within {worst:.1e})")


def check_calibrate(res, samples, baseline, data):
    with h5py.File(res, "r") as f:
        nds = provenance(f, "calibrate", samples, baseline)
        M, nv, nt = int(f.attrs["members"]), int(f.attrs["val_images"]), int(f.attrs["test_images"])
        xv, yv = images(data, "val", nv)
        xt, yt = images(data, "test", nt)
        worst = 0.0
        msg = []
        for g, path in (("generated", samples), ("baseline", baseline)):
            lv, lt = log_probs(path, M, xv), log_probs(path, M, xt)
            sizes, T = f[g + "/sizes"][...], f[g + "/temperature"][...]
            vn = f[g + "/val_nll"][...]
            cnt = f[g + "/reliability/count"][...]
            assert (cnt.sum(-1) == nt).all(), cnt.sum(-1)
            for si, s in enumerate(sizes):
                nll_v = lambda t: -np.log(softmax_t(lv[:s], t).mean(0)[np.arange(nv), yv] + 1e-30).mean()
                assert abs(nll_v(T[si]) - vn[1, si]) < 1e-4 * max(1, vn[1, si]), (nll_v(T[si]), vn[1, si])
                assert vn[1, si] <= vn[0, si] + 1e-9, vn
                grid = np.clip(T[si] * np.exp(np.linspace(-0.3, 0.3, 31)), 0.05, 20.0)   # the search range
                assert min(nll_v(t) for t in grid) >= vn[1, si] - 1e-4 * max(1, vn[1, si]), (g, s, T[si])
                for k, t in enumerate((1.0, T[si])):
                    want = scores(softmax_t(lt[:s], t).mean(0), yt)
                    got = [f[f"{g}/test/{q}"][k, si] for q in ("accuracy", "nll", "ece")]
                    for a, b in zip(got, want):
                        worst = max(worst, abs(a - b))
                        assert abs(a - b) <= 2.0 / nt, (g, s, k, got, want)
            msg.append(f"{g}: T {np.round(T, 3).tolist()}")
    return (f"{nds} datasets with axes/meaning; fitted T minimal on a numpy grid, test scores before/after "
            f"equal numpy (within {worst:.1e}); " + "; ".join(msg))


def main(argv):
    if len(argv) != 6:
        sys.exit(__doc__)
    kind = argv[1]
    fn = {"diversity": check_diversity, "shift": check_shift, "calibrate": check_calibrate}[kind]
    print(fn(*argv[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
