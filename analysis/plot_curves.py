#!/usr/bin/env python3
"""Plots training curves: one or more runs' metrics.jsonl against step, several runs on one figure.

    python3 analysis/plot_curves.py RUN_DIR[:LABEL] [RUN_DIR[:LABEL] ...] [-o curves.png]
                                    [--title T] [--smooth K]

Panels: from the training lines ("type": "train", every log_every steps) the total loss
L = λ·CE − Ĥ, the cross-entropy CE, the entropy estimate Ĥ of the training batch and the training
accuracy; from the validation lines ("type": "val", every val_every steps and at the end) the
accuracy of single generated networks (mean, with a ±1 std band) and of the majority-vote and
mean-probability ensembles, the mean NLL and the entropy estimate Ĥ of the validation networks.
Each run has one colour; LABEL names it in the legend (default: from the run's job.json, e.g.
"fashion-mnist seed 1 λ=1e3"; never a path). A run directory is the one hypertrain --out wrote
(job.json and metrics.jsonl). Runs of "task": "toy" have no accuracies and are refused.

A missing or malformed metrics.jsonl, a run without training lines, a bad argument or a figure
that cannot be written is an error: one line on stderr and exit status 1.
Needs matplotlib (Debian: python3-matplotlib); uses the Agg backend, so no display is needed.
"""
import argparse
import json
import math
import os
import sys

PROG = "plot_curves.py"
TRAIN_KEYS = ("step", "loss", "ce", "entropy", "acc")
VAL_KEYS = ("step", "mean_acc", "std_acc", "majority_acc", "mean_prob_acc", "mean_nll", "entropy")


def fail(msg):
    raise SystemExit(f"{PROG}: error: {msg}")


def split_arg(arg):
    """RUN_DIR[:LABEL] -> (dir, label or None). The directory is the longest prefix before a ':'
    that exists as a directory (so a label may hold ':' and so may a directory)."""
    if os.path.isdir(arg):
        return arg, None
    cuts = [i for i, c in enumerate(arg) if c == ":"]
    for i in reversed(cuts):
        if os.path.isdir(arg[:i]):
            label = arg[i + 1:]
            if not label.strip():
                fail(f"'{arg}': empty label after ':'")
            return arg[:i], label
    fail(f"'{arg}': no such run directory (expected RUN_DIR or RUN_DIR:LABEL, RUN_DIR holding metrics.jsonl)")


def number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def read_metrics(run):
    """Train and val rows of run/metrics.jsonl, sorted by step (a later line for the same step wins)."""
    path = os.path.join(run, "metrics.jsonl")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        fail(f"{path}: cannot read: {e.strerror}")
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text (expected JSON Lines written by hypertrain)")
    rows = {"train": {}, "val": {}}
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            fail(f"{path}:{n}: not JSON ({e.msg}): expected one JSON object per line")
        if not isinstance(obj, dict):
            fail(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
        kind = obj.get("type")
        if kind == "val" and "mean_acc" not in obj and "points" in obj:
            fail(f"{path}:{n}: a toy-task run (its validation lines have no accuracy); "
                 "plot_curves.py plots runs of task mnist")
        if kind not in rows:
            continue  # other line types: not plotted
        keys = TRAIN_KEYS if kind == "train" else VAL_KEYS
        for k in keys:
            if k not in obj:
                fail(f"{path}:{n}: {kind} line without \"{k}\"")
            if not number(obj[k]):
                fail(f"{path}:{n}: \"{k}\" is {json.dumps(obj[k])}, expected a finite number")
        rows[kind][int(obj["step"])] = obj
    if not rows["train"]:
        fail(f"{path}: no training lines (\"type\": \"train\"); has the run logged a step yet?")
    return {k: [v[s] for s in sorted(v)] for k, v in rows.items()}


def fmt_lambda(x):
    if x == 0:
        return "0"
    e = int(math.floor(math.log10(abs(x))))
    m = x / 10 ** e
    return f"{m:g}e{e}" if abs(m - round(m)) > 1e-9 or round(m) != 1 else f"1e{e}"


def default_label(run):
    """'<name> seed <seed> λ=<lambda>' from run/job.json."""
    path = os.path.join(run, "job.json")
    try:
        with open(path, encoding="utf-8") as f:
            job = json.load(f)
    except OSError as e:
        fail(f"{path}: cannot read ({e.strerror}): name the run as RUN_DIR:LABEL")
    except (json.JSONDecodeError, UnicodeDecodeError):
        fail(f"{path}: not a JSON job: name the run as RUN_DIR:LABEL")
    if not isinstance(job, dict) or not isinstance(job.get("name"), str):
        fail(f"{path}: no \"name\": name the run as RUN_DIR:LABEL")
    parts = [job["name"]]
    if number(job.get("seed")):
        parts.append(f"seed {int(job['seed'])}")
    if number(job.get("lambda")) and job["lambda"] > 0:
        parts.append(f"λ={fmt_lambda(job['lambda'])}")
    return " ".join(parts)


def smooth(values, k):
    """Trailing moving average over k points (k = 1: unchanged)."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= k:
            acc -= values[i - k]
        out.append(acc / min(i + 1, k))
    return out


def load_runs(args):
    runs = []
    for arg in args:
        run, label = split_arg(arg)
        metrics = read_metrics(run)
        runs.append({"label": label or default_label(run), "train": metrics["train"], "val": metrics["val"]})
    seen = {}
    for r in runs:  # identical default labels (the same job twice) stay distinguishable
        seen[r["label"]] = seen.get(r["label"], 0) + 1
        if seen[r["label"]] > 1:
            r["label"] += f" ({seen[r['label']]})"
    return runs


def plot(runs, out, title, k):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(2, 4, figsize=(18, 8), constrained_layout=True)
    ax = axes.ravel()
    train_panels = [("loss", "total loss  λ·CE − Ĥ"), ("ce", "cross-entropy CE (training)"),
                    ("entropy", "entropy estimate Ĥ (training batch)"), ("acc", "training accuracy")]
    for i, r in enumerate(runs):
        c = f"C{i % 10}"
        steps = [t["step"] for t in r["train"]]
        for a, (key, _) in zip(ax[:4], train_panels):
            a.plot(steps, smooth([t[key] for t in r["train"]], k), color=c, lw=1.2)
        if r["val"]:
            vs = [v["step"] for v in r["val"]]
            mean = [v["mean_acc"] for v in r["val"]]
            std = [v["std_acc"] for v in r["val"]]
            ax[4].fill_between(vs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                               color=c, alpha=0.15, lw=0)
            ax[4].plot(vs, mean, "o-", color=c, ms=3)
            ax[4].plot(vs, [v["majority_acc"] for v in r["val"]], "s--", color=c, ms=3)
            ax[4].plot(vs, [v["mean_prob_acc"] for v in r["val"]], "^:", color=c, ms=3)
            ax[5].plot(vs, [v["mean_nll"] for v in r["val"]], "o-", color=c, ms=3)
            ax[6].plot(vs, [v["entropy"] for v in r["val"]], "o-", color=c, ms=3)
    sm = f" (moving average of {k} log lines)" if k > 1 else ""
    for a, (_, name) in zip(ax[:4], train_panels):
        a.set_title(name + sm, fontsize="medium")
    ax[4].set_title("validation accuracy", fontsize="medium")
    ax[5].set_title("validation NLL (mean over networks)", fontsize="medium")
    ax[6].set_title("entropy estimate Ĥ (validation networks)", fontsize="medium")
    last = max(max(t["step"] for t in r["train"] + r["val"]) for r in runs)
    for a in ax[:7]:  # one step axis for every panel, so that the curves line up
        a.set_xlim(0, max(last, 1) * 1.02)
        a.set_xlabel("step")
        a.grid(True, alpha=0.3)
    # The last panel holds the legends: runs by colour, validation accuracies by line style.
    ax[7].axis("off")
    run_handles = [Line2D([], [], color=f"C{i % 10}", lw=2, label=r["label"]) for i, r in enumerate(runs)]
    style_handles = [Line2D([], [], color="k", marker="o", ms=3, ls="-", label="single network, mean ±1 std"),
                     Line2D([], [], color="k", marker="s", ms=3, ls="--", label="ensemble, majority vote"),
                     Line2D([], [], color="k", marker="^", ms=3, ls=":", label="ensemble, mean probability")]
    leg = ax[7].legend(handles=run_handles, title="run", loc="upper left", fontsize="small")
    ax[7].add_artist(leg)
    ax[7].legend(handles=style_handles, title="validation accuracy", loc="lower left", fontsize="small")
    if title:
        fig.suptitle(title)
    try:
        fig.savefig(out, dpi=110, format="png")
    except (OSError, ValueError) as e:
        fail(f"cannot write {out}: {getattr(e, 'strerror', None) or e}")
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="RUN_DIR[:LABEL]",
                    help="run directory (job.json, metrics.jsonl), optionally with a legend label")
    ap.add_argument("-o", "--out", default="curves.png", help="output PNG (default: curves.png)")
    ap.add_argument("--title", help="figure title (default: none)")
    ap.add_argument("--smooth", type=int, default=1, metavar="K",
                    help="moving average over K training log lines (default 1: raw)")
    a = ap.parse_args()
    if not a.out.lower().endswith(".png"):
        fail(f"-o {a.out}: expected a .png file name")
    if a.smooth < 1:
        fail(f"--smooth {a.smooth}: expected an integer >= 1")
    runs = load_runs(a.runs)
    plot(runs, a.out, a.title, a.smooth)
    n_val = sum(len(r["val"]) for r in runs)
    print(f"{PROG}: wrote {a.out} ({len(runs)} run(s): {', '.join(r['label'] for r in runs)}; "
          f"{sum(len(r['train']) for r in runs)} training and {n_val} validation points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
