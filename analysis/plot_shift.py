#!/usr/bin/env python3
"""Rotated MNIST from `hyperanalyze shift` result files.

usage: analysis/plot_shift.py RESULT.h5 [RESULT2.h5 ...] [--labels A,B,...] [-o OUT.png]
Accuracy, NLL and ECE against the rotation angle: the ensemble's mean probability (solid), single
networks (dashed: mean over networks, band: +- one std); one colour per set (generated networks,
deep ensemble). Bottom row: test image 0 at each angle, as the networks saw it.
"""
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import uncert_layouts as ul  # noqa: E402
import resultfile  # noqa: E402

SCORES = (("accuracy", "accuracy"), ("nll", "NLL (nats)"), ("ece", "ECE (15 bins)"))


def main(argv):
    files, out, labels = ul.parse_args(argv, __doc__, "shift.png")
    results = [resultfile.load(p, "shift") for p in files]
    ex = results[0].data["examples"][..., 0]
    fig = plt.figure(figsize=(14, 6))
    outer = fig.add_gridspec(2, 1, height_ratios=[4, 1])
    axes = [fig.add_subplot(g) for g in outer[0].subgridspec(1, 3)]
    strip = outer[1].subgridspec(1, len(ex))
    c = 0
    for j, r in enumerate(results):
        ang = r.data["angles"]
        for which in ul.SETS:
            if f"{which}/ensemble/accuracy" not in r.data:
                continue
            name = ul.label(r, which, labels, j)
            m = int(r.attrs["members"])
            for k, (s, title) in enumerate(SCORES):
                mu, sd = r.data[f"{which}/single/{s}_mean"], r.data[f"{which}/single/{s}_std"]
                axes[k].plot(ang, r.data[f"{which}/ensemble/{s}"], marker="o", color=f"C{c}",
                             label=f"{name}: ensemble of {m}")
                axes[k].plot(ang, mu, ls="--", color=f"C{c}", label=f"{name}: single network")
                axes[k].fill_between(ang, mu - sd, mu + sd, color=f"C{c}", alpha=0.15)
            c += 1
    for k, (s, title) in enumerate(SCORES):
        axes[k].set_xlabel("rotation (degrees, counterclockwise)")
        axes[k].set_ylabel(title)
        axes[k].set_title(f"({'abc'[k]}) {title} on rotated MNIST test images", fontsize=10)
    axes[0].legend(fontsize=7)
    ang0 = results[0].data["angles"]
    for k in range(len(ex)):
        a = fig.add_subplot(strip[0, k])
        a.imshow(ex[k], cmap="gray", vmin=0, vmax=1)
        a.set_xticks([])
        a.set_yticks([])
        a.set_title(f"{ang0[k]:g}", fontsize=7)
    fig.tight_layout()
    ul.save(fig, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
