#!/usr/bin/env python3
"""Plots a sweep summary (the CSV of `hyperanalyze sweep --csv`) against lambda (log axis):
validation accuracy of single generated networks (mean, with +-1 std band) and of the majority-vote
and mean-probability ensembles on the left, the entropy estimate on the right.

    python3 analysis/plot_sweep.py runs/lambda/summary.csv [-o runs/lambda/summary.png] [--title T]

Needs matplotlib (Debian: python3-matplotlib); uses the Agg backend, so no display is needed.
"""
import argparse
import csv
import sys

REQUIRED = ("lambda", "mean_acc", "std_acc", "majority_acc", "mean_prob_acc", "entropy")


def read_rows(path):
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise SystemExit(f"plot_sweep.py: error: {path}: no column(s) {', '.join(missing)} "
                                 "(expected the CSV of hyperanalyze sweep --csv)")
            rows = []
            for n, r in enumerate(reader, start=2):
                try:
                    rows.append({k: float(r[k]) for k in REQUIRED})
                except (TypeError, ValueError):
                    raise SystemExit(f"plot_sweep.py: error: {path}:{n}: a value of {', '.join(REQUIRED)} is not a number")
    except OSError as e:
        raise SystemExit(f"plot_sweep.py: error: cannot read {path}: {e.strerror}")
    if not rows:
        raise SystemExit(f"plot_sweep.py: error: {path} has no runs")
    if any(r["lambda"] <= 0 for r in rows):
        raise SystemExit(f"plot_sweep.py: error: {path}: lambda must be > 0 for a log axis")
    return sorted(rows, key=lambda r: r["lambda"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", help="summary CSV from hyperanalyze sweep --csv")
    ap.add_argument("-o", "--out", help="output image (default: the CSV's name with .png)")
    ap.add_argument("--title", help="figure title (default: the CSV's path)")
    a = ap.parse_args()
    rows = read_rows(a.csv)
    out = a.out or (a.csv[:-4] if a.csv.endswith(".csv") else a.csv) + ".png"

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lam = [r["lambda"] for r in rows]
    mean = [r["mean_acc"] for r in rows]
    std = [r["std_acc"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    ax1.fill_between(lam, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                     alpha=0.2, color="C0", label="single network ±1 std")
    ax1.plot(lam, mean, "o-", color="C0", label="single network (mean)")
    ax1.plot(lam, [r["majority_acc"] for r in rows], "s--", color="C1", label="ensemble, majority vote")
    ax1.plot(lam, [r["mean_prob_acc"] for r in rows], "^:", color="C2", label="ensemble, mean probability")
    ax1.set_xscale("log")
    ax1.set_xlabel("λ (weight of the accuracy term)")
    ax1.set_ylabel("validation accuracy")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(loc="lower right", fontsize="small")
    ax2.plot(lam, [r["entropy"] for r in rows], "o-", color="C3")
    ax2.set_xscale("log")
    ax2.set_xlabel("λ (weight of the accuracy term)")
    ax2.set_ylabel("entropy estimate of the generated weights")
    ax2.grid(True, which="both", alpha=0.3)
    fig.suptitle(a.title or a.csv)
    fig.savefig(out, dpi=120)
    print(f"plot_sweep.py: wrote {out} ({len(rows)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
