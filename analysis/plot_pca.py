#!/usr/bin/env python3
"""Scatter plots of generated weights in PCA space (the paper's Figs. 6, 9-15) from `hyperanalyze pca`.

usage: analysis/plot_pca.py RESULT.h5 [-o OUT.png] [--components K]
The (i, j) panel plots principal component i against component j (i < j) for every network;
points are coloured by accuracy when the sample set stored metrics. The diagonal shows each
component's histogram and explained-variance ratio.
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
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    path = argv[1]
    out = argv[argv.index("-o") + 1] if "-o" in argv else "pca.png"
    with resultfile.open(path, "pca") as f:  # checked: one-line errors
        P = f["projections"][...]
        ratio = f["explained_variance_ratio"][...]
        acc = f["accuracy"][...] if "accuracy" in f else None
        a = dict(f.attrs)
    k = P.shape[1]
    if "--components" in argv:
        k = min(k, int(argv[argv.index("--components") + 1]))
    fig, ax = plt.subplots(k, k, figsize=(2.2 * k, 2.2 * k), squeeze=False)
    for i in range(k):
        for j in range(k):
            axx = ax[i][j]
            if i == j:
                axx.hist(P[:, i], bins=40, color="C0")
                axx.set_title(f"PC{i + 1}: {100 * ratio[i]:.1f}%", fontsize=8)
            elif i < j:
                sc = axx.scatter(P[:, j], P[:, i], s=2, c=acc if acc is not None else "C0", cmap="viridis", linewidths=0)
            else:
                axx.axis("off")
            axx.tick_params(labelsize=6)
    fig.suptitle(f"{a['what']}: {int(a['networks'])} networks, {int(a['dim'])} dimensions (step {int(a['step'])})", fontsize=10)
    if acc is not None and k > 1:
        fig.colorbar(sc, ax=ax[k - 1][0], orientation="horizontal", label="accuracy")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
