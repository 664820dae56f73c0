#!/usr/bin/env bash
# analysis/results_page.py (docs/results.md from the run directories) on a small tree built like
# scripts/paper-runs.sh + scripts/paper-evals.sh would build it, from short runs of the tiny job on
# synthetic MNIST-format images (tests/synthetic_mnist.sh): it needs no data, so it runs anywhere.
#   1. runs l1e3-s1, l1e3-s2 (λ = 1e3, seeds 1, 2) and l1e5-s1 (λ = 1e5) of 12 steps, checkpoints
#      at 4, 8, 12; for each, 8 networks of steps 12 and 8 evaluated as 2 ensembles of 4 by
#      `hyperanalyze ensemble` into RUN/eval/stepSSSSS/ensemble.h5; the page with --steps 12,8;
#   2. the page holds, computed here with numpy from the ensemble files (not by the page's code):
#      each run's majority-vote mean ± std over its ensembles, the two-seed pooled mean ± the std of
#      the seeds' means, the single-network mean, the difference to the paper's 99.14%, the change
#      between the two steps paired within each run; the
#      runs table's validation numbers from metrics.jsonl; the Fig. 2 and curve PNGs exist;
#      everything not made (l1e3-s3, l1e5-s2, the analyses) is listed under "Not measured yet" with
#      its command;
#   3. bad input, each exit 1 with one line naming the file and the old page left unchanged: an
#      ensemble file without /ensembles/majority_acc, a run whose job.json has another λ, a
#      metrics.jsonl line that is not JSON, a bad --steps.
# Prints PASS/FAIL lines; exits non-zero on any failure. Binaries: ./hypertrain, ./hyperanalyze.
set -u
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
fails=0; passes=0
pass() { passes=$((passes+1)); echo "  PASS $*"; }
fail() { fails=$((fails+1)); echo "  FAIL $*"; }
T=$(mktemp -d /tmp/ht_results_XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1
for b in ./hypertrain ./hyperanalyze; do [ -x $b ] || { echo "FAIL: $b not built"; exit 1; }; done
"$PY" -c 'import matplotlib, h5py, numpy' 2>/dev/null || { echo "FAIL: $PY lacks matplotlib/h5py/numpy (scripts/setup.sh)"; exit 1; }
bash tests/synthetic_mnist.sh "$T/data" || { echo "FAIL: tests/synthetic_mnist.sh"; exit 1; }
R=$T/root
D=(--data "$T/data" --set data.verify=false)

echo "three short runs and their evaluations"
for r in "l1e3-s1 1000 1" "l1e3-s2 1000 2" "l1e5-s1 100000 1"; do
  read -r name lam seed <<<"$r"
  if ./hypertrain jobs/tiny.json --out "$R/$name" --quiet "${D[@]}" --set seed="$seed" --set lambda="$lam" \
       --set steps=12 --set val_every=4 --set checkpoint_every=4 --set keep_checkpoints=3 >"$T/$name.log" 2>&1; then
    ok=1
    for s in 12 8; do
      ev=$(printf '%s/%s/eval/step%05d' "$R" "$name" $s); mkdir -p "$ev"
      ck=$(printf '%s/%s/ckpt_%08d.h5' "$R" "$name" $s)
      ./hypertrain sample --checkpoint "$ck" --count 8 --out "$ev/samples.h5" --quiet --data "$T/data" >>"$T/$name.log" 2>&1 &&
      ./hyperanalyze ensemble "$ev/samples.h5" --k 2 --m 4 --split test --data "$T/data" --out "$ev/ensemble.h5" \
          >>"$T/$name.log" 2>&1 || ok=0
    done
    [ $ok = 1 ] && pass "$name: 12 steps, evaluations at 12 and 8" || { fail "$name: evaluation"; tail -5 "$T/$name.log"; }
  else
    fail "$name: training"; tail -5 "$T/$name.log"
  fi
done

echo "the page"
out=$("$PY" analysis/results_page.py --root "$R" --steps 12,8 --out "$T/results.md" --figures "$T/fig" 2>&1); rc=$?
[ $rc -eq 0 ] && pass "exit 0: $(echo "$out" | tail -1)" || fail "exit $rc: $out"
chk=$("$PY" - "$R" "$T/results.md" <<'EOF' 2>&1
import json, math, statistics, sys
import h5py, numpy as np
root, page = sys.argv[1], open(sys.argv[2]).read()
bad = []
def want(s, what):
    if s not in page:
        bad.append(f"{what}: '{s}' not on the page")
def p(x, nd): return f"{100 * x:.{nd}f}"
means = {}
for name in ("l1e3-s1", "l1e3-s2", "l1e5-s1"):
    for step in (12, 8):
        with h5py.File(f"{root}/{name}/eval/step{step:05d}/ensemble.h5") as f:
            mv = f["ensembles/majority_acc"][...]; mp = f["ensembles/mean_prob_acc"][...]
            nets = f["networks/accuracy"][...]
        if len(mv) != 2 or len(nets) != 8:
            bad.append(f"{name}/{step}: {len(mv)} ensembles, {len(nets)} networks (expected 2, 8)")
        sd = statistics.stdev(mv)
        want(f"| {name} | {step} | {p(nets.mean(), 2)} ± {p(statistics.stdev(nets), 2)} | "
             f"{p(mv.mean(), 3)} ± {p(sd, 3)} | {p(mp.mean(), 3)} ± {p(statistics.stdev(mp), 3)} |", f"{name} step {step} row")
        means[(name, step)] = (mv.mean(), sd)
for step in (12, 8):
    a, b = means[("l1e3-s1", step)][0], means[("l1e3-s2", step)][0]
    m, s = (a + b) / 2, statistics.stdev([a, b])
    want(f"| 1e3 | {step} | 2 | {p(m, 3)} ± {p(s, 3)} |", f"λ=1e3 step {step} pooled row")
    want(f"points from it", "the paper statement")
    want(f"{100 * (0.9914 - m):+.3f} points", f"the difference to 99.14% at step {step}")
    pi = 12.706 * s * math.sqrt(1 + 1 / 2)       # t(0.975, 1 df): the prediction interval of one more run
    want(f"{100 * (m - pi):.3f}–{100 * (m + pi):.3f}%", f"the 95% prediction interval at step {step}")
    want(f"| 1e5 | {step} | 1 |", f"λ=1e5 step {step} pooled row")
# the paired change from step 8 to step 12, per λ (mean ± std over the seeds' differences)
d3 = [means[(n, 12)][0] - means[(n, 8)][0] for n in ("l1e3-s1", "l1e3-s2")]
want(f"λ = 1e3: {100 * statistics.mean(d3):+.3f} ± {100 * statistics.stdev(d3):.3f} points (mean ± std over 2 seeds)",
     "the paired change between the steps, λ = 1e3")
want(f"λ = 1e5: {100 * (means[('l1e5-s1', 12)][0] - means[('l1e5-s1', 8)][0]):+.3f} points (one seed)",
     "the paired change between the steps, λ = 1e5")
val = [json.loads(l) for l in open(f"{root}/l1e3-s1/metrics.jsonl") if '"val"' in l]
v = [r for r in val if r["step"] == 12][-1]
want(f"| l1e3-s1 | 1e3 | 1 | 12 |", "runs table row")
want(f"{p(v['mean_acc'], 2)} ± {p(v['std_acc'], 2)} | {p(v['majority_acc'], 2)}% | {p(v['mean_prob_acc'], 2)}% |", "runs table validation")
want("| l1e3-s3 | 1e3 | 3 | 0 | | not run yet |", "a run not made")
miss = page[page.find("## Not measured yet"):]
for w in ("scripts/paper-runs.sh", "Fig. 8, adversarial examples", "function-space diversity", "rotated-MNIST",
          "calibration with temperature scaling", "noise-batch study", "toy problem"):
    if w not in miss:
        bad.append(f"'{w}' not under 'Not measured yet'")
print("; ".join(bad) if bad else "every number found")
sys.exit(1 if bad else 0)
EOF
); [ $? -eq 0 ] && pass "numbers: $chk" || fail "numbers: $chk"
for png in fig2_accuracy.png curves_paper_l1e3.png curves_paper_l1e5.png; do
  [ -s "$T/fig/$png" ] && head -c 8 "$T/fig/$png" | grep -q PNG && pass "$png written" || fail "$png missing"
done

echo "bad input: exit 1, one line naming the file, the old page unchanged"
cp "$T/results.md" "$T/good.md"
bad_case() {  # bad_case WHAT EXPECTED-SUBSTRING [results_page args...]
  local what=$1 want=$2; shift 2
  local o rc
  o=$("$PY" analysis/results_page.py --root "$R" --out "$T/results.md" --figures "$T/fig" "$@" 2>&1); rc=$?
  if [ $rc -eq 1 ] && [ "$(printf '%s\n' "$o" | wc -l)" -eq 1 ] && [[ "$o" == *"$want"* ]] && cmp -s "$T/results.md" "$T/good.md"; then
    pass "$what: $o"
  else
    fail "$what: exit $rc, expected one line with '$want', page unchanged: $o"
  fi
}
E=$R/l1e3-s2/eval/step00012/ensemble.h5
cp "$E" "$T/ens.bak"
"$PY" -c "import h5py,sys; f=h5py.File(sys.argv[1],'a'); del f['ensembles/majority_acc']" "$E"
bad_case "ensemble file without /ensembles/majority_acc" "ensemble.h5: dataset /ensembles/majority_acc missing" --steps 12,8
cp "$T/ens.bak" "$E"
cp "$R/l1e5-s1/job.json" "$T/job.bak"
sed -i 's/"lambda": 100000/"lambda": 1000/' "$R/l1e5-s1/job.json"
bad_case "job.json with another λ" "l1e5-s1/job.json: λ 1000" --steps 12,8
cp "$T/job.bak" "$R/l1e5-s1/job.json"
cp "$R/l1e3-s1/metrics.jsonl" "$T/m.bak"
echo '{"type": "val", broken' >> "$R/l1e3-s1/metrics.jsonl"
bad_case "metrics.jsonl line that is not JSON" "l1e3-s1/metrics.jsonl:" --steps 12,8
cp "$T/m.bak" "$R/l1e3-s1/metrics.jsonl"
bad_case "--steps 12" "--steps '12'" --steps 12

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
