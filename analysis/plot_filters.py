#!/usr/bin/env python3
"""Image grids of generated filter slices (the paper's Fig. 3).

usage: analysis/plot_filters.py RESULT.h5 [RESULT2.h5 ...] [-o OUT.png]
       analysis/plot_filters.py --diversity FILTERDIV.h5 [--layers 1,2] [-o OUT.png]

From `hyperanalyze filters` results: one panel per file, its samples tiled in a square grid (5 x 5
for the default 25), grey scale shared by the panel's samples and symmetric about 0.

--diversity, from a `hyperanalyze filterdiv` result: one row per layer (default every layer in
the file): (a) the least diverse filter (the paper's "low-diversity filter" panel) and (b) the most
diverse one, each as the grid of its copies in the first S networks (at the input channel where
the filter is largest), and (c) every filter's diversity against the next layer's weight norm on
its channel, with their Pearson and Spearman correlations (recomputed here from the arrays).
A bad or foreign result file, a bad option or an unwritable output: one line, exit status 1 or 2.
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import figs_layouts as fl  # noqa: E402
import resultfile  # noqa: E402
import matplotlib  # noqa: E402
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def mosaic(slices):
    s, h, w = slices.shape
    cols = math.ceil(math.sqrt(s))
    rows = math.ceil(s / cols)
    img = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for k in range(s):
        r, c = divmod(k, cols)
        img[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = slices[k]
    return img


def grey():
    cmap = plt.get_cmap("gray").copy()
    cmap.set_bad("white")
    return cmap


def show_grid(ax, sl, title):
    lim = float(np.abs(sl).max()) or 1.0
    ax.imshow(mosaic(sl), cmap=grey(), vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def slices_plot(files, out):
    fig, axes = plt.subplots(1, len(files), figsize=(4 * len(files), 4.4), squeeze=False)
    for j, path in enumerate(files):
        with resultfile.open(path, "filters") as f:  # checked: one-line errors
            sl = f["slices"][...]
            a = dict(f.attrs)
        show_grid(axes[0, j], sl, f"({chr(97 + j)}) layer {int(a['layer'])}, filter {int(a['filter'])}, channel "
                                  f"{int(a['channel'])}: {sl.shape[0]} samples")
    fig.tight_layout()
    fl.save(fig, out)


def ranks(x):
    """mean ranks (ties share their mean rank), as filters_core.c"""
    x = np.asarray(x)
    return np.array([(x < v).sum() + ((x == v).sum() + 1) / 2.0 for v in x])


def corr(x, y):
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def diversity_plot(path, out, layers_opt):
    r = resultfile.load(path, "filterdiv")
    nl = int(r.attrs["layers"])
    for l in range(1, nl + 1):
        if f"layer{l}/diversity" not in r.data:
            fl.fail(f"result file '{path}': missing /layer{l} (its attribute layers = {nl})")
    layers = list(range(1, nl + 1))
    if layers_opt:
        try:
            layers = [int(v) for v in layers_opt.split(",")]
        except ValueError:
            layers = [0]
        if any(l < 1 or l > nl for l in layers):
            fl.fail(f"--layers {layers_opt}: the file has layers 1..{nl}", 2)
    fig, axes = plt.subplots(len(layers), 3, figsize=(13, 4.3 * len(layers)), squeeze=False)
    for row, l in enumerate(layers):
        g = f"layer{l}/"
        div, nn, chsq = r.data[g + "diversity"], r.data[g + "next_norm"], r.data[g + "channel_msq"]
        if len(chsq) != len(div):
            fl.fail(f"result file '{path}': /{g}channel_msq has {len(chsq)} rows but /{g}diversity {len(div)}")
        lo, hi = int(np.argmin(div)), int(np.argmax(div))
        for col, (which, fi, word) in enumerate((("least", lo, "least diverse"), ("most", hi, "most diverse"))):
            sl = r.data[g + which + "/slices"]
            ch = int(np.argmax(chsq[fi]))
            show_grid(axes[row, col], sl, f"({chr(97 + 3 * row + col)}) layer {l}, {word} filter {fi} (channel {ch}):\n"
                                          f"diversity {div[fi]:.3f}, next-layer norm {nn[fi]:.3g}, "
                                          f"{sl.shape[0]} networks")
        ax = axes[row, 2]
        ax.scatter(div, nn, s=18, color="C0", label="filters")
        ax.scatter([div[lo]], [nn[lo]], s=60, facecolors="none", edgecolors="C3", label=f"least diverse ({lo})")
        ax.scatter([div[hi]], [nn[hi]], s=60, facecolors="none", edgecolors="C2", label=f"most diverse ({hi})")
        ax.set_xlabel("filter diversity Σ‖x−x̄‖²/Σ‖x‖² (0: identical)")
        ax.set_ylabel(f"layer {l + 1} weight norm on the channel")
        ax.set_title(f"({chr(97 + 3 * row + 2)}) layer {l}: {len(div)} filters, Pearson {corr(div, nn):.2f}, "
                     f"Spearman {corr(ranks(div), ranks(nn)):.2f}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"filter diversity over {int(r.attrs['networks'])} generated networks (step {int(r.attrs['step'])})",
                 fontsize=10)
    fig.tight_layout()
    fl.save(fig, out)


def main(argv):
    files, out, opts = fl.parse_args(argv, __doc__, "filters.png", flags=("--diversity",), valued=("--layers",))
    if "--diversity" in opts:
        if len(files) != 1:
            fl.fail("--diversity plots one filterdiv result file", 2)
        diversity_plot(files[0], out, opts.get("--layers"))
    else:
        if "--layers" in opts:
            fl.fail("--layers goes with --diversity", 2)
        slices_plot(files, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
