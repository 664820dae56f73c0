#!/usr/bin/env python3
"""Plot the toy problem's generated curve (paper Fig. 1) from a run directory.

usage: analysis/plot_toy.py RUN_DIR [OUT.png]
Reads RUN_DIR/toy_curve.csv and RUN_DIR/job.json; draws the Gaussian mixture density as the
background, the 400 generated points coloured by z (a), and the density along the path with the
nearest-neighbour distance (b).
"""
import csv
import json
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    run = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else f"{run}/toy_curve.png"
    job = json.load(open(f"{run}/job.json"))
    rows = list(csv.DictReader(open(f"{run}/toy_curve.csv")))
    z = np.array([float(r["z"]) for r in rows])
    x = np.array([float(r["x"]) for r in rows])
    y = np.array([float(r["y"]) for r in rows])
    logp = np.array([float(r["log_density"]) for r in rows])
    nn = np.array([float(r["nn_distance"]) for r in rows])
    means = np.array(job["toy"]["means"])
    s = job["toy"]["sigma"]
    g = np.linspace(-3, 3, 300)
    gx, gy = np.meshgrid(g, g)
    dens = sum(np.exp(-((gx - m[0]) ** 2 + (gy - m[1]) ** 2) / (2 * s * s)) for m in means)
    dens /= len(means) * 2 * np.pi * s * s
    fig, ax = plt.subplots(1, 2, figsize=(11, 5))
    ax[0].imshow(dens, extent=(-3, 3, -3, 3), origin="lower", cmap="Greys")
    ax[0].scatter(x, y, c=z, cmap="viridis", s=6)
    ax[0].set_title("(a) generated points, coloured by z")
    ax[1].plot(z, np.exp(logp), "k-", label="mixture density")
    ax[1].set_xlabel("z")
    ax[1].set_ylabel("density")
    ax2 = ax[1].twinx()
    ax2.plot(z, nn, "r--", label="nearest-neighbour distance")
    ax2.set_ylabel("distance to nearest neighbour")
    ax[1].set_title("(b) density and spacing along the path")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(out)


if __name__ == "__main__":
    main()
