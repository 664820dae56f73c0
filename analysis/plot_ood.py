#!/usr/bin/env python3
"""Out-of-distribution detection from one or more `hyperanalyze ood` result files (e.g. the
hypernetwork's sample set and a `hyperanalyze baseline` deep ensemble).

usage: analysis/plot_ood.py RESULT.h5 [RESULT2.h5 ...] [--labels A,B,...] [-o OUT.png]
(a) AUROC of predictive entropy (solid) and mutual information (dashed) against ensemble size,
one colour per file; (b) histograms of the full ensemble's mutual information for MNIST and the
outliers, per file.
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
    args = argv[1:]
    if not args or args[0] in ("-h", "--help"):
        sys.exit(__doc__)
    out, labels = "ood.png", None
    if "-o" in args:
        i = args.index("-o"); out = args[i + 1]; del args[i:i + 2]
    if "--labels" in args:
        i = args.index("--labels"); labels = args[i + 1].split(","); del args[i:i + 2]
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.3))
    for j, path in enumerate(args):
        with resultfile.open(path, "ood") as f:  # checked: one-line errors
            sizes = f["sizes"][...]
            ent, mi = f["auroc/entropy"][...], f["auroc/mutual_information"][...]
            s_mi, is_out = f["scores/mutual_information"][...], f["is_outlier"][...].astype(bool)
        name = labels[j] if labels and j < len(labels) else path
        c = f"C{j}"
        ax[0].plot(sizes, ent, marker="o", color=c, label=f"{name}: entropy")
        ax[0].plot(sizes, mi, marker="s", ls="--", color=c, label=f"{name}: mutual information")
        bins = np.linspace(0, max(float(s_mi.max()), 1e-6), 40)
        ax[1].hist(s_mi[~is_out], bins=bins, histtype="step", color=c, label=f"{name}: MNIST")
        ax[1].hist(s_mi[is_out], bins=bins, histtype="step", ls="--", color=c, label=f"{name}: outliers")
    ax[0].set_xscale("log", base=2)
    ax[0].set_xlabel("ensemble size")
    ax[0].set_ylabel("AUROC (outliers vs MNIST test)")
    ax[0].axhline(0.5, color="grey", ls=":")
    ax[0].set_title("(a) outlier detection", fontsize=10)
    ax[0].legend(fontsize=7)
    ax[1].set_xlabel("mutual information (nats), full ensemble")
    ax[1].set_ylabel("images")
    ax[1].set_title("(b) disagreement between members", fontsize=10)
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
