#!/usr/bin/env bash
# scripts/gpu-scaling-model.py (docs/performance-gpu.md): the multi-GPU step model, checked against
# figures computed here by hand from its documented formulas (not by the script), on its assumed
# inputs and on two synthetic bench_cuda_step JSON files:
#   1. one GPU: no communication, efficiency 100%;
#   2. the gradient all-reduce at 8 GPUs = alpha + 2 (7/8) 633,640 * 4 B / busbw;
#      the weights all-gather at 8 GPUs, 32 per GPU = alpha + (7/8) 256 * 20,018 * 4 B / busbw;
#      8 (grouped) and 20 (split) batch-norm all-reduces of <= 4,800 B;
#   3. two bench files (batch 8: 0.6 ms, batch 32: 1.5 ms, no entropy time) fit
#      per network 0.9/24 ms and fixed 0.3 ms;
#   4. weak-scaling efficiency falls with the GPU count, and grouped >= split;
#   5. bad input: a bench file without "configs", a bad --alpha-us: non-zero exit naming it.
# Needs python3 only (no build, no data). Prints PASS/FAIL lines; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
T=$(mktemp -d /tmp/ht_gpu_model_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
M=scripts/gpu-scaling-model.py
"$PY" $M --alpha-us 8,10,14 --busbw-gbs 150 --json "$T/a.json" > "$T/a.md" || { echo "FAIL: $M exited non-zero"; exit 1; }
cat > "$T/b8.json" <<'J'
{"gpu":"x","job":"j","batch":8,"configs":[{"label":"graph","graph":1,"ms_per_step":0.6},{"label":"plain","graph":0,"ms_per_step":0.9}],"phases_ms":{"entropy":0,"target forward/backward":0.3}}
J
cat > "$T/b32.json" <<'J'
{"gpu":"x","job":"j","batch":32,"configs":[{"label":"graph","graph":1,"ms_per_step":1.5},{"label":"plain","graph":0,"ms_per_step":2.2}],"phases_ms":{"entropy":0,"target forward/backward":0.9}}
J
"$PY" $M --bench "$T/b32.json" --bench "$T/b8.json" --json "$T/b.json" > "$T/b.md" || { echo "FAIL: $M --bench exited non-zero"; exit 1; }
"$PY" - "$T" <<'PY' || fails=$((fails+1))
import json, sys
T = sys.argv[1]
a = json.load(open(f"{T}/a.json")); b = json.load(open(f"{T}/b.json"))
bad = 0
def check(ok, what):
    global bad
    print(("  PASS " if ok else "  FAIL ") + what)
    bad += not ok
def row(d, scaling, bn, overlap, P):
    r = [x for x in d["rows"] if (x["scaling"], x["bn"], x["overlap"], x["gpus"]) == (scaling, bn, overlap, P)]
    assert len(r) == 1, (scaling, bn, overlap, P)
    return r[0]
one = [x for x in a["rows"] if x["gpus"] == 1]
check(all(x["allgather_weights_ms"] == x["allreduce_grads_ms"] == x["bn_ms"] == x["small_ms"] == 0 for x in one)
      and all(abs(x["efficiency"] - 1) < 1e-12 for x in one), "1 GPU: no communication, efficiency 100%")
alpha, bw = 14e-6, 150e9
grad = (alpha + 2 * 7 / 8 * 633640 * 4 / bw) * 1e3
r = row(a, "weak", "grouped", False, 8)
check(abs(r["allreduce_grads_ms"] - grad) < 1e-9, f"gradient all-reduce at 8 GPUs {r['allreduce_grads_ms']:.6f} ms = hand {grad:.6f}")
ag = (alpha + 7 / 8 * 256 * 20018 * 4 / bw) * 1e3
check(abs(r["allgather_weights_ms"] - ag) < 1e-9, f"weights all-gather at 8 GPUs x 32 {r['allgather_weights_ms']:.6f} ms = hand {ag:.6f}")
bn8 = 8 * (alpha + 2 * 7 / 8 * 4800 / bw) * 1e3
bn20 = 20 * (alpha + 2 * 7 / 8 * 4800 / bw) * 1e3
check(abs(r["bn_ms"] - bn8) < 1e-9 and abs(row(a, "weak", "split", False, 8)["bn_ms"] - bn20) < 1e-9,
      f"batch-norm all-reduces at 8 GPUs: grouped {bn8:.4f} ms (8 calls), split {bn20:.4f} ms (20 calls)")
ro = row(a, "weak", "grouped", True, 8)
check(abs(ro["step_ms"] - (r["step_ms"] - min(r["allgather_weights_ms"], ro["hidden_ms"]))) < 1e-9 and ro["hidden_ms"] > 0,
      "overlap hides the all-gather (up to the target's time)")
check(abs(b["per_network_ms"] - 0.9 / 24) < 1e-9 and abs(b["fixed_ms"] - 0.3) < 1e-9,
      f"fit from two bench files: per network {b['per_network_ms']:.6f} ms (hand 0.0375), fixed {b['fixed_ms']:.6f} (hand 0.3)")
for d, name in ((a, "assumed"), (b, "fitted")):
    for bn in ("grouped", "split"):
        eff = [row(d, "weak", bn, True, P)["efficiency"] for P in (1, 2, 4, 8)]
        check(all(x > y for x, y in zip(eff, eff[1:])), f"{name} {bn}: weak-scaling efficiency falls with GPUs {[round(e, 3) for e in eff]}")
    check(all(row(d, "weak", "grouped", o, P)["step_ms"] <= row(d, "weak", "split", o, P)["step_ms"]
              for o in (False, True) for P in (2, 4, 8)), f"{name}: grouped batch norm never slower than split")
check("ASSUMED" in a["inputs"] and "ASSUMED" not in b["inputs"], "the inputs line says ASSUMED only without measurements")
sys.exit(1 if bad else 0)
PY
echo '{"batch":32}' > "$T/bad.json"
if "$PY" $M --bench "$T/bad.json" > /dev/null 2> "$T/err"; then echo "  FAIL a bench file without configs was accepted"; fails=$((fails+1))
elif grep -q "bad.json.*configs" "$T/err"; then echo "  PASS a bench file without configs: $(cat "$T/err")"
else echo "  FAIL the error does not name the file and the key: $(cat "$T/err")"; fails=$((fails+1)); fi
if "$PY" $M --alpha-us 1,2 > /dev/null 2> "$T/err"; then echo "  FAIL --alpha-us 1,2 was accepted"; fails=$((fails+1))
elif grep -q -- "--alpha-us 1,2" "$T/err"; then echo "  PASS --alpha-us 1,2: $(tail -1 "$T/err")"
else echo "  FAIL the error does not name --alpha-us: $(cat "$T/err")"; fails=$((fails+1)); fi
[ $fails = 0 ] && echo "t_gpu_model: all passed" || { echo "t_gpu_model: $fails failed"; exit 1; }
