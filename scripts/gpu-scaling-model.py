#!/usr/bin/env python3
"""gpu-scaling-model.py: the per-step time of the paper job on P GPUs (one node, NCCL), from one-GPU
measurements and a latency/bandwidth model of each collective (issue #12; docs/performance-gpu.md).

    scripts/gpu-scaling-model.py                          # assumed inputs (no GPU measurement yet)
    scripts/gpu-scaling-model.py --bench b32.json --bench b8.json   # fitted from bench_cuda_step
    scripts/gpu-scaling-model.py --alpha-us 8,10,14 --busbw-gbs 150 --json model.json

One-GPU compute, with n local networks and B networks in the global batch:
    T_compute(n, B) = fixed + per_net * n + pair * n * B
  fixed: what does not grow with the batch (Adam over the 633,640 parameters, the launch floor);
  per_net: hypernetwork rows, gauge fixing, target forward/backward of one network on 32 images;
  pair: the entropy's distances (each local network against all B).
Two bench_cuda_step JSON files at different batches fit fixed and per_net (pair from the entropy
phase); one file fixes per_net with --fixed-ms; none: the assumptions printed in the output.

Communication per step (NCCL, ring/tree model): a collective moving S bytes per rank costs
    all-reduce:  alpha + 2 (P-1)/P * S / busbw        all-gather: alpha + (P-1)/P * S_total / busbw
(busbw as nccl-tests reports it). The calls per step are those of cuda/train_cuda.cu: one
all-gather of the B x 20,018 gauge-fixed weights, two entropy all-gathers (neighbour index and
distance, 4 bytes per network each), one all-reduce of the 2 statistics doubles, the gradient
all-reduce (633,640 floats), and the batch-norm all-reduces (8 when the generators are grouped per
MLP level, 20 when each generator has its own; <= 4,800 bytes each: latency only).
Overlap: "serial" puts every collective on the critical path (the code of 2026-12-05); "overlap"
hides the weights all-gather behind the target network's forward/backward (the target needs only
local weights; only the entropy needs the gathered ones), up to the target's own time.
"""
import argparse
import json
import sys

WEIGHTS = 20018          # target weights per network (jobs/mnist.json)
PARAMS = 633640          # hypernetwork parameters
BN_BYTES = 4800          # the largest batch-norm all-reduce: 2 x 300 doubles (extractor; a grouped
                         # generator level is 2 x (40 + 100 + 100 + 60) doubles, also 4,800 bytes)
BN_CALLS = {"grouped": 8, "split": 20}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bench", action="append", default=[],
                   help="bench_cuda_step --json output (give two at different batches to fit fixed and per-network time)")
    p.add_argument("--step-ms", type=float, default=1.5,
                   help="assumed one-GPU step at 32 networks when no --bench is given (default 1.5: issue #12's goal)")
    p.add_argument("--fixed-ms", type=float, default=0.30,
                   help="assumed part of the step that does not grow with the batch (default 0.30 ms)")
    p.add_argument("--pair-ns", type=float, default=5.0,
                   help="assumed entropy cost per (local, global) network pair without --bench, ns (default 5: "
                        "3 x 20,018 FLOP at ~12 TFLOP/s)")
    p.add_argument("--target-frac", type=float, default=0.60,
                   help="assumed target forward/backward share of the per-network time without --bench (default 0.60)")
    p.add_argument("--alpha-us", default="8,10,14",
                   help="latency of one small collective at 2,4,8 GPUs in microseconds (default 8,10,14: assumed)")
    p.add_argument("--busbw-gbs", type=float, default=150.0,
                   help="NCCL bus bandwidth for the 2-20 MB collectives, GB/s (default 150: assumed)")
    p.add_argument("--small-calls", type=int, default=3,
                   help="latency-only collectives besides the batch norm's (default 3: two entropy all-gathers and "
                        "the statistics all-reduce; 1 when the entropy gathers are merged and the statistics "
                        "all-reduce moves to the logged steps)")
    p.add_argument("--batch", type=int, default=32, help="networks per step on one GPU (default 32)")
    p.add_argument("--gpus", default="1,2,4,8", help="GPU counts (default 1,2,4,8)")
    p.add_argument("--json", help="also write the tables as JSON")
    a = p.parse_args(argv)
    a.gpus = [int(x) for x in a.gpus.split(",")]
    alphas = [float(x) for x in a.alpha_us.split(",")]
    if len(alphas) != 3 or min(alphas) < 0:
        p.error(f"--alpha-us {a.alpha_us}: expected three non-negative numbers (2, 4 and 8 GPUs)")
    a.alphas = alphas
    if a.busbw_gbs <= 0 or a.step_ms <= 0 or not 0 <= a.fixed_ms < a.step_ms:
        p.error("--busbw-gbs and --step-ms must be positive and 0 <= --fixed-ms < --step-ms")
    if a.small_calls < 0 or a.batch < 1:
        p.error("--small-calls must be >= 0 and --batch >= 1")
    if any(g < 1 for g in a.gpus):
        p.error(f"--gpus {','.join(map(str, a.gpus))}: expected positive counts")
    return a


def alpha_s(args, P):
    """Latency of one small collective at P GPUs (log-linear between the given 2, 4, 8 points)."""
    if P == 1:
        return 0.0
    pts = {2: args.alphas[0], 4: args.alphas[1], 8: args.alphas[2]}
    if P in pts:
        return pts[P] * 1e-6
    lo = max(k for k in (2, 4, 8) if k <= P) if P >= 2 else 2
    hi = min((k for k in (2, 4, 8) if k >= P), default=8)
    if lo == hi:
        return pts[lo] * 1e-6 * (P / lo)  # beyond 8: grows linearly (ring latency)
    t = (P - lo) / (hi - lo)
    return (pts[lo] + t * (pts[hi] - pts[lo])) * 1e-6


def load_bench(path):
    try:
        with open(path) as f:
            b = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"gpu-scaling-model: {path}: {e}")
    try:
        cfg = min(b["configs"], key=lambda c: c["ms_per_step"])  # the fastest configuration measured
        return {"file": path, "batch": int(b["batch"]), "ms": float(cfg["ms_per_step"]), "config": cfg["label"],
                "phases": {k: float(v) for k, v in b.get("phases_ms", {}).items()}}
    except (KeyError, TypeError, ValueError) as e:
        sys.exit(f"gpu-scaling-model: {path}: not a bench_cuda_step JSON (key {e} missing or malformed)")


def compute_model(args):
    """fixed, per_net and pair in seconds, target share of per_net, and where they came from."""
    B0 = args.batch
    if len(args.bench) >= 2:
        b = sorted((load_bench(p) for p in args.bench[:2]), key=lambda x: x["batch"])
        if b[0]["batch"] == b[1]["batch"]:
            sys.exit("gpu-scaling-model: the two --bench files have the same batch; give two different batches")
        ent = [x["phases"].get("entropy", 0.0) for x in b]
        pair = ent[1] / b[1]["batch"] ** 2 * 1e-3
        t = [x["ms"] * 1e-3 - pair * x["batch"] ** 2 for x in b]
        per_net = (t[1] - t[0]) / (b[1]["batch"] - b[0]["batch"])
        fixed = t[1] - per_net * b[1]["batch"]
        tgt = b[1]["phases"].get("target forward/backward", 0.0) * 1e-3
        src = "fitted from " + ", ".join(f"{x['file']} (batch {x['batch']}, {x['config']}, {x['ms']:.3f} ms)" for x in b)
        return fixed, per_net, pair, min(1.0, tgt / max(per_net * b[1]["batch"], 1e-12)), src
    if len(args.bench) == 1:
        x = load_bench(args.bench[0])
        pair = x["phases"].get("entropy", 0.0) * 1e-3 / x["batch"] ** 2
        fixed = args.fixed_ms * 1e-3
        per_net = (x["ms"] * 1e-3 - fixed - pair * x["batch"] ** 2) / x["batch"]
        tgt = x["phases"].get("target forward/backward", 0.0) * 1e-3
        src = f"{x['file']} (batch {x['batch']}, {x['config']}, {x['ms']:.3f} ms), fixed part assumed {args.fixed_ms} ms"
        return fixed, per_net, pair, min(1.0, tgt / max(per_net * x["batch"], 1e-12)), src
    step = args.step_ms * 1e-3
    pair = args.pair_ns * 1e-9
    fixed = args.fixed_ms * 1e-3
    per_net = (step - fixed - pair * B0 ** 2) / B0
    src = (f"ASSUMED (no GPU measurement): {args.step_ms} ms at {B0} networks, fixed {args.fixed_ms} ms, "
           f"entropy {args.pair_ns:g} ns per network pair, target {args.target_frac:.0%} of the per-network time")
    return fixed, per_net, pair, args.target_frac, src


def step_time(args, m, P, n, B, bn_mode, overlap):
    """Seconds per step and its parts for n local networks, B global, on P GPUs."""
    fixed, per_net, pair, tfrac, _ = m
    comp = fixed + per_net * n + pair * n * B
    a = alpha_s(args, P)
    bw = args.busbw_gbs * 1e9
    f = (P - 1) / P
    ag_w = (a + f * B * WEIGHTS * 4 / bw) if P > 1 else 0.0
    ar_g = (a + 2 * f * PARAMS * 4 / bw) if P > 1 else 0.0
    bn = BN_CALLS[bn_mode] * (a + 2 * f * BN_BYTES / bw) if P > 1 else 0.0
    small = args.small_calls * a  # default: two entropy all-gathers (4 B per network each) and the 2-double statistics all-reduce
    hidden = min(ag_w, tfrac * per_net * n) if overlap else 0.0
    comm = ag_w + ar_g + bn + small
    return {"compute_ms": comp * 1e3, "allgather_weights_ms": ag_w * 1e3, "allreduce_grads_ms": ar_g * 1e3,
            "bn_ms": bn * 1e3, "small_ms": small * 1e3, "hidden_ms": hidden * 1e3,
            "step_ms": (comp + comm - hidden) * 1e3}


def tables(args, m):
    out = {"inputs": m[4], "fixed_ms": m[0] * 1e3, "per_network_ms": m[1] * 1e3, "pair_us": m[2] * 1e6,
           "alpha_us": args.alphas, "busbw_gbs": args.busbw_gbs,
           "small_calls": args.small_calls, "batch": args.batch, "rows": []}
    B0 = args.batch
    t1 = step_time(args, m, 1, B0, B0, "grouped", False)["step_ms"]
    for scaling in ("weak", "strong"):
        for bn_mode in ("grouped", "split"):
            for overlap in (False, True):
                for P in args.gpus:
                    n, B = (B0, B0 * P) if scaling == "weak" else (B0 / P, B0)
                    r = step_time(args, m, P, n, B, bn_mode, overlap)
                    eff = t1 / r["step_ms"] if scaling == "weak" else t1 / (P * r["step_ms"])
                    r.update({"scaling": scaling, "bn": bn_mode, "overlap": overlap, "gpus": P,
                              "local_networks": n, "global_networks": B, "efficiency": eff})
                    out["rows"].append(r)
    return out


def print_markdown(out):
    print(f"Inputs: {out['inputs']}")
    print(f"fixed {out['fixed_ms']:.3f} ms, per network {out['per_network_ms']:.4f} ms, entropy pair "
          f"{out['pair_us']:.4f} us; collective latency {'/'.join(f'{a:g}' for a in out['alpha_us'])} us at 2/4/8 "
          f"GPUs, bus bandwidth {out['busbw_gbs']:g} GB/s, {out['small_calls']} small collectives\n")
    b = out["batch"]
    for scaling, title in (("weak", f"{b} networks per GPU (global batch {b} P)"),
                           ("strong", f"the same global batch of {b} networks")):
        print(f"### {title}\n")
        print("| GPUs | BN all-reduces | overlap | compute ms | all-gather ms | grad all-reduce ms | BN ms | "
              "small ms | hidden ms | step ms | efficiency |")
        print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in out["rows"]:
            if r["scaling"] != scaling:
                continue
            print(f"| {r['gpus']} | {BN_CALLS[r['bn']]} ({r['bn']}) | {'yes' if r['overlap'] else 'no'} | "
                  f"{r['compute_ms']:.3f} | {r['allgather_weights_ms']:.3f} | {r['allreduce_grads_ms']:.3f} | "
                  f"{r['bn_ms']:.3f} | {r['small_ms']:.3f} | {r['hidden_ms']:.3f} | {r['step_ms']:.3f} | "
                  f"{100 * r['efficiency']:.1f}% |")
        print()


def sensitivity(args, m):
    """Weak-scaling efficiency at the largest GPU count (grouped, overlap) against latency and step time."""
    P = max(args.gpus)
    alphas = (5, 10, 15, 20, 30)
    steps = (1.0, 1.5, 2.0, 3.0)
    rows = []
    for s_ms in steps:
        scale = (s_ms * 1e-3 - m[0]) / max(m[1] * args.batch + m[2] * args.batch ** 2, 1e-12)
        mm = (m[0], m[1] * scale, m[2] * scale, m[3], m[4])  # the same fixed part, the batch part rescaled
        row = []
        for a in alphas:
            saved = args.alphas
            args.alphas = [a, a, a]
            r = step_time(args, mm, P, args.batch, args.batch * P, "grouped", True)
            args.alphas = saved
            row.append(100 * s_ms / r["step_ms"])
        rows.append((s_ms, row))
    print(f"### weak-scaling efficiency at {P} GPUs (grouped, overlap) against the collective latency and the "
          f"one-GPU step\n")
    print("| one-GPU step | " + " | ".join(f"alpha {a} us" for a in alphas) + " |")
    print("|---:|" + "---:|" * len(alphas))
    for s_ms, row in rows:
        print(f"| {s_ms:g} ms | " + " | ".join(f"{e:.1f}%" for e in row) + " |")
    print()
    return {"gpus": P, "alpha_us": list(alphas), "step_ms": list(steps), "efficiency_pct": [r for _, r in rows]}


def main(argv):
    args = parse_args(argv)
    m = compute_model(args)
    if m[1] <= 0:
        sys.exit(f"gpu-scaling-model: the per-network time came out {m[1] * 1e3:.4f} ms (<= 0): check the inputs ({m[4]})")
    out = tables(args, m)
    print_markdown(out)
    out["sensitivity"] = sensitivity(args, m)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
