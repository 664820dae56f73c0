#!/usr/bin/env python3
"""Fig. 8 from a `hyperanalyze adversarial` result file: for each attack line, the fraction of the
attacked images fooled at a perturbation <= eps (the CDF of the smallest fooling eps), untargeted
and targeted side by side, and the median smallest eps of each line on stdout.

usage: analysis/plot_adversarial.py RESULT.h5 [-o OUT.png] [--labels GENERATED,DEEP]

Lines (one colour per population: the generated networks, and the deep ensemble when the file
has one): dashed the source network (attacked white-box), dash-dot one other network (transfer),
solid the ensemble's majority vote (transfer from the source), dotted the ensemble attacked
white-box. An image never fooled on the grid counts as eps = inf, so a CDF can stay below 1.
--labels names the populations in the legend (default "hypernetwork,deep ensemble").
Errors (a bad file, an unwritable OUT.png) end with one line and exit status 1.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resultfile  # noqa: E402
import numpy as np  # noqa: E402

LINES = [("source", "--", "source network (white-box)"),
         ("other", "-.", "one other network (transfer)"),
         ("ensemble_transfer", "-", "ensemble, majority vote (transfer)"),
         ("ensemble_whitebox", ":", "ensemble, majority vote (white-box)")]
MODES = ["untargeted", "targeted"]
PROG = os.path.basename(sys.argv[0])


def die(msg):
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    sys.exit(1)


def parse(argv):
    args, out, labels = argv[1:], "adversarial.png", ["hypernetwork", "deep ensemble"]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0 if args else 2)
    for opt in ("-o", "--labels"):
        if opt in args:
            i = args.index(opt)
            if i + 1 >= len(args):
                die(f"{opt} needs a value")
            if opt == "-o":
                out = args[i + 1]
            else:
                labels = args[i + 1].split(",")
                if len(labels) != 2 or not all(labels):
                    die(f"--labels: expected two names separated by a comma, got '{args[i + 1]}'")
            del args[i:i + 2]
    if len(args) != 1 or args[0].startswith("-"):
        die(f"one result file expected, got {args}")
    return args[0], out, labels


def cdf(eps_min, grid):
    """Fraction of the attacked images (eps_min not NaN) whose smallest fooling eps <= each grid eps."""
    v = eps_min[~np.isnan(eps_min)]
    if len(v) == 0:
        return np.full(len(grid), np.nan), 0
    return np.array([(v <= e + 1e-12).mean() for e in grid]), len(v)


def median(eps_min):
    v = np.sort(eps_min[~np.isnan(eps_min)])
    return np.nan if len(v) == 0 else float(np.median(v))


def main(argv):
    path, out, labels = parse(argv)
    r = resultfile.load(path, "adversarial")   # checked: one-line errors
    d, a = r.data, r.attrs
    grid = d["eps"]
    pops = [("generated", labels[0])] + ([("deep", labels[1])] if "deep/attacked" in d else [])
    for p, _ in pops:
        for m in MODES:
            for line, _, _ in LINES:
                name = f"{p}/{m}/{line}"
                if name not in d:
                    die(f"result file '{path}': missing dataset /{name}")
                if len(d[name]) != len(d["labels"]):
                    die(f"result file '{path}': /{name} has {len(d[name])} entries, /labels {len(d['labels'])}")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    print("population,mode,line,attacked,median_eps,median_eps_x255")
    for ax, m in zip(axes, MODES):
        for j, (p, plabel) in enumerate(pops):
            n_att = int(np.sum(d[f"{p}/attacked"]))
            for line, ls, llabel in LINES:
                e = d[f"{p}/{m}/{line}"]
                y, n = cdf(e, grid)
                ax.step(grid * 255, y, where="post", ls=ls, color=f"C{j}", label=f"{plabel} ({n_att} images): {llabel}")
                med = median(e)
                print(f"{p},{m},{line},{n},{med:.6f},{med * 255:.2f}")
        ax.set_title(f"{m} fast gradient sign ({'prediction ≠ label' if m == 'untargeted' else 'prediction = target'})",
                     fontsize=10)
        ax.set_xlabel("ε (× 1/255 of the dynamic range)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"fraction of the attacked images fooled at ≤ ε (of {a['images']})")
    axes[1].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"adversarial examples, ensembles of {a['members']}, "
                 f"{'clipped to [0, 1]' if a['clip'] else 'not clipped'}", fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=120)
    except (OSError, ValueError) as e:
        die(f"cannot write '{out}': {e}")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
