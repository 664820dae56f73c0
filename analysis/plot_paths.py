#!/usr/bin/env python3
"""Accuracy along paths between generated networks (the paper's Fig. 7) from `hyperanalyze paths`.

usage: analysis/plot_paths.py RESULT.h5 [-o OUT.png] [--pairs N]
Solid lines: interpolated paths G(t z1 + (1-t) z2); dashed lines: direct paths
t G(z1) + (1-t) G(z2); one colour per pair (the first N pairs, default 3).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resultfile  # noqa: E402
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    path = argv[1]
    out = argv[argv.index("-o") + 1] if "-o" in argv else "paths.png"
    with resultfile.open(path, "paths") as f:  # checked: one-line errors
        t = f["t"][...]
        ai, ad = f["interpolated/accuracy"][...], f["direct/accuracy"][...]
        a = dict(f.attrs)
    n = min(ai.shape[0], int(argv[argv.index("--pairs") + 1]) if "--pairs" in argv else 3)
    fig, ax = plt.subplots(figsize=(6, 4))
    for p in range(n):
        ax.plot(t, ai[p], color=f"C{p}", label=f"pair {p}: interpolated")
        ax.plot(t, ad[p], color=f"C{p}", ls="--", label=f"pair {p}: direct")
    ax.set_xlabel("t")
    ax.set_ylabel(f"accuracy ({int(a['images'])} {a['split']} images)")
    ax.set_title(f"paths between generated networks (step {int(a['step'])})", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
