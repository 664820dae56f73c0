#!/usr/bin/env bash
# The analysis sections of docs/results.md (analysis/results_page.py: Fig. 8, diversity, shift,
# calibration, OOD, Fig. 3, PCA, Fig. 7) on a small tree built as scripts/results.sh builds it,
# from a 12-step run of the tiny job on synthetic MNIST-format images (needs no data):
#   1. one run (l1e3-s1) with 40 networks of step 12, a 10-member deep ensemble (hyperanalyze
#      baseline, 30 steps each), and every analysis at tiny sizes into ROOT/analysis/NAME.h5, with
#      the command stored in NAME.cmd for some and taken from the file's command_line for the rest;
#   2. each section's numbers are recomputed here with numpy from the result files (not by the
#      page's code) and looked for on the page: the Fig. 8 medians (in 1/255) and fooled fractions,
#      the diversity attributes, the shift rows, the fitted temperatures, the OOD AUROCs, the
#      filter-diversity extremes and the reading of them (rank, halves), the PCA count of
#      non-Gaussian axes (|k| > 3 sqrt(24/n)) and its reading, the path minima, the noise-batch rows
#      and trends (from made-up validation lines and real diversity files), the Fig. 8 tables of
#      the test and the validation split in that order; the section's command; every figure is a
#      PNG; the analyses leave "Not measured yet";
#   3. a result file without one of its datasets: exit 1, one line naming the file and the dataset.
# Prints PASS/FAIL lines; exits non-zero on any failure. Binaries: ./hypertrain, ./hyperanalyze.
set -u
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
fails=0; passes=0
pass() { passes=$((passes+1)); echo "  PASS $*"; }
fail() { fails=$((fails+1)); echo "  FAIL $*"; }
T=$(mktemp -d /tmp/ht_results_an_XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1
for b in ./hypertrain ./hyperanalyze; do [ -x $b ] || { echo "FAIL: $b not built"; exit 1; }; done
"$PY" -c 'import matplotlib, h5py, numpy' 2>/dev/null || { echo "FAIL: $PY lacks matplotlib/h5py/numpy (scripts/setup.sh)"; exit 1; }
bash tests/synthetic_mnist.sh "$T/data" || { echo "FAIL: tests/synthetic_mnist.sh"; exit 1; }
bash tests/synthetic_mnist.sh "$T/other" 10 300 || { echo "FAIL: tests/synthetic_mnist.sh (outliers)"; exit 1; }
R=$T/root; A=$R/analysis; mkdir -p "$A"
DA=(--data "$T/data")

echo "a run, its networks, a deep ensemble and the analyses"
run() {  # run NAME CMD...: runs CMD, logs into $T/NAME.log
  local name=$1; shift
  "$@" >"$T/$name.log" 2>&1
  local rc=$?
  [ $rc -eq 0 ] && return 0
  fail "$name: $* (exit $rc)"; tail -5 "$T/$name.log"; return 1
}
# the tiny job on data that is not MNIST (checksums off), for hyperanalyze baseline's --job
"$PY" -c 'import json,sys; j=json.load(open("jobs/tiny.json")); j["data"]["verify"]=False; json.dump(j,open(sys.argv[1],"w"))' "$T/tiny.json"
EV=$R/l1e3-s1/eval/step00012; mkdir -p "$EV"
S=$EV/samples.h5; B=$A/baseline.h5
run train ./hypertrain jobs/tiny.json --out "$R/l1e3-s1" --quiet "${DA[@]}" --set data.verify=false --set seed=1 \
    --set steps=12 --set val_every=4 --set checkpoint_every=4 --set keep_checkpoints=3 &&
run sample ./hypertrain sample --checkpoint "$R/l1e3-s1/ckpt_00000012.h5" --count 40 --out "$S" --quiet "${DA[@]}" &&
run baseline ./hyperanalyze baseline --job "$T/tiny.json" --members 10 --steps 30 --out "$B" --log-every 10 "${DA[@]}" ||
  { echo "$passes passed, $((fails)) failed"; exit 1; }
# name and command; .cmd written for the first two (as scripts/results.sh does), the rest of the
# page's commands come from each file's command_line attribute
ANALYSES=(
  "adversarial ./hyperanalyze adversarial $S --n-images 12 --members 6 --baseline $B --eps-max 0.1 --out $A/adversarial.h5 --data $T/data"
  "diversity ./hyperanalyze diversity $S --baseline $B --members 6 --split test --images 200 --out $A/diversity.h5 --data $T/data"
  "shift ./hyperanalyze shift $S --baseline $B --members 4 --images 100 --angles 0,90,180 --out $A/shift.h5 --data $T/data"
  "calibrate ./hyperanalyze calibrate $S --baseline $B --members 4 --val-images 200 --test-images 200 --out $A/calibrate.h5 --data $T/data"
  "ood ./hyperanalyze ood $S --outliers $T/other --members 4 --images 200 --out $A/ood.h5 --data $T/data"
  "filterdiv ./hyperanalyze filterdiv $S --n 40 --out $A/filterdiv.h5"
  "pca-layer-1 ./hyperanalyze pca $S --what layer:1 --n 40 --components 4 --baseline $B --out $A/pca-layer-1.h5"
  "adversarial-test ./hyperanalyze adversarial $S --split test --n-images 12 --members 6 --baseline $B --eps-max 0.1 --out $A/adversarial-test.h5 --data $T/data"
  "paths ./hyperanalyze paths $R/l1e3-s1/ckpt_00000012.h5 --pairs 3 --points 5 --images 100 --out $A/paths.h5 --data $T/data"
)
i=0
for a in "${ANALYSES[@]}"; do
  read -r -a w <<<"$a"
  name=${w[0]}
  run "$name" "${w[@]:1}" && pass "$name"
  [ $i -lt 2 ] && printf '%s\n' "${w[*]:1}" > "$A/$name.cmd"
  i=$((i+1))
done

# the noise-batch study's inputs as scripts/results.sh leaves them: ROOT/analysis/noise-nN/ with a
# job and a metrics.jsonl holding the step-3,000 validation line (values made up here, different per
# N and not monotone in the entropy), and noise-nN.h5 from hyperanalyze diversity
for n in 32 64 128; do
  mkdir -p "$A/noise-n$n"
  "$PY" - "$A/noise-n$n" "$n" <<'EOF'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
j = json.load(open("jobs/mnist.json")); j["batch"] = n
json.dump(j, open(f"{d}/job.json", "w"))
k = {32: 0, 64: 1, 128: 2}[n]
with open(f"{d}/metrics.jsonl", "w") as f:
    for s in (1000, 2000, 3000):
        f.write(json.dumps({"type": "train", "step": s, "steps_per_s": 2.0 + k}) + "\n")
    f.write(json.dumps({"type": "val", "step": 3000, "mean_acc": 0.95 + 0.01 * k, "std_acc": 0.004 - 0.001 * k,
                        "majority_acc": 0.97 + 0.005 * k, "mean_prob_acc": 0.971 + 0.005 * k,
                        "mean_nll": 0.1 - 0.01 * k, "entropy": [2800.0, 2900.0, 2850.0][k]}) + "\n")
EOF
  run "noise-n$n" ./hyperanalyze diversity "$S" --members $((3 + n / 32)) --split val --images 100 \
      --out "$A/noise-n$n.h5" --data "$T/data" && pass "noise-n$n inputs"
done

echo "the page"
out=$("$PY" analysis/results_page.py --root "$R" --steps 12,8 --out "$T/results.md" --figures "$T/fig" 2>&1); rc=$?
[ $rc -eq 0 ] && pass "exit 0: $(echo "$out" | tail -1)" || fail "exit $rc: $out"
chk=$("$PY" - "$A" "$T/results.md" <<'EOF' 2>&1
import sys
import h5py, numpy as np
A, page = sys.argv[1], open(sys.argv[2]).read()
bad = []
def want(s, what):
    if s not in page:
        bad.append(f"{what}: '{s}' not on the page")
def sec(title):
    i = page.find(title)
    if i < 0:
        bad.append(f"section '{title}' missing"); return ""
    j = page.find("\n## ", i + 1)
    return page[i:j if j > 0 else len(page)]
def p(x, nd=2): return f"{100 * x:.{nd}f}%"
# Fig. 8: per split, population and attack, the median smallest eps (1/255) and the fraction fooled
s8 = sec("## Fig. 8")
rows = {}
for split, name in (("test", "adversarial-test"), ("val", "adversarial")):
    with h5py.File(f"{A}/{name}.h5") as f:
        if f.attrs["split"] != split:
            bad.append(f"{name}.h5: split {f.attrs['split']}, expected {split}")
        rows[split] = []
        for pop, label in (("generated", "generated"), ("deep", "deep ensemble")):
            n = int(np.sum(f[f"{pop}/attacked"][...]))
            for mode in ("untargeted", "targeted"):
                cells = []
                for line in ("source", "other", "ensemble_transfer", "ensemble_whitebox"):
                    e = f[f"{pop}/{mode}/{line}"][...]
                    e = e[~np.isnan(e)]
                    cells.append(f"{np.median(e) * 255:.1f} ({100 * np.mean(np.isfinite(e)):.0f}%)")
                rows[split].append(f"| {label} | {mode} | {n} | " + " | ".join(cells) + " |")
# the test-image table comes first (with the figure), then the validation table under its command
i_test = [s8.find(r) for r in rows["test"]]
i_val_cmd = s8.find("--out " + f"{A}/adversarial.h5")
i_val = [s8.find(r, max(i_val_cmd, 0)) for r in rows["val"]]
if min(i_test) < 0 or i_val_cmd < 0 or min(i_val) < 0:
    bad.append(f"Fig. 8: rows or commands missing (test rows at {i_test}, val command at {i_val_cmd}, val rows at {i_val})")
elif not max(i_test) < s8.find("![") < i_val_cmd < min(i_val):
    bad.append("Fig. 8: expected the test table, the figure, then the validation command and table")
if "--split test" not in s8 or "./hyperanalyze adversarial" not in s8:
    bad.append("Fig. 8: the test-image command (the file's command_line) is not shown")
with h5py.File(f"{A}/diversity.h5") as f:
    for g in ("generated", "baseline"):
        a = f[g].attrs
        want(f"| {p(a['error_mean'])} | {p(a['disagreement_mean'])} | {a['kl_sym_mean']:.4f} | "
             f"{a['norm_disagreement_mean']:.3f} | {p(a['ensemble_error'])} |", f"diversity {g}")
with h5py.File(f"{A}/shift.h5") as f:
    for i, ang in enumerate(f["angles"][...]):
        row = [f"{ang:g}°"]
        for g in ("generated", "baseline"):
            row += [p(f[f"{g}/single/accuracy_mean"][i], 1), p(f[f"{g}/ensemble/accuracy"][i], 1),
                    f"{f[f'{g}/ensemble/nll'][i]:.3f}", f"{f[f'{g}/ensemble/ece'][i]:.3f}"]
        want("| " + " | ".join(row) + " |", f"shift {ang}°")
    if "./hyperanalyze shift" not in sec("## Dataset shift"):
        bad.append("shift: the command from the file's command_line is not shown")
with h5py.File(f"{A}/calibrate.h5") as f:
    for g in ("generated", "baseline"):
        for s_, t in zip(f[f"{g}/sizes"][...], f[f"{g}/temperature"][...]):
            want(f"| {int(s_)} | {t:.3f} |", f"calibration {g} size {int(s_)}")
with h5py.File(f"{A}/ood.h5") as f:
    for i, s_ in enumerate(f["sizes"][...]):
        want(f"| {int(s_)} | {f['auroc/entropy'][i]:.4f} |", f"OOD size {int(s_)}")
with h5py.File(f"{A}/filterdiv.h5") as f:
    for k in ("layer1", "layer2"):
        d = f[f"{k}/diversity"][...]
        want(f"{d.min():.3f} / {np.median(d):.3f} / {d.max():.3f} | filter {int(np.argmin(d))}: ", f"Fig. 3 {k}")
        nn = f[f"{k}/next_norm"][...]
        lo = int(np.argmin(d))
        rank = sorted(nn.tolist()).index(nn[lo]) + 1        # 1 = the smallest next-layer norm
        srt = np.argsort(d, kind="stable"); h = len(d) // 2
        want(f"| {rank} of {len(d)} |", f"Fig. 3 {k}: rank of the least diverse filter's norm")
        want(f"| {nn[srt[:h]].mean():.3g} / {nn[srt[len(d) - h:]].mean():.3g} |", f"Fig. 3 {k}: norms of the halves")
        want(f"layer {k[5:]}: the least diverse filter's next-layer norm ranks {rank} of {len(d)}", f"Fig. 3 {k}: reading")
        low = d < 0.9 * np.median(d)
        if low.any():
            want(f"below 0.9× the median diversity {'are' if low.sum() > 1 else 'is'} read with norm "
                 f"{nn[low].mean():.3g} against {nn[~low].mean():.3g} for the rest", f"Fig. 3 {k}: the low-diversity group")
with h5py.File(f"{A}/pca-layer-1.h5") as f:
    x = f["projections"][...]                      # (n, k) generated networks on their components
    n = x.shape[0]
    z = (x - x.mean(0)) / x.std(0)
    kurt = (z ** 4).mean(0) - 3.0                  # excess kurtosis, recomputed from the projections
    thr = 3 * np.sqrt(24 / n)
    want(f"| {n} | ", "PCA networks")
    want(f"| {int(np.sum(np.abs(kurt) > thr))} of {len(kurt)} (> {thr:.2f}) |", "PCA non-Gaussian axes")
    sig = int(np.sum(np.abs(kurt) > thr))
    want(f"Reading: the generated networks' leading axes are non-Gaussian in {1 if sig else 0} of 1 weight sets "
         f"({sig} of {len(kurt)} axes)", "PCA reading")
with h5py.File(f"{A}/paths.h5") as f:
    ia, da = f["interpolated/accuracy"][...], f["direct/accuracy"][...]
    want(f"| interpolated in z | {p((ia[:, 0].mean() + ia[:, -1].mean()) / 2)} | {p(ia.min(axis=1).mean())} | {p(ia.min())} |", "Fig. 7 interpolated")
    want(f"| direct in weights | {p((da[:, 0].mean() + da[:, -1].mean()) / 2)} | {p(da.min(axis=1).mean())} | {p(da.min())} |", "Fig. 7 direct")
# the noise batch: each row from the validation line and the diversity file, then the reading
sn = sec("## The noise batch")
dis = []
for k, n in enumerate((32, 64, 128)):
    with h5py.File(f"{A}/noise-n{n}.h5") as f:
        a = dict(f["generated"].attrs)
    dis.append(a)
    want(f"| {n} | {3000 / (2.0 + k) / 60:.1f} min | {100 * (0.95 + 0.01 * k):.2f} ± {100 * (0.004 - 0.001 * k):.2f} | "
         f"{p(0.97 + 0.005 * k)} | {p(0.971 + 0.005 * k)} | {0.1 - 0.01 * k:.4f} | {[2800.0, 2900.0, 2850.0][k]:.1f} | "
         f"{p(a['disagreement_mean'])} | {a['kl_sym_mean']:.4f} | {a['norm_disagreement_mean']:.3f} |", f"noise N = {n}")
def how(v):
    d = [b - a for a, b in zip(v, v[1:])]
    return "rises" if all(x > 0 for x in d) else "falls" if all(x < 0 for x in d) else "is not monotone"
dv = [a["disagreement_mean"] for a in dis]
want("Reading: from N = 32 to N = 128, the single-network accuracy rises (95.00% → 97.00%)", "noise reading: accuracy")
want("the entropy estimate Ĥ is not monotone (2800.0 → 2850.0)", "noise reading: entropy")
want(f"the pairwise disagreement {how(dv)} ({p(dv[0])} → {p(dv[-1])})", "noise reading: disagreement")
want("each generated network trains on its own 32 images, so a step sees 32·N images, and N = 128 sees 4× the images",
     "noise reading: images per step")
if "| 32 |" not in sn:
    bad.append("the noise-batch section has no N = 32 row")
miss = page[page.find("## Not measured yet"):]
for w in ("Fig. 8", "function-space diversity", "rotated-MNIST", "calibration with temperature", "Fig. 3",
          "PCA of layer 1", "Fig. 7", "out-of-distribution", "noise-batch"):
    if w in miss:
        bad.append(f"'{w}' still under 'Not measured yet'")
print("; ".join(bad) if bad else "every number found")
sys.exit(1 if bad else 0)
EOF
); [ $? -eq 0 ] && pass "numbers: $chk" || fail "numbers: $chk"
for png in fig8_adversarial.png diversity.png shift.png calibration.png ood.png fig3_filters.png pca_layer-1.png fig7_paths.png; do
  [ -s "$T/fig/$png" ] && head -c 8 "$T/fig/$png" | grep -q PNG && pass "$png written" || fail "$png missing"
done

echo "bad input: exit 1, one line naming the file and the dataset, the old page unchanged"
cp "$T/results.md" "$T/good.md"
"$PY" -c "import h5py,sys; f=h5py.File(sys.argv[1],'a'); del f['interpolated/accuracy']" "$A/paths.h5"
o=$("$PY" analysis/results_page.py --root "$R" --steps 12,8 --out "$T/results.md" --figures "$T/fig" 2>&1); rc=$?
if [ $rc -eq 1 ] && [ "$(printf '%s\n' "$o" | wc -l)" -eq 1 ] && [[ "$o" == *"paths.h5: dataset /interpolated/accuracy missing"* ]] &&
   cmp -s "$T/results.md" "$T/good.md"; then pass "paths.h5 without /interpolated/accuracy: $o"
else fail "paths.h5 without /interpolated/accuracy: exit $rc: $o"; fi

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
