#!/usr/bin/env python3
"""Success probability of targeted fast gradient sign attacks vs perturbation size (the paper's
Fig. 8), from one or more `hyperanalyze adversarial` result files (e.g. the hypernetwork's sample
set and a `hyperanalyze baseline` deep ensemble).

usage: analysis/plot_adversarial.py RESULT.h5 [RESULT2.h5 ...] [--labels A,B,...] [-o OUT.png]
One colour per file. Dashed: the single source network (mean over the sources); solid: the
ensemble (transfer attack crafted on the source network, as in the paper); dotted: the ensemble
attacked white-box (crafted on its own mean-probability loss), when the file has it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resultfile  # noqa: E402
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(argv):
    args = argv[1:]
    if not args or args[0] in ("-h", "--help"):
        sys.exit(__doc__)
    out, labels = "adversarial.png", None
    if "-o" in args:
        i = args.index("-o"); out = args[i + 1]; del args[i:i + 2]
    if "--labels" in args:
        i = args.index("--labels"); labels = args[i + 1].split(","); del args[i:i + 2]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for j, path in enumerate(args):
        with resultfile.open(path, "adversarial") as f:  # checked: one-line errors
            eps = f["eps"][...] * 255
            single = f["transfer/single_success"][...].mean(0)
            ens = f["transfer/ensemble_success"][...].mean(0)
            wb = f["whitebox/ensemble_success"][...] if "whitebox" in f else None
            m, n = int(f.attrs["members"]), int(f.attrs["images"])
        name = labels[j] if labels and j < len(labels) else path
        c = f"C{j}"
        ax.plot(eps, single, ls="--", color=c, label=f"{name}: single network")
        ax.plot(eps, ens, ls="-", color=c, label=f"{name}: ensemble of {m} (transfer)")
        if wb is not None:
            ax.plot(eps, wb, ls=":", color=c, label=f"{name}: ensemble of {m} (white-box)")
    ax.set_xlabel("perturbation size ε (× 1/255 of the dynamic range)")
    ax.set_ylabel(f"success probability ({n} images)")
    ax.set_ylim(0, 1)
    ax.set_title("targeted fast gradient sign attacks", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
