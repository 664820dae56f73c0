#!/usr/bin/env python3
"""Image grids of generated filter slices (the paper's Fig. 3), from one or more
`hyperanalyze filters` result files: one panel per file, its samples tiled in a square grid
(5 x 5 for the default 25), grey scale shared by the panel's samples and symmetric about 0.

usage: analysis/plot_filters.py RESULT.h5 [RESULT2.h5 ...] [-o OUT.png]
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resultfile  # noqa: E402
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def mosaic(slices):
    s, h, w = slices.shape
    cols = math.ceil(math.sqrt(s))
    rows = math.ceil(s / cols)
    img = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for k in range(s):
        r, c = divmod(k, cols)
        img[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = slices[k]
    return img


def main(argv):
    args = argv[1:]
    if not args or args[0] in ("-h", "--help"):
        sys.exit(__doc__)
    out = "filters.png"
    if "-o" in args:
        i = args.index("-o"); out = args[i + 1]; del args[i:i + 2]
    fig, axes = plt.subplots(1, len(args), figsize=(4 * len(args), 4.4), squeeze=False)
    cmap = plt.get_cmap("gray").copy()
    cmap.set_bad("white")
    for j, path in enumerate(args):
        with resultfile.open(path, "filters") as f:  # checked: one-line errors
            sl = f["slices"][...]
            a = dict(f.attrs)
        lim = float(np.abs(sl).max()) or 1.0
        ax = axes[0, j]
        ax.imshow(mosaic(sl), cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(f"({chr(97 + j)}) layer {int(a['layer'])}, filter {int(a['filter'])}, channel "
                     f"{int(a['channel'])}: {sl.shape[0]} samples", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
