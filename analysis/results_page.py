#!/usr/bin/env python3
"""Writes docs/results.md and its figures from the paper runs' directories (issue #14).

    python3 analysis/results_page.py [--root runs/paper] [--out docs/results.md] [--figures docs/figures]
                                     [--check]

Everything on the page is read from result files under ROOT (made by scripts/paper-runs.sh,
scripts/paper-evals.sh and the analyses of scripts/results.sh); nothing is typed in by hand, so the
page cannot hold a stale section: a result that does not exist yet is listed under "Not measured
yet" with the command that makes it. Every table and figure names the command that produced it.
--check: only report which results exist and which are missing (exit 0), write nothing.

A malformed result file (a missing dataset or attribute) is an error: one line on stderr, exit 1.
"""
import argparse
import datetime
import json
import math
import os
import subprocess
import sys

PROG = "results_page.py"
PAPER_ENSEMBLE = 0.9914  # the paper's Sec. 5: mean over 20 ensembles of 200, majority vote
PAPER_MNFG = 0.9928
RUNS = [  # name, λ, seed (as scripts/paper-runs.sh)
    ("l1e3-s1", 1e3, 1), ("l1e3-s2", 1e3, 2), ("l1e3-s3", 1e3, 3),
    ("l1e5-s1", 1e5, 1), ("l1e5-s2", 1e5, 2),
]
# chi-square quantiles (0.025, 0.975) for 1..4 degrees of freedom: the 95% interval of a standard
# deviation estimated from n = dof + 1 values is s·sqrt(dof / q975) .. s·sqrt(dof / q025)
CHI2_95 = {1: (0.000982, 5.024), 2: (0.0506, 7.378), 3: (0.216, 9.348), 4: (0.484, 11.143)}
# 97.5% quantiles of Student's t with df = seeds - 1 (two-sided 95% intervals)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}
STEPS = (13000, 11000)  # the final checkpoint, the original code's evaluation point (--steps)


def fail(msg):
    raise SystemExit(f"{PROG}: error: {msg}")


def lam_str(lam):
    return f"1e{int(round(math.log10(lam)))}"


def pct(x, nd=2):
    return f"{100.0 * x:.{nd}f}%"


def pm(mean, std, nd=2):
    """'99.03 ± 0.05' in percent."""
    return f"{100.0 * mean:.{nd}f} ± {100.0 * std:.{nd}f}"


def mean_std(xs):
    """Mean and sample standard deviation (n-1; 0 for one value)."""
    n = len(xs)
    m = sum(xs) / n
    if n < 2:
        return m, 0.0
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))


# ---------------------------------------------------------------------------------------------
# reading the runs


def read_jsonl(path):
    rows = []
    with open(path) as f:
        for ln, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                fail(f"{path}:{ln}: not JSON ({e.msg})")
    return rows


def read_run(root, name, lam, seed, steps):
    d = os.path.join(root, name)
    run = {"name": name, "lambda": lam, "seed": seed, "dir": d, "exists": os.path.isdir(d)}
    mpath = os.path.join(d, "metrics.jsonl")
    if not os.path.isfile(mpath):
        run["step"] = 0
        return run
    rows = read_jsonl(mpath)
    train = [r for r in rows if r.get("type") == "train"]
    val = {}
    for r in rows:  # a resumed run may repeat a step: the last line wins
        if r.get("type") == "val":
            val[int(r["step"])] = r
    run["val"] = val
    run["step"] = max([int(r["step"]) for r in train] + [0])
    run["train_seconds"] = train_seconds(train)
    job = os.path.join(d, "job.json")
    if os.path.isfile(job):
        with open(job) as f:
            j = json.load(f)
        if abs(float(j["lambda"]) - lam) > 1e-9 * lam or int(j["seed"]) != seed:
            fail(f"{job}: λ {j['lambda']} seed {j['seed']}, expected λ {lam:g} seed {seed} for run {name}")
    ens = {}
    for step in steps:
        p = os.path.join(d, "eval", f"step{step:05d}", "ensemble.h5")
        if os.path.isfile(p):
            ens[step] = read_ensemble(p)
    run["ensembles"] = ens
    return run


def train_seconds(train):
    """Training time from the steps/s of the log lines (log_every steps each), validation excluded."""
    t, prev = 0.0, 0
    for r in train:
        s, sps = int(r["step"]), float(r.get("steps_per_s", 0) or 0)
        if s > prev and sps > 0:
            t += (s - prev) / sps
        prev = s
    return t


def read_ensemble(path):
    import h5py
    import numpy as np
    try:
        with h5py.File(path, "r") as f:
            need = ["ensembles/majority_acc", "ensembles/mean_prob_acc", "ensembles/nll", "ensembles/ece",
                    "networks/accuracy", "sizes", "curve/majority_acc", "curve/mean_prob_acc"]
            for k in need:
                if k not in f:
                    fail(f"{path}: dataset /{k} missing (expected a `hyperanalyze ensemble` result)")
            a = f.attrs
            for k in ("k", "m", "split", "images", "step"):
                if k not in a:
                    fail(f"{path}: attribute {k} missing (expected a `hyperanalyze ensemble` result)")
            split = a["split"].decode() if isinstance(a["split"], bytes) else str(a["split"])
            return {
                "path": path, "k": int(a["k"]), "m": int(a["m"]), "split": split, "images": int(a["images"]),
                "step": int(a["step"]),
                "majority": np.asarray(f["ensembles/majority_acc"][...], dtype=float),
                "mean_prob": np.asarray(f["ensembles/mean_prob_acc"][...], dtype=float),
                "nll": np.asarray(f["ensembles/nll"][...], dtype=float),
                "ece": np.asarray(f["ensembles/ece"][...], dtype=float),
                "networks": np.asarray(f["networks/accuracy"][...], dtype=float),
                "sizes": np.asarray(f["sizes"][...]),
                "curve_majority": np.asarray(f["curve/majority_acc"][...], dtype=float),
                "curve_mean_prob": np.asarray(f["curve/mean_prob_acc"][...], dtype=float),
            }
    except OSError as e:
        fail(f"{path}: cannot read as HDF5 ({e})")


# ---------------------------------------------------------------------------------------------
# sections: each returns markdown lines, and appends (what, command) to `missing` when its inputs
# do not exist yet


def sec_runs(runs, root, missing, final):
    out = ["## The runs", "",
           "The paper's job (`jobs/mnist.json`: λ = 1e3; `jobs/mnist-lambda1e5.json`: λ = 1e5) at its own",
           "settings: 13,000 steps, noise batch 32, each network its own 32 training images, Adam lr 3e-4",
           "decaying by 0.99998 per step. Validation (200 fresh networks on the 5,000 validation images,",
           "the first 5,000 of the training file as in the original code) every 1,000 steps; checkpoints",
           "kept at 11,000 (the original code's evaluation point), 12,000 and 13,000.", "",
           "    scripts/paper-runs.sh " + root + "   # = for each run:",
           "    ./hypertrain JOB --set seed=S --set steps=13000 --set val_every=1000 --set checkpoint_every=1000 \\",
           "                     --set keep_checkpoints=3 --out " + root + "/RUN --resume", "",
           f"| run | λ | seed | steps | training time | validation @ {final:,}: mean single network ± std | majority vote (200) | mean probability (200) |",
           "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        if not r.get("val"):
            out.append(f"| {r['name']} | {lam_str(r['lambda'])} | {r['seed']} | {r['step']} | | not run yet | | |")
            continue
        v = r["val"].get(final)
        tt = f"{r['train_seconds'] / 60:.1f} min" if r["train_seconds"] else ""
        if v:
            out.append(f"| {r['name']} | {lam_str(r['lambda'])} | {r['seed']} | {r['step']} | {tt} | "
                       f"{pm(v['mean_acc'], v['std_acc'])} | {pct(v['majority_acc'])} | {pct(v['mean_prob_acc'])} |")
        else:
            out.append(f"| {r['name']} | {lam_str(r['lambda'])} | {r['seed']} | {r['step']} | {tt} | (running) | | |")
    out += ["", "Training time: from the runs' steps/s (validation excluded), 2 threads on this machine's",
            "2 cores, other work running beside some of them; docs/performance.md has the quiet-machine speed.",
            f"Source: `{root}/RUN/metrics.jsonl` (`\"type\": \"val\"` lines).", ""]
    if any(not r.get("val") or final not in r["val"] for r in runs):
        missing.append(("the training runs not finished yet", f"scripts/paper-runs.sh {root}"))
    return out


def sec_curves(runs, root, figdir, missing):
    out = []
    for lam in (1e3, 1e5):  # one figure per λ: the loss scales differ by 100
        done = [r for r in runs if r.get("val") and r["lambda"] == lam]
        if not done:
            continue
        png = os.path.join(figdir, f"curves_paper_l{lam_str(lam)}.png")
        args = [f"{r['dir']}:λ={lam_str(r['lambda'])} seed {r['seed']}" for r in done]
        run_script("plot_curves.py", [*args, "-o", png, "--smooth", "10"])
        shown = " ".join(f"'{a}'" for a in args)
        out += [f"    python3 analysis/plot_curves.py {shown} -o {png} --smooth 10", "",
                f"![training curves, λ = {lam_str(lam)}]({os.path.relpath(png, 'docs')})", ""]
    if not out:
        return []
    return ["## Training curves", "",
            "Top: the loss parts and training accuracy of every logged step (moving average over 10 log",
            "lines); bottom: validation every 1,000 steps (mean single network with its ±1 std band,",
            "majority vote and mean probability of 200 networks, NLL, entropy estimate of the 200).", ""] + out


def ensemble_rows(runs, lam, step):
    return [r for r in runs if r["lambda"] == lam and step in r.get("ensembles", {})]


def paired_steps(runs, steps):
    """The change of the majority vote of 200 between the two evaluated checkpoints, paired within
    each run (the same training run at two steps), per λ: mean ± std over seeds of the runs'
    differences."""
    final, early = steps
    parts = []
    for lam in (1e3, 1e5):
        d = [r["ensembles"][final]["majority"].mean() - r["ensembles"][early]["majority"].mean()
             for r in runs if r["lambda"] == lam and final in r.get("ensembles", {}) and early in r.get("ensembles", {})]
        if not d:
            continue
        m, sd = mean_std(d)
        parts.append(f"λ = {lam_str(lam)}: {100 * m:+.3f}" + (f" ± {100 * sd:.3f} points (mean ± std over {len(d)} seeds)"
                                                                 if len(d) > 1 else " points (one seed)"))
    if not parts:
        return []
    return [f"**Step {early:,} (the original code's evaluation point) against step {final:,}.** The majority vote of "
            f"200 changes from step {early:,} to {final:,}, paired within each run, by " + "; ".join(parts) + ".", ""]


def sec_ensembles(runs, root, missing, steps):
    out = ["## The paper's ensemble table: 20 ensembles of 200 networks, test set", "",
           "For every run and checkpoint, 4,000 networks are generated and split into 20 disjoint",
           "ensembles of 200; each ensemble votes by majority (the paper's rule) and, beside it, by mean",
           "probability; all on the 10,000 test images:", "",
           f"    scripts/paper-evals.sh {root}   # = for each run and step S in {' '.join(map(str, steps))}:",
           "    ./hypertrain sample --checkpoint RUN/ckpt_000S.h5 --count 4000 --out RUN/eval/stepS/samples.h5",
           "    ./hyperanalyze ensemble RUN/eval/stepS/samples.h5 --k 20 --m 200 --split test", "",
           "Per run: mean ± std over its 20 ensembles (and over its 4,000 single networks).", "",
           "| run | step | single network | majority vote of 200 | mean probability of 200 | NLL | ECE |",
           "|---|---|---|---|---|---|---|"]
    any_row = False
    for step in steps:
        for r in runs:
            e = r.get("ensembles", {}).get(step)
            if not e:
                continue
            any_row = True
            out.append(f"| {r['name']} | {step} | {pm(e['networks'].mean(), e['networks'].std(ddof=1))} | "
                       f"{pm(e['majority'].mean(), e['majority'].std(ddof=1), 3)} | "
                       f"{pm(e['mean_prob'].mean(), e['mean_prob'].std(ddof=1), 3)} | "
                       f"{e['nll'].mean():.4f} | {e['ece'].mean():.4f} |")
    if not any_row:
        out = out[:-2] + ["(no evaluation finished yet)", ""]
    out.append("")
    # pooled over seeds
    out += ["Over seeds: the mean of the runs' ensemble means ± the standard deviation of those means",
            "across seeds (training-to-training variation), and the mean within-run std over the 20",
            "ensembles (network-sampling variation).", "",
            "| λ | step | seeds | majority vote of 200 (± over seeds) | within-run std | mean probability of 200 (± over seeds) | single network |",
            "|---|---|---|---|---|---|---|"]
    pooled = {}
    for lam in (1e3, 1e5):
        for step in steps:
            rs = ensemble_rows(runs, lam, step)
            if not rs:
                continue
            mv = mean_std([r["ensembles"][step]["majority"].mean() for r in rs])
            mp = mean_std([r["ensembles"][step]["mean_prob"].mean() for r in rs])
            sn = mean_std([r["ensembles"][step]["networks"].mean() for r in rs])
            within = sum(r["ensembles"][step]["majority"].std(ddof=1) for r in rs) / len(rs)
            pooled[(lam, step)] = (mv, within, len(rs))
            if len(rs) > 1:
                cells = [pm(*mv, 3), f"{100 * within:.3f}", pm(*mp, 3), pm(*sn)]
            else:  # one seed: no spread over seeds to show
                cells = [f"{100 * mv[0]:.3f} (one seed)", f"{100 * within:.3f}", f"{100 * mp[0]:.3f}", f"{100 * sn[0]:.2f}"]
            out.append(f"| {lam_str(lam)} | {step} | {len(rs)} | " + " | ".join(cells) + " |")
    out.append("")
    # the statement against the paper, at each evaluated step
    for step in steps:
        if (1e3, step) not in pooled:
            continue
        (m, s_seed), within, n = pooled[(1e3, step)]
        gap = PAPER_ENSEMBLE - m
        txt = (f"**Against the paper, step {step:,}.** The paper reports 99.14% as the mean majority-vote accuracy "
               f"of 20 ensembles of 200 (its Sec. 5, \"validation set\"; MNFG 99.28%). Here, λ = 1e3: "
               + (f"{pm(m, s_seed, 3)}% (mean ± std over {n} seeds)" if n > 1 else f"{100 * m:.3f}% (one seed)")
               + " on the test set; the paper's "
               f"figure lies {100 * gap:+.3f} points from it")
        if n > 1 and s_seed > 0:
            txt += (f", {gap / s_seed:+.1f} seed-to-seed standard deviations (and {gap / within:+.1f} of the "
                    f"ensemble-to-ensemble std within a run): "
                    + ("within" if abs(gap) <= 2 * s_seed else "outside") + " two seed standard deviations")
            if n - 1 in CHI2_95:
                lo, hi = CHI2_95[n - 1]
                txt += (f"; but a standard deviation from {n} seeds is itself uncertain: its 95% interval is "
                        f"{100 * s_seed * math.sqrt((n - 1) / hi):.3f}–{100 * s_seed * math.sqrt((n - 1) / lo):.3f} points.")
            else:
                txt += "."
            if n - 1 in T975:
                t = T975[n - 1]
                ci, pi = t * s_seed / math.sqrt(n), t * s_seed * math.sqrt(1 + 1 / n)
                inside = lambda h: "inside" if abs(gap) <= h else "outside"
                txt += (f" The paper's figure is one training run, so the comparison that fits it is the 95% prediction "
                        f"interval of one more run of ours, m ± t·s·√(1 + 1/n) (Student t, {n - 1} degrees of freedom, "
                        f"run means assumed normal): {100 * (m - pi):.3f}–{100 * (m + pi):.3f}%; 99.14% lies "
                        f"{inside(pi)} it. The 95% confidence interval of our mean, m ± t·s/√n, is "
                        f"{100 * (m - ci):.3f}–{100 * (m + ci):.3f}% ({inside(ci)}).")
        else:
            txt += f" ({gap / within:+.1f} ensemble-to-ensemble standard deviations; one seed, so no seed-level uncertainty yet)."
        out += [txt, ""]
    out += paired_steps(runs, steps)
    if pooled:
        out += ["The paper gives no spread and one training run, so its own seed-to-seed variation is unknown;",
                "its \"validation set\" may be our validation split (the original loader's first 5,000",
                "training images) or the test set. The single-ensemble figure on our validation split is in",
                "the runs table above (one ensemble of 200 per run).", ""]
    if any(r.get("val") and steps[0] in r["val"] and len(r.get("ensembles", {})) < len(steps) for r in runs):
        missing.append(("the test-set ensembles of finished runs", f"scripts/paper-evals.sh {root}"))
    return out


def sec_fig2(runs, figdir, missing, final):
    sets = []
    for lam in (1e5, 1e3):
        for r in runs:
            if r["lambda"] == lam and final in r.get("ensembles", {}):
                sets.append((lam, r))
                break
    if not sets:
        missing.append((f"Fig. 2 (needs the step-{final:,} evaluations)", "scripts/paper-evals.sh"))
        return []
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    accs = [r["ensembles"][final]["networks"] for _, r in sets]
    lo = math.floor(min(a.min() for a in accs) * 200) / 200
    hi = math.ceil(max(a.max() for a in accs) * 200) / 200
    bins = np.arange(lo, hi + 1e-9, 0.001)
    fig, ax = plt.subplots(figsize=(7, 4))
    for (lam, r), a, c in zip(sets, accs, ("C1", "C0")):
        ax.hist(a, bins=bins, histtype="stepfilled", alpha=0.45, color=c,
                label=f"λ = {lam_str(lam)} (seed {r['seed']}): {len(a)} networks, mean {100 * a.mean():.2f}%")
        ax.hist(a, bins=bins, histtype="step", color=c)
    ax.set_xlabel("accuracy on the 10,000 test images")
    ax.set_ylabel("networks per 0.1-point bin")
    ax.set_title(f"Fig. 2: accuracy of single generated networks, step {final:,}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    png = os.path.join(figdir, "fig2_accuracy.png")
    fig.savefig(png, dpi=120)
    plt.close(fig)
    out = ["## Fig. 2: accuracy of single generated networks", "",
           f"The networks of each step-{final:,} evaluation above (`/networks/accuracy` of its",
           "`ensemble.h5`), λ = 1e5 and λ = 1e3 on the same axes:", "",
           f"![Fig. 2]({os.path.relpath(png, 'docs')})", "",
           "| λ | run | networks | mean | std | min | 1st percentile | median | max |",
           "|---|---|---|---|---|---|---|---|---|"]
    for (lam, r), a in zip(sets, accs):
        out.append(f"| {lam_str(lam)} | {r['name']} | {len(a)} | {pct(a.mean())} | {100 * a.std(ddof=1):.2f} | "
                   f"{pct(a.min())} | {pct(np.percentile(a, 1))} | {pct(np.median(a))} | {pct(a.max())} |")
    out.append("")
    if len(sets) < 2:
        missing.append(("Fig. 2 for λ = 1e5", "scripts/paper-runs.sh; scripts/paper-evals.sh"))
    return out


# ---------------------------------------------------------------------------------------------
# the analyses of scripts/results.sh (ROOT/analysis/NAME.h5 with its command in NAME.cmd)


def read_cmd(root, name):
    """The command line scripts/results.sh stored beside a result (ROOT/analysis/NAME.cmd)."""
    p = os.path.join(root, "analysis", f"{name}.cmd")
    return open(p).read().strip() if os.path.isfile(p) else "(command not recorded)"


def analysis_input(root, name, missing, what):
    """(h5py file, command) of ROOT/analysis/NAME.h5, or None (and a missing entry)."""
    import h5py
    path = os.path.join(root, "analysis", f"{name}.h5")
    if not os.path.isfile(path):
        missing.append((what, f"scripts/results.sh {root}"))
        return None, None, path
    cmd = read_cmd(root, name)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        fail(f"{path}: cannot read as HDF5 ({e})")
    if cmd == "(command not recorded)" and "command_line" in f.attrs:   # the file's own provenance
        cl = f.attrs["command_line"]
        cmd = "./" + (cl.decode() if isinstance(cl, bytes) else str(cl))
    return f, cmd, path


def need(f, path, key):
    if key not in f:
        fail(f"{path}: dataset /{key} missing")
    return f[key][...]


def run_script(script, args):
    """Runs analysis/SCRIPT quietly; its failure is the page's one-line error."""
    r = subprocess.run([sys.executable, f"analysis/{script}", *args], capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
        fail(f"analysis/{script} {' '.join(args)}: exit {r.returncode}: {last}")


def plot(script, inputs, png, *extra):
    run_script(script, [*inputs, "-o", png, *extra])
    return f"![{script[5:-3]}]({os.path.relpath(png, 'docs')})"


def sec_baseline(root, missing):
    import h5py
    path = os.path.join(root, "analysis", "baseline.h5")
    if not os.path.isfile(path):
        missing.append(("the deep-ensemble baseline (102 directly trained networks)", f"scripts/results.sh {root}"))
        return []
    cmd = read_cmd(root, "baseline")
    with h5py.File(path, "r") as f:
        n = f["z"].shape[0] if "z" in f else "?"
    return ["## The deep-ensemble baseline", "",
            f"    {cmd}", "",
            f"{n} copies of the target network trained directly (He init, Adam lr 1e-3, batch 32), each",
            "gauge-fixed like the generated networks and written as a sample set, so every command below",
            "evaluates it exactly as it evaluates generated networks. MNFG is not implemented; this",
            "ensemble stands in for the paper's second comparison.", ""]


def adversarial_rows(f, path):
    """The Fig. 8 table's rows of one adversarial result file: median smallest eps (1/255) and the
    fraction fooled at eps_max, per population, attack and line."""
    import numpy as np
    rows = []
    for pop, label in (("generated", "generated"), ("deep", "deep ensemble")):
        if f"{pop}/attacked" not in f:
            continue
        att = need(f, path, f"{pop}/attacked")
        for mode in ("untargeted", "targeted"):
            cells = []
            for line in ("source", "other", "ensemble_transfer", "ensemble_whitebox"):
                e = need(f, path, f"{pop}/{mode}/{line}")
                e = e[~np.isnan(e)]
                med = np.median(e) * 255 if len(e) else float("nan")
                fooled = np.mean(np.isfinite(e)) if len(e) else float("nan")
                cells.append(f"{med:.1f} ({100 * fooled:.0f}%)")
            rows.append(f"| {label} | {mode} | {int(np.sum(att))} | " + " | ".join(cells) + " |")
    return rows


ADV_HEADER = ["| networks | attack | attacked images | source | other network | ensemble (transfer) | ensemble (white-box) |",
              "|---|---|---|---|---|---|---|"]


def sec_adversarial(root, figdir, missing):
    """Fig. 8 on the test images (the issue's protocol) and on the validation images (the split the
    original code attacked); the first that exists carries the description and the figure."""
    results = []
    for name, what in (("adversarial-test", "Fig. 8, adversarial examples on test images"),
                       ("adversarial", "Fig. 8, adversarial examples on validation images")):
        f, cmd, path = analysis_input(root, name, missing, what)
        if f is not None:
            results.append((f, cmd, path))
    if not results:
        return []
    f, cmd, path = results[0]
    eps_max = float(f.attrs["eps_max"])
    out = ["## Fig. 8: adversarial examples (fast gradient sign)", "",
           f"    {cmd}", "",
           "The original code's protocol, image by image: a fresh source network and a fresh ensemble of",
           f"{int(f.attrs['members'])} for every one of {int(f.attrs['images'])} {f.attrs['split']} images; images the source gets wrong",
           "are skipped; the ensemble votes by majority; per image the smallest ε of the grid 0, 1/255, …",
           f"that fools (untargeted: any wrong class; targeted: a random other class), clipped to [0, 1]",
           f"{'(on)' if int(f.attrs['clip']) else '(off: the original variant)'}. Lines: the source itself",
           "(white-box, one network), one other network, the ensemble (transfer from the source) and a",
           "white-box attack on the ensemble's mean probability. Median ε in 1/255 units (inf: more than",
           f"half the images resist every ε ≤ {eps_max:.2f}) and the fraction fooled at ε = {eps_max:.2f}:", "",
           *ADV_HEADER, *adversarial_rows(f, path), "",
           plot("plot_adversarial.py", [path], os.path.join(figdir, "fig8_adversarial.png"),
                "--labels", "generated,deep ensemble"), ""]
    for g, cmd_g, path_g in results[1:]:
        out += [f"The same protocol on the first {int(g.attrs['images'])} {'validation' if g.attrs['split'] == 'val' else g.attrs['split']} images "
                f"(the paper, Sec. 5: “all images in the validation set”):", "",
                f"    {cmd_g}", "", *ADV_HEADER, *adversarial_rows(g, path_g), ""]
    for g, _, _ in results:
        g.close()
    return out


def sec_diversity(root, figdir, missing):
    f, cmd, path = analysis_input(root, "diversity", missing, "function-space diversity")
    if f is None:
        return []
    out = ["## Function-space diversity (beyond the paper)", "",
           f"    {cmd}", "",
           f"Every pair of {int(f.attrs['members'])} networks of each set on {int(f.attrs['images'])} {f.attrs['split']} images: disagreement",
           "(fraction of images with different predictions), symmetric KL of the predictive",
           "distributions, and disagreement divided by the pair's mean error (Fort et al.'s normalized",
           "diversity: 0 when two networks make the same mistakes, 2 when their mistakes never coincide and",
           "they agree wherever both are right).", "",
           "| set | single-network error | pairwise disagreement | symmetric KL | disagreement / error | ensemble error |",
           "|---|---|---|---|---|---|"]
    for g in ("generated", "baseline"):
        if g not in f:
            continue
        a = f[g].attrs
        out.append(f"| {a['label']} | {pct(a['error_mean'])} | {pct(a['disagreement_mean'])} | {a['kl_sym_mean']:.4f} | "
                   f"{a['norm_disagreement_mean']:.3f} | {pct(a['ensemble_error'])} |")
    f.close()
    out += ["", plot("plot_diversity.py", [path], os.path.join(figdir, "diversity.png")), ""]
    return out


def sec_shift(root, figdir, missing):
    f, cmd, path = analysis_input(root, "shift", missing, "rotated-MNIST dataset shift")
    if f is None:
        return []
    angles = need(f, path, "angles")
    out = ["## Dataset shift: rotated MNIST (beyond the paper)", "",
           f"    {cmd}", "",
           f"The first {int(f.attrs['images'])} test images rotated by each angle; single networks (mean over",
           f"{int(f.attrs['members'])}) and the mean-probability ensemble of all {int(f.attrs['members'])}, for the generated networks and the deep ensemble.", "",
           "| angle | generated: single acc. | ensemble acc. | ensemble NLL | ensemble ECE | deep: single acc. | ensemble acc. | ensemble NLL | ensemble ECE |",
           "|---|---|---|---|---|---|---|---|---|"]
    cols = {}
    for g in ("generated", "baseline"):
        if g in f:
            cols[g] = [need(f, path, f"{g}/{k}") for k in ("single/accuracy_mean", "ensemble/accuracy", "ensemble/nll", "ensemble/ece")]
    for i, ang in enumerate(angles):
        row = [f"{ang:g}°"]
        for g in ("generated", "baseline"):
            if g in cols:
                c = cols[g]
                row += [pct(c[0][i], 1), pct(c[1][i], 1), f"{c[2][i]:.3f}", f"{c[3][i]:.3f}"]
            else:
                row += [""] * 4
        out.append("| " + " | ".join(row) + " |")
    f.close()
    out += ["", plot("plot_shift.py", [path], os.path.join(figdir, "shift.png")), ""]
    return out


def sec_calibrate(root, figdir, missing):
    f, cmd, path = analysis_input(root, "calibrate", missing, "calibration with temperature scaling")
    if f is None:
        return []
    out = ["## Calibration and temperature scaling (beyond the paper)", "",
           f"    {cmd}", "",
           "Mean-probability ensembles of growing size; one temperature per set and size fitted on the",
           f"{int(f.attrs['val_images'])} validation images (NLL), applied to every member's logits and scored on the",
           f"{int(f.attrs['test_images'])} test images (ECE with {int(f.attrs['bins'])} bins). T > 1 means the ensemble was overconfident,",
           "T < 1 underconfident.", "",
           "| set | size | T | test accuracy | NLL before → after | ECE before → after |",
           "|---|---|---|---|---|---|"]
    for g in ("generated", "baseline"):
        if g not in f:
            continue
        sizes, T = need(f, path, f"{g}/sizes"), need(f, path, f"{g}/temperature")
        acc, nll, ece = (need(f, path, f"{g}/test/{k}") for k in ("accuracy", "nll", "ece"))
        for i, s in enumerate(sizes):
            out.append(f"| {f[g].attrs['label']} | {int(s)} | {T[i]:.3f} | {pct(acc[0][i])} | {nll[0][i]:.4f} → {nll[1][i]:.4f} | "
                       f"{ece[0][i]:.4f} → {ece[1][i]:.4f} |")
    f.close()
    out += ["", plot("plot_calibration.py", [path], os.path.join(figdir, "calibration.png")), ""]
    return out


def sec_ood(root, figdir, missing):
    f, cmd, path = analysis_input(root, "ood", missing, "out-of-distribution detection (Fashion-MNIST)")
    if f is None:
        return []
    sizes = need(f, path, "sizes")
    cols = [need(f, path, k) for k in ("auroc/entropy", "auroc/mutual_information", "auroc/max_prob", "in_accuracy")]
    out = ["## Out-of-distribution detection: MNIST test vs Fashion-MNIST test", "",
           f"    {cmd}", "",
           f"{int(f.attrs['in_images'])} MNIST and {int(f.attrs['outlier_images'])} Fashion-MNIST test images; AUROC of each score as an outlier",
           "detector (0.5 = chance) for mean-probability ensembles of growing size:", "",
           "| ensemble size | entropy | mutual information | max probability | MNIST accuracy |", "|---|---|---|---|---|"]
    for i, s in enumerate(sizes):
        mi = "—" if int(s) == 1 else f"{cols[1][i]:.4f}"
        out.append(f"| {int(s)} | {cols[0][i]:.4f} | {mi} | {cols[2][i]:.4f} | {pct(cols[3][i])} |")
    f.close()
    out += ["", plot("plot_ood.py", [path], os.path.join(figdir, "ood.png")), ""]
    return out


def sec_toy(root, figdir, missing):
    run = os.path.join(root, "analysis", "toy")
    if not os.path.isfile(os.path.join(run, "toy_curve.csv")):
        missing.append(("the toy problem (Fig. 1)", f"scripts/results.sh {root}"))
        return []
    cmd = read_cmd(root, "toy")
    png = os.path.join(figdir, "toy.png")
    run_script("plot_toy.py", [run, png])
    return ["## Toy problem (Fig. 1)", "",
            f"    {cmd}", f"    python3 analysis/plot_toy.py {run} {png}", "",
            "The 1-D generator maps z ∈ [-1, 1] to the plane; trained for accuracy (the mixture's log",
            "density) and entropy, its curve should pass through all 8 peaks of the mixture.", "",
            f"![toy]({os.path.relpath(png, 'docs')})", ""]


def sec_noise(root, missing):
    import h5py
    rows = []
    for n in (32, 64, 128):
        d = os.path.join(root, "analysis", f"noise-n{n}")
        mp = os.path.join(d, "metrics.jsonl")
        hp = os.path.join(root, "analysis", f"noise-n{n}.h5")
        if not (os.path.isfile(mp) and os.path.isfile(hp)):
            continue
        rs = read_jsonl(mp)
        val = {int(r["step"]): r for r in rs if r.get("type") == "val"}
        train = [r for r in rs if r.get("type") == "train"]
        if 3000 not in val:
            continue
        with h5py.File(hp, "r") as f:
            a = dict(f["generated"].attrs)
        jp = os.path.join(d, "job.json")
        ips = int(json.load(open(jp))["images_per_sample"]) if os.path.isfile(jp) else None
        rows.append((n, val, train_seconds(train), a, ips))
    if len(rows) < 3:
        missing.append(("the noise-batch study (N = 32, 64, 128)", f"scripts/results.sh {root}"))
    if not rows:
        return []
    out = ["## The noise batch: N = 32, 64, 128 networks per step (beyond the paper)", "",
           "In the MPI design the batch of generated networks can grow with the ranks. The paper's job",
           "with `batch` N, 3,000 steps each (same seed, same learning-rate schedule, same λ), measured on",
           "validation only (the test set is not used for this choice):", "",
           "    ./hypertrain jobs/mnist.json --set batch=N --set steps=3000 --set val_every=1000 --set checkpoint_every=1000 --out ROOT/analysis/noise-nN",
           "    ./hypertrain sample --checkpoint ROOT/analysis/noise-nN/ckpt_00003000.h5 --count 100 --out samples.h5",
           "    ./hyperanalyze diversity samples.h5 --members 100 --split val --images 5000", "",
           "Validation at step 3,000 (200 fresh networks: the entropy estimate Ĥ over 200 networks is",
           "comparable across N), and the pairwise diversity of 100 networks:", "",
           "| N | training time | single network | majority vote (200) | mean probability (200) | NLL | Ĥ (200 networks) | pairwise disagreement | symmetric KL | disagreement / error |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for n, val, secs, a, _ in rows:
        v = val[3000]
        out.append(f"| {n} | {secs / 60:.1f} min | {pm(v['mean_acc'], v['std_acc'])} | {pct(v['majority_acc'])} | "
                   f"{pct(v['mean_prob_acc'])} | {v['mean_nll']:.4f} | {v['entropy']:.1f} | {pct(a['disagreement_mean'])} | "
                   f"{a['kl_sym_mean']:.4f} | {a['norm_disagreement_mean']:.3f} |")
    out.append("")
    if len(rows) > 1:
        out += [noise_reading(rows), ""]
    return out


def noise_reading(rows):
    """The trends of the noise-batch table, said from its numbers (first and last N, and whether the
    change is monotone over all N)."""
    def trend(name, vals, fmt):
        d = [b - a for a, b in zip(vals, vals[1:])]
        how = ("rises" if all(x > 0 for x in d) else "falls" if all(x < 0 for x in d)
               else "is not monotone")
        return f"{name} {how} ({fmt(vals[0])} → {fmt(vals[-1])})"
    v = [r[1][3000] for r in rows]
    a = [r[3] for r in rows]
    ns = [r[0] for r in rows]
    parts = [trend("the single-network accuracy", [x["mean_acc"] for x in v], pct),
             trend("the majority vote", [x["majority_acc"] for x in v], pct),
             trend("the entropy estimate Ĥ", [x["entropy"] for x in v], lambda x: f"{x:.1f}"),
             trend("the pairwise disagreement", [x["disagreement_mean"] for x in a], pct),
             trend("the symmetric KL", [x["kl_sym_mean"] for x in a], lambda x: f"{x:.4f}")]
    ips = rows[0][4]
    per = f"its own {ips} images, so a step sees {ips}·N images" if ips else "its own images, so a step sees N times them"
    return (f"Reading: from N = {ns[0]} to N = {ns[-1]}, " + ", ".join(parts) + ". The same number of steps is not "
            f"the same amount of data: each generated network trains on {per}, and N = {ns[-1]} sees "
            f"{ns[-1] / ns[0]:g}× the images of N = {ns[0]} in its 3,000 steps.")


def sec_fashion(root, figdir, missing):
    fe, cmd_e, pe = analysis_input(root, "fashion-ensemble", missing, "Fashion-MNIST: the run's ensembles")
    if fe is None:
        return []
    import numpy as np
    maj, mp_ = need(fe, pe, "ensembles/majority_acc"), need(fe, pe, "ensembles/mean_prob_acc")
    nets = need(fe, pe, "networks/accuracy")
    nll, ece = need(fe, pe, "ensembles/nll"), need(fe, pe, "ensembles/ece")
    m_, n_img = int(fe.attrs["m"]), int(fe.attrs["images"])
    fe.close()
    d = os.path.join(root, "fashion")
    val = {int(r["step"]): r for r in read_jsonl(os.path.join(d, "metrics.jsonl")) if r.get("type") == "val"}
    out = ["## Fashion-MNIST (beyond the paper)", "",
           "The paper's job on Fashion-MNIST, nothing tuned (`jobs/fashion-mnist.json`, 13,000 steps):", "",
           f"    ./hypertrain jobs/fashion-mnist.json --set val_every=1000 --set checkpoint_every=1000 --out {d}",
           f"    {cmd_e}", ""]
    if val:
        last = max(val)
        v = val[last]
        out += [f"Validation at step {last:,}: single networks {pm(v['mean_acc'], v['std_acc'])}%, majority vote of 200 "
                f"{pct(v['majority_acc'])}, mean probability {pct(v['mean_prob_acc'])}.", ""]
    out += [f"| test set ({n_img} images) | single network | majority vote of {m_} | mean probability of {m_} | NLL | ECE |",
            "|---|---|---|---|---|---|",
            f"| {len(maj)} ensembles of {m_} | {pm(nets.mean(), nets.std(ddof=1))} | {pm(maj.mean(), maj.std(ddof=1), 3)} | "
            f"{pm(mp_.mean(), mp_.std(ddof=1), 3)} | {nll.mean():.4f} | {ece.mean():.4f} |", ""]
    fc, cmd_c, pc = analysis_input(root, "fashion-calibrate", missing, "Fashion-MNIST: calibration")
    if fc is not None:
        sizes, T = need(fc, pc, "generated/sizes"), need(fc, pc, "generated/temperature")
        acc, nl, ec = (need(fc, pc, f"generated/test/{k}") for k in ("accuracy", "nll", "ece"))
        fc.close()
        out += [f"    {cmd_c}", "", "| size | T | test accuracy | NLL before → after | ECE before → after |",
                "|---|---|---|---|---|"]
        for i, sz in enumerate(sizes):
            out.append(f"| {int(sz)} | {T[i]:.3f} | {pct(acc[0][i])} | {nl[0][i]:.4f} → {nl[1][i]:.4f} | {ec[0][i]:.4f} → {ec[1][i]:.4f} |")
        out.append("")
    fo, cmd_o, po = analysis_input(root, "fashion-ood", missing, "Fashion-MNIST: MNIST as outliers")
    if fo is not None:
        sizes = need(fo, po, "sizes")
        ent, mi = need(fo, po, "auroc/entropy"), need(fo, po, "auroc/mutual_information")
        fo.close()
        out += [f"    {cmd_o}", "", "Out-of-distribution detection the other way round (Fashion-MNIST in, MNIST test images out):", "",
                "| ensemble size | AUROC entropy | AUROC mutual information |", "|---|---|---|"]
        for i, sz in enumerate(sizes):
            out.append(f"| {int(sz)} | {ent[i]:.4f} | {'—' if int(sz) == 1 else f'{mi[i]:.4f}'} |")
        out.append("")
    return out


def sec_filterdiv(root, figdir, missing):
    f, cmd, path = analysis_input(root, "filterdiv", missing, "Fig. 3, per-filter diversity")
    if f is None:
        return []
    out = ["## Fig. 3: generated filters and their diversity", "",
           f"    {cmd}", "",
           f"Over the first {int(f.attrs['networks'])} networks: the diversity of every filter, Σ‖x − x̄‖² / Σ‖x‖² over its",
           "gauge-fixed weights and bias (0: the same filter in every network; 1: a filter with mean 0),",
           "against the RMS norm of the next layer's weights on that filter's channel. The paper's",
           "\"low-diversity filter\" argument is that such a filter is one the next layer ignores.", "",
           "| layer | filters | diversity min / median / max | least diverse (its next-layer norm) | its norm's rank (1 = smallest) | most diverse (its next-layer norm) | mean next-layer norm: less / more diverse half | Pearson | Spearman |",
           "|---|---|---|---|---|---|---|---|---|"]
    import numpy as np
    layers = sorted((k for k in f.keys() if k.startswith("layer")), key=lambda k: int(k[5:]))
    reading = []
    for k in layers:
        d = need(f, path, f"{k}/diversity")
        nn = need(f, path, f"{k}/next_norm")
        a, lo, hi = f[k].attrs, f[f"{k}/least"].attrs, f[f"{k}/most"].attrs
        rank = int(np.sum(nn < nn[int(lo["filter"])])) + 1     # of the least diverse filter's norm
        order = np.argsort(d, kind="stable")
        half = len(d) // 2
        low_half, high_half = float(nn[order[:half]].mean()), float(nn[order[len(d) - half:]].mean())
        sp = float(a["spearman"])
        out.append(f"| {k[5:]} ({a['layer_type'].decode() if isinstance(a['layer_type'], bytes) else a['layer_type']}) | {len(d)} | "
                   f"{d.min():.3f} / {np.median(d):.3f} / {d.max():.3f} | filter {int(lo['filter'])}: {float(lo['diversity']):.3f} "
                   f"({float(lo['next_norm']):.3g}) | {rank} of {len(d)} | filter {int(hi['filter'])}: {float(hi['diversity']):.3f} "
                   f"({float(hi['next_norm']):.3g}) | {low_half:.3g} / {high_half:.3g} | {float(a['pearson']):+.2f} | {sp:+.2f} |")
        # Spearman's rho under independence: approximately normal with sd 1/sqrt(n - 1)
        zs = sp * (len(d) - 1) ** 0.5
        if sp > 0 and zs > 1.96:
            verdict = f"as the argument says (ρ√(n−1) = {zs:.2f} > 1.96: significant at 5%)"
        elif sp > 0:
            verdict = f"the argument's direction, but not significant at 5% (ρ√(n−1) = {zs:.2f})"
        else:
            verdict = "not what the argument says"
        outl = d < 0.9 * np.median(d)     # filters well below the layer's typical diversity
        grp = (f", and the {int(outl.sum())} filter{'s' if outl.sum() > 1 else ''} below 0.9× the median diversity "
               f"{'are' if outl.sum() > 1 else 'is'} read with norm {float(nn[outl].mean()):.3g} against "
               f"{float(nn[~outl].mean()):.3g} for the rest" if outl.any() else "")
        reading.append(f"layer {k[5:]}: the least diverse filter's next-layer norm ranks {rank} of {len(d)} "
                       f"(1 = smallest), the less diverse half is read with norm {low_half:.3g} against {high_half:.3g}"
                       f"{grp}, Spearman {sp:+.2f}: {verdict}")
    f.close()
    out += ["", "Reading (if the next layer ignores the low-diversity filters, the less diverse filters have the "
            "smaller next-layer norms: a positive rank correlation): " + "; ".join(reading) + "."]
    png = os.path.join(figdir, "fig3_filters.png")
    out += ["", f"    python3 analysis/plot_filters.py --diversity {path} --layers 1,2 -o {png}", "",
            plot("plot_filters.py", ["--diversity", path, "--layers", "1,2"], png), ""]
    return out


PCA_SETS = [("filter-1-0", "one filter: layer 1, filter 0"), ("filter-2-0", "one filter: layer 2, filter 0"),
            ("layer-1", "layer 1 (every filter)"), ("layer-2", "layer 2 (every filter)"),
            ("all", "the whole network, standardized")]


def pca_reading(summary):
    """What survives the null comparisons, said from the numbers of the PCA table."""
    if not summary:
        return []
    n_sets = sum(1 for s in summary if s[1] > 0)
    null_max = max(s[3] for s in summary)
    null_ok = all(s[3] <= s[4] for s in summary)
    neg = sum(s[5] for s in summary)
    tot = sum(s[1] for s in summary)
    caps = [(w, c) for w, *_, c in summary if c is not None]
    out = [f"Reading: the generated networks' leading axes are non-Gaussian in {n_sets} of {len(summary)} weight "
           f"sets ({tot} of {sum(s[2] for s in summary)} axes), "
           + (f"while the Gaussian null of the same covariance stays below the threshold on every axis (largest |k| "
              f"{null_max:.2f}): " if null_ok else f"but the Gaussian null itself reaches |k| = {null_max:.2f}, above a threshold: ")
           + (f"{neg} of these {tot} axes have negative excess kurtosis (a flat or two-peaked spread along the axis: "
              "bands and clusters, not a Gaussian cloud). " if tot else "")]
    if caps:
        small = [c for _, c in caps if c <= 0.01]
        big = [(w, c) for w, c in caps if c > 0.01]
        out[0] += (f"The deep ensemble puts {100 * max(small):.2f}% or less of its own variance on these axes in "
                   f"{len(small)} of {len(caps)} sets" if small else "The deep ensemble puts more than 1% of its variance on "
                   "these axes in every set")
        if big:
            out[0] += "; " + ", ".join(f"{w}: {100 * c:.1f}%" for w, c in big)
        out[0] += (": the directions in which the generated networks vary are, for the most part, not directions in which "
                   "independently trained networks vary.")
    return out + [""]


def sec_pca(root, figdir, missing):
    import numpy as np
    rows, figs, summary = [], [], []
    for key, what in PCA_SETS:
        f, cmd, path = analysis_input(root, f"pca-{key}", missing, f"PCA of {what}")
        if f is None:
            continue
        r = need(f, path, "explained_variance_ratio")
        kg = need(f, path, "generated/excess_kurtosis")
        kn = need(f, path, "gaussian/excess_kurtosis")
        kb = f["baseline/excess_kurtosis"][...] if "baseline/excess_kurtosis" in f else None
        cap = f["baseline"].attrs.get("captured_ratio") if "baseline" in f else None
        fmt = lambda v: " ".join(f"{x:+.2f}" for x in v)
        # The excess kurtosis of n Gaussian draws has standard error sqrt(24/n): an axis counts as
        # non-Gaussian when |kurtosis| > 3 of them (the Gaussian null's own values show the scale).
        n = int(f.attrs["networks"])
        thr = 3.0 * (24.0 / n) ** 0.5
        sig = sum(abs(float(x)) > thr for x in kg)
        summary.append((what, sig, len(kg), float(np.max(np.abs(kn))), thr, int(np.sum(kg < -thr)),
                        None if cap is None else float(cap)))
        rows.append(f"| {what} | {int(f.attrs['dim'])} | {n} | {' '.join(f'{100 * x:.1f}%' for x in r)} | {fmt(kg)} | {fmt(kn)} | "
                    f"{fmt(kb) if kb is not None else '—'} | {sig} of {len(kg)} (> {thr:.2f}) | "
                    f"{f'{100 * float(cap):.2f}%' if cap is not None else '—'} |")
        f.close()
        png = os.path.join(figdir, f"pca_{key}.png")
        figs += [f"**{what}**", "", f"    {cmd}", f"    python3 analysis/plot_pca.py {path} -o {png}", "",
                 plot("plot_pca.py", [path], png), ""]
    if not rows:
        return []
    return ["## Figs. 6, 9–15: PCA of the generated weights, beside null comparisons", "",
            "Each figure row is a pair of the generated set's principal components; beside the generated",
            "networks, on the same axes (their components, mean and scale), the deep ensemble projected",
            "on them and a Gaussian with the generated set's mean and covariance. Excess kurtosis along",
            "an axis is 0 for a Gaussian: values far from 0 are structure a Gaussian cloud of the same",
            "covariance does not have. The last column is the fraction of the deep ensemble's own total",
            "variance that lies in the generated set's leading components. An axis counts as",
            "non-Gaussian when the generated set's |excess kurtosis| exceeds 3 standard errors of the",
            "kurtosis of n Gaussian draws, 3·√(24/n); negative values (a flat or two-peaked",
            "distribution along the axis) are the thin curves of the figures.", "",
            "| weights | dim | networks n | variance explained by PC1..4 | excess kurtosis along PC1..4: generated | Gaussian | deep ensemble | non-Gaussian axes (\\|k\\| > 3·√(24/n)) | deep ensemble's variance on these axes |",
            "|---|---|---|---|---|---|---|---|---|"] + rows + [""] + pca_reading(summary) + figs


def sec_paths(root, figdir, missing):
    f, cmd, path = analysis_input(root, "paths", missing, "Fig. 7, paths between generated networks")
    if f is None:
        return []
    ia, da = need(f, path, "interpolated/accuracy"), need(f, path, "direct/accuracy")
    t = need(f, path, "t")
    out = ["## Fig. 7: paths between generated networks", "",
           f"    {cmd}", "",
           f"{ia.shape[0]} pairs of networks G(z1), G(z2), {len(t)} points each, on {int(f.attrs['images'])} {f.attrs['split']} images:",
           "the interpolated path G(t z1 + (1 − t) z2) through the hypernetwork against the direct path",
           "t G(z1) + (1 − t) G(z2) in weight space.", "",
           "| path | accuracy at the ends (mean) | lowest accuracy on the path: mean over pairs | worst pair |",
           "|---|---|---|---|",
           f"| interpolated in z | {pct((ia[:, 0].mean() + ia[:, -1].mean()) / 2)} | {pct(ia.min(axis=1).mean())} | {pct(ia.min())} |",
           f"| direct in weights | {pct((da[:, 0].mean() + da[:, -1].mean()) / 2)} | {pct(da.min(axis=1).mean())} | {pct(da.min())} |",
           ""]
    f.close()
    out += [plot("plot_paths.py", [path], os.path.join(figdir, "fig7_paths.png")), ""]
    return out


def git_head():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default="runs/paper")
    ap.add_argument("--out", default="docs/results.md")
    ap.add_argument("--figures", default="docs/figures")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--steps", default=",".join(map(str, STEPS)), metavar="FINAL,EARLY",
                    help="the checkpoints evaluated (default 13000,11000)")
    a = ap.parse_args()
    try:
        steps = tuple(int(x) for x in a.steps.split(","))
        if len(steps) != 2 or min(steps) <= 0:
            raise ValueError
    except ValueError:
        fail(f"--steps '{a.steps}': expected two positive steps FINAL,EARLY, e.g. 13000,11000")
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    if not os.path.isdir(a.root):
        fail(f"{a.root}: no such run root (scripts/paper-runs.sh makes it)")
    runs = [read_run(a.root, *r, steps) for r in RUNS]
    missing = []
    if a.check:
        for r in runs:
            print(f"{r['name']}: step {r['step']}, evaluations at {sorted(r.get('ensembles', {}))}")
        return 0
    os.makedirs(a.figures, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Results on real MNIST: the paper's experiments at its own settings", "",
             f"<!-- generated by `python3 analysis/results_page.py --root {a.root}` (scripts/results.sh); "
             "do not edit: edit the script -->", "",
             f"Generated {now} at commit {git_head()} from the run directories under `{a.root}`, all made on",
             "the development machine (Debian 12, 2 cores, AMD Zen 5, no GPU; CPU build). Every table and",
             "figure names the command that made it; a result not made yet is listed at the end with its",
             "command, never carried over from an older page.", ""]
    lines += sec_runs(runs, a.root, missing, steps[0])
    lines += sec_curves(runs, a.root, a.figures, missing)
    lines += sec_ensembles(runs, a.root, missing, steps)
    lines += sec_fig2(runs, a.figures, missing, steps[0])
    lines += sec_baseline(a.root, missing)
    lines += sec_adversarial(a.root, a.figures, missing)
    lines += sec_filterdiv(a.root, a.figures, missing)
    lines += sec_pca(a.root, a.figures, missing)
    lines += sec_paths(a.root, a.figures, missing)
    lines += sec_diversity(a.root, a.figures, missing)
    lines += sec_shift(a.root, a.figures, missing)
    lines += sec_calibrate(a.root, a.figures, missing)
    lines += sec_ood(a.root, a.figures, missing)
    lines += sec_noise(a.root, missing)
    lines += sec_fashion(a.root, a.figures, missing)
    lines += sec_toy(a.root, a.figures, missing)
    if missing:
        lines += ["## Not measured yet", ""]
        seen = set()
        for what, cmd in missing:
            if (what, cmd) in seen:
                continue
            seen.add((what, cmd))
            lines.append(f"- {what}: `{cmd}`")
        lines.append("")
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, a.out)
    print(f"wrote {a.out} ({len(missing)} result(s) missing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
