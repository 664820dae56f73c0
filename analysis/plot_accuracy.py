#!/usr/bin/env python3
"""Histogram of per-network accuracies (the paper's Fig. 2) from `hyperanalyze accuracy` results.

usage: analysis/plot_accuracy.py RESULT.h5 [more RESULT.h5 ...] [-o OUT.png] [--bins B]
One panel per result file (e.g. lambda = 1e5 and 1e3 side by side), re-binned from /accuracy
(default: the stored /histogram), titled with the checkpoint step, split and mean accuracy.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resultfile  # noqa: E402
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def main(argv):
    files, out, bins = [], "accuracy.png", None
    i = 1
    while i < len(argv):
        if argv[i] == "-o": out = argv[i + 1]; i += 2
        elif argv[i] == "--bins": bins = int(argv[i + 1]); i += 2
        elif argv[i] in ("-h", "--help"): print(__doc__); return 0
        else: files.append(argv[i]); i += 1
    if not files:
        sys.exit(__doc__)
    fig, axes = plt.subplots(1, len(files), figsize=(5 * len(files), 4), squeeze=False)
    for ax, path, letter in zip(axes[0], files, "abcdefghij"):
        with resultfile.open(path, "accuracy") as f:  # checked: one-line errors
            acc = f["accuracy"][...]
            a = f.attrs
            if bins:
                ax.hist(acc, bins=bins, color="C0", edgecolor="white")
            else:
                edges, counts = f["histogram/edges"][...], f["histogram/counts"][...]
                ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="C0", edgecolor="white")
            ax.set_title(f"({letter}) step {int(a['step'])}: mean {a['mean']:.4f}, {len(acc)} networks", fontsize=10)
            ax.set_xlabel(f"accuracy on {int(a['images'])} {a['split']} images")
            ax.set_ylabel("networks")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
