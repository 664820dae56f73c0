#!/usr/bin/env python3
"""Ensemble metrics against ensemble size, and reliability diagrams, from `hyperanalyze ensemble`.

usage: analysis/plot_ensemble.py RESULT.h5 [-o OUT.png]
(a) accuracy of majority vote and mean probability vs size (mean and std over the K ensembles,
log2 size axis), with the mean single-network accuracy; (b) NLL, Brier score and ECE vs size;
(c) reliability diagram (accuracy against confidence per bin) for size 1 and the full size.
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
    out = argv[argv.index("-o") + 1] if "-o" in argv else "ensemble.png"
    with resultfile.open(path, "ensemble") as f:  # checked: one-line errors
        sizes = f["sizes"][...]
        cur = {k: f[f"curve/{k}"][...] for k in f["curve"]}
        rel_acc, rel_conf, rel_cnt = f["reliability/accuracy"][...], f["reliability/confidence"][...], f["reliability/count"][...]
        a = dict(f.attrs)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for key, label in (("majority_acc", "majority vote"), ("mean_prob_acc", "mean probability")):
        m, s = cur[key].mean(1), cur[key].std(1)
        ax[0].errorbar(sizes, m, yerr=s, marker="o", capsize=3, label=label)
    ax[0].axhline(a["single_accuracy_mean"], color="grey", ls="--", label="single networks (mean)")
    ax[0].set_xscale("log", base=2)
    ax[0].set_xlabel("ensemble size")
    ax[0].set_ylabel(f"accuracy ({int(a['images'])} {a['split']} images)")
    ax[0].set_title(f"(a) {int(a['k'])} ensembles of up to {int(a['m'])} networks", fontsize=10)
    ax[0].legend(fontsize=8)
    for key, label in (("nll", "NLL"), ("brier", "Brier"), ("ece", "ECE")):
        ax[1].errorbar(sizes, cur[key].mean(1), yerr=cur[key].std(1), marker="o", capsize=3, label=label)
    ax[1].set_xscale("log", base=2)
    ax[1].set_yscale("log")
    ax[1].set_xlabel("ensemble size")
    ax[1].set_title("(b) calibration of the mean probability", fontsize=10)
    ax[1].legend(fontsize=8)
    ax[2].plot([0, 1], [0, 1], color="grey", ls=":")
    for si, label in ((0, "single network"), (len(sizes) - 1, f"ensemble of {sizes[-1]}")):
        ok = rel_cnt[si] > 0
        ax[2].plot(rel_conf[si][ok], rel_acc[si][ok], marker="o", label=label)
    ax[2].set_xlabel("confidence")
    ax[2].set_ylabel("accuracy")
    ax[2].set_title("(c) reliability diagram", fontsize=10)
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
