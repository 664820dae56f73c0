#!/usr/bin/env python3
"""Scatter plots of generated weights in PCA space (the paper's Figs. 6, 9-15) beside their null
comparisons, from `hyperanalyze pca`.

usage: analysis/plot_pca.py RESULT.h5 [-o OUT.png] [--components K] [--labels GEN,DEEP,GAUSS]

One row per pair (i, j), i < j <= K (default K = 3: pairs (1,2), (1,3), (2,3)) of the generated
set's principal components; one column per set, on the SAME axes (the generated set's components
and mean; the same limits in every panel of a row): the generated networks (coloured by accuracy
when the set stored metrics), the deep ensemble (when pca ran with --baseline) and the Gaussian
with the generated set's mean and covariance. Axes are labelled with the explained variance (% of
the generated set's total variance per component); each panel's title gives the set's excess
kurtosis along both axes (0 for a Gaussian). Legends and titles use labels ("generated (step N)",
"deep ensemble", "Gaussian, same mean and covariance", or --labels), never file paths. A bad or
foreign result file, a bad option or an unwritable output: one line, exit status 1 or 2.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import figs_layouts as fl  # noqa: E402
import resultfile  # noqa: E402
import matplotlib  # noqa: E402
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def excess_kurtosis(x):
    x = x - x.mean()
    m2 = (x * x).mean()
    return float((x ** 4).mean() / (m2 * m2) - 3.0) if m2 > 0 else float("nan")


def main(argv):
    files, out, opts = fl.parse_args(argv, __doc__, "pca.png", valued=("--components", "--labels"))
    if len(files) != 1:
        fl.fail("one pca result file expected", 2)
    path = files[0]
    r = resultfile.load(path, "pca")  # checked: one-line errors
    P, ratio = r.data["projections"], r.data["explained_variance_ratio"]
    n, k = P.shape
    if len(ratio) != k:
        fl.fail(f"result file '{path}': /explained_variance_ratio has {len(ratio)} entries but /projections {k} columns")
    sets = [("generated", P, f"generated (step {int(r.attrs['step'])})")]
    if "baseline/projections" in r.data:
        sets.append(("baseline", r.data["baseline/projections"], "deep ensemble"))
    if "gaussian/projections" in r.data:
        sets.append(("gaussian", r.data["gaussian/projections"], "Gaussian, same mean and covariance"))
    for name, X, _ in sets[1:]:
        if X.shape[1] != k:
            fl.fail(f"result file '{path}': /{name}/projections has {X.shape[1]} columns but /projections {k}")
    labels = fl.labels_option(opts, len(sets))
    if labels:
        sets = [(nm, X, lab) for (nm, X, _), lab in zip(sets, labels)]
    K = min(k, fl.int_option(opts, "--components", 3, 2))
    if K < 2:
        fl.fail(f"result file '{path}' has {k} component: the scatter plots need 2 (hyperanalyze pca --components 2 "
                "or more)")
    acc = r.data.get("accuracy")
    if acc is not None and len(acc) != n:
        fl.fail(f"result file '{path}': /accuracy has {len(acc)} entries but /projections {n} rows")
    pairs = [(i, j) for i in range(K) for j in range(i + 1, K)]
    fig, axes = plt.subplots(len(pairs), len(sets), figsize=(3.6 * len(sets) + 0.8, 3.3 * len(pairs)), squeeze=False)
    axis = [f"PC{c + 1} ({100 * ratio[c]:.1f} %)" for c in range(k)]
    sc = None
    for row, (i, j) in enumerate(pairs):
        allx = np.concatenate([X[:, j] for _, X, _ in sets])
        ally = np.concatenate([X[:, i] for _, X, _ in sets])
        pad = lambda v: (v.min() - 0.05 * np.ptp(v) - 1e-12, v.max() + 0.05 * np.ptp(v) + 1e-12)  # noqa: E731
        for col, (name, X, lab) in enumerate(sets):
            ax = axes[row, col]
            if name == "generated" and acc is not None:
                sc = ax.scatter(X[:, j], X[:, i], s=3, c=acc, cmap="viridis", linewidths=0)
            else:
                ax.scatter(X[:, j], X[:, i], s=3 if len(X) > 200 else 12, color=f"C{col}", linewidths=0)
            ax.set_xlim(*pad(allx))
            ax.set_ylim(*pad(ally))
            ax.set_xlabel(axis[j], fontsize=8)
            ax.set_ylabel(axis[i], fontsize=8)
            ax.tick_params(labelsize=6)
            ax.set_title(f"{lab}\n{len(X)} {'draws' if name == 'gaussian' else 'networks'}, excess kurtosis {excess_kurtosis(X[:, j]):.2f} / "
                         f"{excess_kurtosis(X[:, i]):.2f}", fontsize=8)
    a = r.attrs
    fig.suptitle(f"{a['what']}: {int(a['networks'])} generated networks, {int(a['dim'])} dimensions, on the generated "
                 f"set's principal components (step {int(a['step'])})", fontsize=10)
    fig.tight_layout()
    if sc is not None:
        fig.colorbar(sc, ax=list(axes[:, 0]), label="accuracy", shrink=0.8, location="left")
    fl.save(fig, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
