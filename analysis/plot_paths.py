#!/usr/bin/env python3
"""Accuracy along paths between generated networks (the paper's Fig. 7) from `hyperanalyze paths`.

usage: analysis/plot_paths.py RESULT.h5 [-o OUT.png] [--pairs N]

(a) The paper's figure: the first N pairs (default 3), one colour per pair; solid: the
interpolated path G(t z1 + (1-t) z2) (through the hypernetwork, "interpolated in z"); dashed: the
direct path t G(z1) + (1-t) G(z2) (the straight line between the two gauge-fixed networks,
"direct in weights"). Both meet at t = 0 (G(z2)) and t = 1 (G(z1)).
(b) Every pair of the file: mean accuracy of each path over the pairs, with a band from the
lowest to the highest pair.
A bad or foreign result file, a bad option or an unwritable output: one line, exit status 1 or 2.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import figs_layouts as fl  # noqa: E402
import resultfile  # noqa: E402
import matplotlib  # noqa: E402
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

INTERP = "interpolated in z: G(t z₁ + (1−t) z₂)"
DIRECT = "direct in weights: t G(z₁) + (1−t) G(z₂)"


def main(argv):
    files, out, opts = fl.parse_args(argv, __doc__, "paths.png", valued=("--pairs",))
    if len(files) != 1:
        fl.fail("one paths result file expected", 2)
    path = files[0]
    r = resultfile.load(path, "paths")  # checked: one-line errors
    t, ai, ad = r.data["t"], r.data["interpolated/accuracy"], r.data["direct/accuracy"]
    if ai.shape != ad.shape or ai.shape[1] != len(t) or ai.shape[0] < 1:
        fl.fail(f"result file '{path}': /interpolated/accuracy {ai.shape} and /direct/accuracy {ad.shape} must both "
                f"be (pairs, {len(t)})")
    a = r.attrs
    n = min(ai.shape[0], fl.int_option(opts, "--pairs", 3, 1))
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.4))
    for p in range(n):
        ax[0].plot(t, ai[p], color=f"C{p}", lw=1.6)
        ax[0].plot(t, ad[p], color=f"C{p}", ls="--", lw=1.6)
    handles = [Line2D([], [], color="k", lw=1.6, label=INTERP), Line2D([], [], color="k", ls="--", lw=1.6, label=DIRECT)]
    handles += [Line2D([], [], color=f"C{p}", lw=4, label=f"pair {p + 1}") for p in range(n)]
    ax[0].legend(handles=handles, fontsize=7, loc="best")
    ax[0].set_title(f"(a) {n} pairs of endpoints (z₁, z₂)", fontsize=10)
    for arr, ls, lab, col in ((ai, "-", INTERP, "C0"), (ad, "--", DIRECT, "C3")):
        ax[1].plot(t, arr.mean(0), color=col, ls=ls, lw=1.8, label=f"{lab}: mean")
        ax[1].fill_between(t, arr.min(0), arr.max(0), color=col, alpha=0.15, label="lowest to highest pair")
    ax[1].legend(fontsize=7, loc="best")
    ax[1].set_title(f"(b) all {ai.shape[0]} pairs", fontsize=10)
    for x in ax:
        x.set_xlabel("t   (t = 0: G(z₂), t = 1: G(z₁))")
        x.set_ylabel(f"accuracy ({int(a['images'])} {a['split']} images)")
    fig.suptitle(f"accuracy along paths between generated networks (step {int(a['step'])})", fontsize=10)
    fig.tight_layout()
    fl.save(fig, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
