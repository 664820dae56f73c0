#!/usr/bin/env bash
# hyperanalyze filters, ood and baseline (docs/analysis.md), end to end on the tiny job
# (1,015 weights per network) and real MNIST, each checked against an independent reading of the
# files with h5py/numpy (tests/check_samples.py's numpy forward pass):
#   1. filters: /slices, /filter and /bias equal the sample set's kernel and bias entries read with
#      h5py in the documented layout, for a conv layer, an fc layer after a conv (slices (7, 7)) and
#      an fc layer after an fc (one row); layer/filter/channel out of range: exit 2, one clear line;
#   2. baseline: 3 members trained for 150 steps: every member's training loss falls by a quarter,
#      the set passes check_samples.py (layout, gauge fixing, numpy forward pass reproduces its
#      /metrics; only batch_norm differs by design: "none"), accuracy --recompute and ensemble read it;
#   3. adversarial: moved to tests/t_adversarial.sh (the per-image protocol of the original code);
#   4. ood on the baseline set with Fashion-MNIST (skipped when the package is absent): entropy and
#      mutual information of every image and their AUROCs equal a numpy recomputation from the
#      members' probabilities;
#   5. bad input: missing outlier directory, a directory without the files, too few networks.
# The plot scripts write PNGs. Prints PASS/FAIL lines; exits non-zero on any failure. Without
# MNIST, everything runs on synthetic MNIST-format images (tests/synthetic_mnist.sh), and a
# SKIPPED line says so.
set -u
cd "$(dirname "$0")/.."
FASHION=${HYPERTRAIN_TEST_FASHION:-/usr/share/datasets/fashion-mnist}
. tests/lib.sh
lib_init analysis2 1
if ! "$PY" -c "import h5py, numpy" 2>/dev/null; then echo "t_analysis2: SKIPPED (no h5py/numpy)"; exit 0; fi
lib_data

# expect_fail NAME STATUS PATTERN CMD...: exit status STATUS and stderr matching PATTERN
expect_fail() {
  local name=$1 want=$2 pat=$3; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -ne "$want" ]; then fail "$name: exit $rc, expected $want"; sed 's/^/      /' "$T/err" | head -3; return; fi
  if grep -qE -- "$pat" "$T/err"; then pass "$name: $(grep -m1 error "$T/err" | cut -c1-190)"
  else fail "$name: message does not match /$pat/:"; sed 's/^/      /' "$T/err" | head -5; fi
}
# py NAME SCRIPT ARGS...: a Python check (exit 0 = pass); tests/ is on its path
py() {
  local name=$1 script=$2; shift 2
  local out; out=$(PYTHONPATH=tests "$PY" -c "$script" "$@" 2>&1); local rc=$?
  if [ $rc -eq 0 ]; then pass "$name: $out"; else fail "$name: $out"; fi
}

echo "a hypernetwork sample set: 3 steps of jobs/tiny.json, 24 networks"
lib_tiny_run 3
lib_sample 24 "$T/s.h5"
[ -f "$T/s.h5" ] || { echo "FAIL: no sample set"; exit 1; }

echo "1. filters"
run filters_conv $HA filters "$T/s.h5" --layer 2 --filter 1 --channel 2 --samples 7 --out "$T/f2.h5"
run filters_fc $HA filters "$T/s.h5" --layer 3 --filter 4 --channel 1 --samples 5 --out "$T/f3.h5"
run filters_fc2 $HA filters "$T/s.h5" --layer 4 --filter 9 --samples 3 --out "$T/f4.h5"
py "filters: slices are the set's kernel entries" '
import sys, h5py, numpy as np
t = sys.argv[1]
with h5py.File(t + "/s.h5", "r") as s:
    k2, b2 = s["weights/layer2/kernel"][...], s["weights/layer2/bias"][...]
    k3, k4, k1 = s["weights/layer3/kernel"][...], s["weights/layer4/kernel"][...], s["weights/layer1/kernel"][...]
with h5py.File(t + "/f2.h5", "r") as f:
    assert f["slices"].shape == (7, 3, 3) and f["filter"].shape == (7, 3, 3, 4), (f["slices"].shape, f["filter"].shape)
    assert np.array_equal(f["slices"][...], k2[:7, :, :, 2, 1]) and np.array_equal(f["filter"][...], k2[:7, ..., 1])
    assert np.array_equal(f["bias"][...], b2[:7, 1]) and list(f["networks"][...]) == list(range(7))
    assert int(f.attrs["layer"]) == 2 and int(f.attrs["filter"]) == 1 and int(f.attrs["channel"]) == 2
with h5py.File(t + "/f3.h5", "r") as f:   # fc after conv/maxpool: input 7x7x3 (NHWC flattening)
    assert f["slices"].shape == (5, 7, 7), f["slices"].shape
    assert np.array_equal(f["slices"][...], k3[:5, :, 4].reshape(5, 7, 7, 3)[..., 1])
with h5py.File(t + "/f4.h5", "r") as f:   # fc after fc: the whole filter as one row
    assert f["slices"].shape == (3, 1, 5) and np.array_equal(f["slices"][...][:, 0, :], k4[:3, :, 9])
print("layer 2 (7, 3, 3), layer 3 (5, 7, 7) = kernel[:, :, 4].reshape(7, 7, 3)[..., 1], layer 4 (3, 1, 5)")
' "$T"
expect_fail "filters: --layer out of range" 2 "--layer 5 is out of range: .* 4 conv/fc layers" $HA filters "$T/s.h5" --layer 5
expect_fail "filters: --filter out of range" 2 "--filter 4 is out of range: layer 1 has 4 filters" $HA filters "$T/s.h5" --filter 4
expect_fail "filters: --channel out of range" 2 "--channel 1 is out of range: filters of layer 1 read 1 input channel" $HA filters "$T/s.h5" --channel 1
expect_fail "filters: --samples beyond the set" 1 "holds 24 networks, but --samples 25 needs 25" $HA filters "$T/s.h5" --out "$T/x.h5"
if "$PY" analysis/plot_filters.py "$T/f2.h5" "$T/f3.h5" "$T/f4.h5" -o "$T/filters.png" >/dev/null 2>&1 && [ -s "$T/filters.png" ]; then
  pass "plot_filters.py writes a PNG"; else fail "plot_filters.py"; fi

echo "2. baseline: 3 directly trained networks"
run baseline $HA baseline --job "$TINY" --data "$DATA" --members 3 --steps 150 --lr 3e-3 --log-every 50 \
  --metrics val --images 200 --out "$T/b.h5"
py "baseline: every member's training loss falls" '
import sys
rows = [l.strip().split(",") for l in open(sys.argv[1]) if l[0].isdigit()]
assert len(rows) == 3, rows
for r in rows:
    first, last = float(r[1]), float(r[2])
    assert last < 0.75 * first, f"member {r[0]}: {first} -> {last}"
print("; ".join(f"member {r[0]}: {float(r[1]):.3f} -> {float(r[2]):.3f}, val acc {float(r[4]):.3f}" for r in rows))
' "$T/baseline.out"
"$PY" tests/check_samples.py "$T/b.h5" --data "$DATA" >"$T/check.out" 2>&1
if [ "$(grep -c "^  FAIL" "$T/check.out")" = 1 ] && grep -q "FAIL batch norm" "$T/check.out" && grep -q "PASS numpy forward pass" "$T/check.out"; then
  pass "baseline set passes check_samples.py (layout, gauge fixing, numpy forward = /metrics; batch_norm \"none\" by design)"
else fail "check_samples.py on the baseline set:"; grep FAIL "$T/check.out" | sed 's/^/      /'; fi
run baseline_accuracy $HA accuracy "$T/b.h5" --data "$DATA" --images 200 --recompute --out "$T/bacc.h5"
py "accuracy --recompute equals the baseline's stored metrics" '
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as s, h5py.File(sys.argv[2], "r") as a:
    acc = a["accuracy"][...]
    d = np.abs(s["metrics/accuracy"][...] - acc).max()
    assert d < 1e-12 and acc.min() > 0.4, (d, acc)
print(f"max diff {d:.1e}, accuracies {np.round(acc, 3).tolist()}")
' "$T/b.h5" "$T/bacc.h5"
run baseline_ensemble $HA ensemble "$T/b.h5" --data "$DATA" --k 1 --m 3 --images 100 --out "$T/bens.h5"
expect_fail "baseline: --out exists" 1 "exists \(use --force" $HA baseline --job "$TINY" --data "$DATA" --out "$T/b.h5" --steps 1
expect_fail "baseline: bad --init" 2 "--init: expected he or glorot" $HA baseline --job jobs/tiny.json --out "$T/y.h5" --init xavier

echo "3. adversarial: tests/t_adversarial.sh"

echo "4. ood"
expect_fail "ood: missing outlier directory" 1 "outlier directory '$T/nothing': No such file or directory \(Fashion-MNIST: apt-get install dataset-fashion-mnist" \
  $HA ood "$T/b.h5" --data "$DATA" --outliers "$T/nothing"
mkdir -p "$T/empty"
expect_fail "ood: directory without the files" 1 "outlier directory '$T/empty' holds neither t10k-images-idx3-ubyte.gz nor t10k-images-idx3-ubyte" \
  $HA ood "$T/b.h5" --data "$DATA" --outliers "$T/empty"
if [ -d "$FASHION" ]; then
  run ood $HA ood "$T/b.h5" --data "$DATA" --outliers "$FASHION" --members 3 --images 60 --out "$T/ood.h5"
  py "ood: scores and AUROCs equal numpy" '
import sys, json, h5py, numpy as np
from check_samples import target_layers, forward, read_idx, find_idx
t, data, fashion = sys.argv[1:4]
with h5py.File(t + "/b.h5", "r") as s:
    job = json.loads(s.attrs["job"])
    layers, ops = target_layers(job)
    W = [[(s[f"weights/layer{i+1}/kernel"][k].astype(np.float64), s[f"weights/layer{i+1}/bias"][k]) for i in range(len(layers))] for k in range(3)]
xi = read_idx(find_idx(data, "t10k-images-idx3-ubyte"))[:60]
xo = read_idx(find_idx(fashion, "t10k-images-idx3-ubyte"))[:60]
x = np.concatenate([xi, xo]).astype(np.float64).reshape(120, 28, 28, 1) / 255
P = np.stack([forward(ops, W[k], x) for k in range(3)])
H = lambda p: -(p * np.log(np.where(p > 0, p, 1))).sum(-1)
def auroc(s, pos):
    a, b = s[pos], s[~pos]
    return ((a[:, None] > b[None, :]).sum() + 0.5 * (a[:, None] == b[None, :]).sum()) / (len(a) * len(b))
with h5py.File(t + "/ood.h5", "r") as f:
    assert list(f["sizes"][...]) == [1, 2, 3]
    out = f["is_outlier"][...].astype(bool)
    ent, mi = H(P.mean(0)), H(P.mean(0)) - H(P).mean(0)
    de = np.abs(f["scores/entropy"][...] - ent).max(); dm = np.abs(f["scores/mutual_information"][...] - mi).max()
    assert de < 1e-4 and dm < 1e-4, (de, dm)
    a_e, a_m = f["auroc/entropy"][-1], f["auroc/mutual_information"][-1]
    assert abs(a_e - auroc(ent, out)) < 0.01 and abs(a_m - auroc(mi, out)) < 0.01, (a_e, auroc(ent, out), a_m, auroc(mi, out))
    assert abs(f["auroc/mutual_information"][0] - 0.5) < 1e-12   # one network: MI = 0 everywhere
print(f"max |entropy - numpy| {de:.1e}, |MI - numpy| {dm:.1e}; AUROC entropy {a_e:.3f}, MI {a_m:.3f}")
' "$T" "$DATA" "$FASHION"
  if "$PY" analysis/plot_ood.py "$T/ood.h5" -o "$T/ood.png" >/dev/null 2>&1 && [ -s "$T/ood.png" ]; then
    pass "plot_ood.py writes a PNG"; else fail "plot_ood.py"; fi
else
  echo "  SKIPPED ood on Fashion-MNIST (no $FASHION: apt-get install dataset-fashion-mnist)"
fi

lib_finish
