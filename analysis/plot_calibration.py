#!/usr/bin/env python3
"""Temperature scaling from `hyperanalyze calibrate` result files.

usage: analysis/plot_calibration.py RESULT.h5 [RESULT2.h5 ...] [--labels A,B,...] [-o OUT.png]
(a) test ECE and (b) test NLL against ensemble size, before (T = 1, dashed) and after temperature
scaling fitted on validation (solid), one colour per set (generated networks, deep ensemble);
(c) the fitted temperature; (d) reliability diagram of the largest ensemble of each set, before
and after, and (e) its bin counts (how many test images each point of (d) rests on).
"""
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import uncert_layouts as ul  # noqa: E402
import resultfile  # noqa: E402


def main(argv):
    files, out, labels = ul.parse_args(argv, __doc__, "calibration.png")
    fig, ax = plt.subplots(1, 5, figsize=(22, 4.3))
    c = 0
    for j, path in enumerate(files):
        r = resultfile.load(path, "calibrate")
        edges = r.data["reliability_edges"]
        mid = 0.5 * (edges[1:] + edges[:-1])
        width = edges[1] - edges[0]
        for which in ul.SETS:
            if f"{which}/sizes" not in r.data:
                continue
            name = ul.label(r, which, labels, j)
            sizes = r.data[f"{which}/sizes"]
            for k, q in enumerate(("ece", "nll")):
                v = r.data[f"{which}/test/{q}"]
                ax[k].plot(sizes, v[0], ls="--", marker="s", color=f"C{c}", label=f"{name}: T = 1")
                ax[k].plot(sizes, v[1], ls="-", marker="o", color=f"C{c}", label=f"{name}: fitted T")
            ax[2].plot(sizes, r.data[f"{which}/temperature"], marker="o", color=f"C{c}", label=name)
            acc, cnt = r.data[f"{which}/reliability/accuracy"], r.data[f"{which}/reliability/count"]
            conf = r.data[f"{which}/reliability/confidence"]
            for k, ls in ((0, "--"), (1, "-")):
                ok = cnt[k, -1] > 0
                ax[3].plot(conf[k, -1][ok], acc[k, -1][ok], ls=ls, marker="o", color=f"C{c}",
                           label=f"{name} ({sizes[-1]}): {'T = 1' if k == 0 else 'fitted T'}")
                ax[4].bar(mid + (k - 0.5) * width / 2 + c * width / 8, cnt[k, -1], width=width / 2.5,
                          color=f"C{c}", alpha=0.4 if k == 0 else 0.9,
                          label=f"{name}: {'T = 1' if k == 0 else 'fitted T'}")
            c += 1
    for k, t in enumerate(("ECE (15 bins), test", "NLL (nats), test", "fitted temperature T")):
        ax[k].set_xscale("log", base=2)
        ax[k].set_xlabel("ensemble size")
        ax[k].set_ylabel(t)
        ax[k].set_title(f"({'abc'[k]}) {t}", fontsize=10)
        ax[k].legend(fontsize=6)
    ax[2].axhline(1.0, color="grey", ls=":")
    ax[3].plot([0, 1], [0, 1], color="grey", ls=":")
    ax[3].set_xlabel("mean confidence of the bin")
    ax[3].set_ylabel("accuracy of the bin")
    ax[3].set_title("(d) reliability, largest ensemble", fontsize=10)
    ax[3].legend(fontsize=6)
    ax[4].set_yscale("log")
    ax[4].set_xlabel("confidence bin")
    ax[4].set_ylabel("test images in the bin")
    ax[4].set_title("(e) bin counts of (d)", fontsize=10)
    ax[4].legend(fontsize=6)
    fig.tight_layout()
    ul.save(fig, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
