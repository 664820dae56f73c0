#!/usr/bin/env python3
"""Function-space diversity from `hyperanalyze diversity` result files.

usage: analysis/plot_diversity.py RESULT.h5 [RESULT2.h5 ...] [--labels A,B,...] [-o OUT.png]
(a) Fort et al. (2019)'s diversity plot: for every pair of networks, the fraction of images on
which they disagree divided by their mean error, against that error; the generated networks and
the deep ensemble (when the result has one) in different colours. 0 = identical predictions; 2 =
the two never err on the same image. (b) histogram of the pairs' symmetrized KL divergence.
"""
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import uncert_layouts as ul  # noqa: E402
import resultfile  # noqa: E402


def main(argv):
    files, out, labels = ul.parse_args(argv, __doc__, "diversity.png")
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    c, kls = 0, []
    for j, path in enumerate(files):
        r = resultfile.load(path, "diversity")
        for which in ul.SETS:
            if f"{which}/disagreement" not in r.data:
                continue
            name = ul.label(r, which, labels, j)
            pe, nd = r.data[f"{which}/pair_error"], r.data[f"{which}/norm_disagreement"]
            ok = np.isfinite(nd)
            ax[0].scatter(pe[ok], nd[ok], s=10, alpha=0.6, color=f"C{c}",
                          label=f"{name}: {len(pe)} pairs, mean {np.nanmean(nd):.2f}")
            kls.append((r.data[f"{which}/kl_sym"], name, f"C{c}"))
            c += 1
    bins = np.linspace(0, max(float(k.max()) for k, _, _ in kls) * 1.001 + 1e-12, 40)   # shared by the sets
    for kl, name, col in kls:
        ax[1].hist(kl, bins=bins, histtype="step", color=col, label=f"{name}: mean {kl.mean():.3f}")
    ax[0].axhline(2.0, color="grey", ls=":", label="upper bound (errors never shared)")
    ax[0].axhline(0.0, color="grey", ls="--", lw=0.8)
    ax[0].set_xlabel("pair error (e_i + e_j) / 2")
    ax[0].set_ylabel("disagreement / pair error")
    ax[0].set_title("(a) diversity vs error (Fort et al. 2019)", fontsize=10)
    ax[0].legend(fontsize=7)
    ax[1].set_xlabel("symmetrized KL (nats), per pair")
    ax[1].set_ylabel("pairs")
    ax[1].set_title("(b) function-space distance between members", fontsize=10)
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    ul.save(fig, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
