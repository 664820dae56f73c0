#!/usr/bin/env bash
# hyperanalyze adversarial (docs/analysis.md) end to end on the tiny job: a hypernetwork sample set
# (3 training steps, 24 networks) and a deep ensemble (hyperanalyze baseline, 6 members), 40
# validation images, ensembles of 4, the default grid (62 eps values, step 1/255):
#   1. --threads 1 (sets read into memory) and --threads 2 --preload-max-mib 0 (networks read from
#      the sets for every image) write the same datasets and attributes (but the command line);
#   2. against numpy (tests/check_samples.py's forward pass of the networks each image used): the
#      skip flags (the source misclassifies the clean image), and at eps = 0 the other network's
#      and the ensemble's (majority vote) fooled / not fooled, both modes, both populations; every
#      finite eps on the grid, NaN exactly on skipped images, skipped counts, distinct networks per
#      image, targets != labels; SHA-256 of both sets, tool version, command line, dataset
#      attributes; on real MNIST the deep source network is fooled (untargeted) on half the images;
#   3. --no-clip: same skips and eps-0 results, clip attribute 0;
#   4. bad input: too few networks (the set, the baseline), bad grids: exit 1 / 2 with one line,
#      an existing --out left unchanged;
#   5. plot_adversarial.py: a PNG, the 16 medians; an unwritable output and a foreign result file
#      are one-line errors (exit 1).
# Without MNIST everything runs on synthetic MNIST-format images (tests/synthetic_mnist.sh) but the
# "fooled on half the images" check, and a SKIPPED line says so.
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
lib_init adversarial 1
if ! "$PY" -c "import h5py, numpy, matplotlib" 2>/dev/null; then echo "FAIL: python3 with h5py, numpy and matplotlib is required"; exit 1; fi
lib_data

# expect_fail NAME STATUS PATTERN CMD...: exit STATUS, one line on stderr matching PATTERN
expect_fail() {
  local name=$1 want=$2 pat=$3; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -ne "$want" ]; then fail "$name: exit $rc, expected $want"; sed 's/^/      /' "$T/err" | head -3; return; fi
  if [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -Eq -- "$pat" "$T/err"; then
    fail "$name: expected one line matching '$pat', got:"; sed 's/^/      /' "$T/err" | head -5; return; fi
  pass "$name: exit $want, $(head -c 160 "$T/err")"
}
py() { local name=$1 code=$2; shift 2
  if (cd tests && "$PY" -c "$code" "$@") >"$T/py.out" 2>&1; then pass "$name: $(tail -1 "$T/py.out")"
  else fail "$name"; sed 's/^/      /' "$T/py.out" | tail -8; fi
}

echo "inputs: 24 networks of a 3-step tiny run, a deep ensemble of 6 (hyperanalyze baseline, 100 steps)"
lib_tiny_run 3
lib_sample 24 "$T/s.h5"
$HA baseline --job "$TINY" --data "$DATA" --members 6 --steps 100 --out "$T/deep.h5" >/dev/null 2>&1
[ -f "$T/s.h5" ] && [ -f "$T/deep.h5" ] || { echo "FAIL: no sample set or baseline"; exit 1; }

echo "1. determinism"
COMMON=(--data "$DATA" --members 4 --n-images 40 --baseline "$T/deep.h5")
run adv1 $HA adversarial "$T/s.h5" "${COMMON[@]}" --threads 1 --out "$T/a1.h5"
run adv2 $HA adversarial "$T/s.h5" "${COMMON[@]}" --threads 2 --preload-max-mib 0 --out "$T/a2.h5"
py "--threads 1 (sets in memory) and --threads 2 --preload-max-mib 0 (read per image): the same file" '
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
nb = []
b.visititems(lambda n, o: nb.append(n) if isinstance(o, h5py.Dataset) else None)
assert sorted(names) == sorted(nb) and len(names) == 23, (names, nb)
for n in names:
    assert a[n].dtype == b[n].dtype and np.array_equal(a[n][...], b[n][...], equal_nan=a[n].dtype.kind == "f"), n
    assert dict(a[n].attrs) == dict(b[n].attrs), n
ka = {k: a.attrs[k] for k in a.attrs if k != "command_line"}
kb = {k: b.attrs[k] for k in b.attrs if k != "command_line"}
assert ka == kb, (ka, kb)
print(f"{len(names)} datasets and {len(ka)} root attributes equal")
' "$T/a1.h5" "$T/a2.h5"

echo "2. against numpy"
py "skips and eps-0 results equal numpy; layout and provenance" '
import sys, json, hashlib, h5py, numpy as np
from check_samples import target_layers, forward, read_idx, find_idx
t, data, kind = sys.argv[1:4]
f = h5py.File(t + "/a1.h5", "r")
eps, lab, tgt = f["eps"][...], f["labels"][...], f["targets"][...]
n = len(lab)
assert len(eps) == 62 and np.allclose(eps, np.arange(62) / 255, rtol=0, atol=1e-15), eps
x = read_idx(find_idx(data, "train-images-idx3-ubyte"))[:n].astype(np.float64).reshape(n, 28, 28, 1) / 255
y = read_idx(find_idx(data, "train-labels-idx1-ubyte"))[:n]
assert (y == lab).all() and (tgt != lab).all() and tgt.min() >= 0 and tgt.max() <= 9
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
A = f.attrs
assert A["samples_sha256"] == sha(t + "/s.h5") and A["baseline_sha256"] == sha(t + "/deep.h5")
assert A["tool_version"].startswith("hypertrain ") and "--members 4" in A["command_line"] and A["command_line"].startswith("hyperanalyze adversarial ")
assert A["clip"] == 1 and A["members"] == 4 and A["images"] == n and A["command"] == "hyperanalyze adversarial"
def vote(preds):  # majority, ties to the lowest class
    c = np.bincount(preds, minlength=10); return int(np.argmax(c))
checked = 0
for pop, path in (("generated", "/s.h5"), ("deep", "/deep.h5")):
    g = f[pop]
    nets, att = g["networks"][...], g["attacked"][...]
    assert nets.shape == (n, 6) and all(len(set(r)) == 6 for r in nets.tolist()) and nets.min() >= 0
    with h5py.File(t + path, "r") as s:
        job = json.loads(s.attrs["job"]); layers, ops = target_layers(job)
        N = s["z"].shape[0]
        assert nets.max() < N and g.attrs["samples_sha256"] == sha(t + path)
        W = [[(s[f"weights/layer{i+1}/kernel"][k].astype(np.float64), s[f"weights/layer{i+1}/bias"][k]) for i in range(len(layers))] for k in range(N)]
    P = np.stack([forward(ops, W[k], x) for k in range(N)])   # (N, n, 10)
    pred = P.argmax(2)
    assert g.attrs["skipped"] == (att == 0).sum() and g.attrs["attacked"] == att.sum()
    for i in range(n):
        src, oth, mem = nets[i, 0], nets[i, 1], nets[i, 2:]
        assert att[i] == (pred[src, i] == y[i]), (pop, i)
        for mode in ("untargeted", "targeted"):
            e = {l: g[f"{mode}/{l}"][i] for l in ("source", "other", "ensemble_transfer", "ensemble_whitebox")}
            if not att[i]:
                assert all(np.isnan(v) for v in e.values()), (pop, i, e); continue
            for v in e.values():
                assert np.isinf(v) or np.min(np.abs(eps - v)) == 0, (pop, i, v)
            fool = (lambda p: p != y[i]) if mode == "untargeted" else (lambda p: p == tgt[i])
            ens = vote(pred[mem, i])
            assert (e["source"] == 0) == fool(pred[src, i]), (pop, i, mode)
            assert (e["other"] == 0) == fool(pred[oth, i]), (pop, i, mode, e)
            assert (e["ensemble_transfer"] == 0) == fool(ens) and (e["ensemble_whitebox"] == 0) == fool(ens), (pop, i, mode, e)
            checked += 1
    for name in ["attacked", "networks"] + [f"{m}/{l}" for m in ("untargeted", "targeted") for l in ("source", "other", "ensemble_transfer", "ensemble_whitebox")]:
        assert "axes" in g[name].attrs and "meaning" in g[name].attrs, name
assert checked >= 20, checked
d = f["deep/untargeted/source"][...]; d = d[~np.isnan(d)]
frac = np.isfinite(d).mean()
if kind == "mnist": assert frac >= 0.5, frac
sk = [int(f[p].attrs["skipped"]) for p in ("generated", "deep")]
print(f"{checked} (image, mode) pairs checked at eps 0; skipped {sk[0]} + {sk[1]}; deep source fooled (untargeted) on {frac:.2f} of its images" + ("" if kind == "mnist" else " (not asserted on synthetic images)"))
' "$T" "$DATA" "$KIND"

echo "3. --no-clip"
run adv_noclip $HA adversarial "$T/s.h5" "${COMMON[@]}" --no-clip --out "$T/a3.h5"
py "--no-clip: clip attribute 0, the same skips and eps-0 results" '
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert a.attrs["clip"] == 1 and b.attrs["clip"] == 0 and "not clipped" in b.attrs["attack"]
for p in ("generated", "deep"):
    assert (a[p + "/attacked"][...] == b[p + "/attacked"][...]).all()
    for m in ("untargeted", "targeted"):
        for l in ("source", "other", "ensemble_transfer", "ensemble_whitebox"):
            assert ((a[f"{p}/{m}/{l}"][...] == 0) == (b[f"{p}/{m}/{l}"][...] == 0)).all(), (p, m, l)
print("same skips and eps-0 results")
' "$T/a1.h5" "$T/a3.h5"

echo "4. bad input"
cp "$T/a1.h5" "$T/keep.h5"; sum0=$(sha256sum <"$T/keep.h5")
expect_fail "too few networks" 1 "'$T/s.h5' holds 24 networks, but --members 23 needs 25" \
  $HA adversarial "$T/s.h5" --data "$DATA" --members 23 --out "$T/keep.h5"
expect_fail "too few baseline networks" 1 "'$T/deep.h5' holds 6 networks, but --members 5 needs 7" \
  $HA adversarial "$T/s.h5" --data "$DATA" --members 5 --baseline "$T/deep.h5" --out "$T/keep.h5"
expect_fail "--eps-step 0" 2 "--eps-step: expected a number in \[1e-06, 1\], got '0'" \
  $HA adversarial "$T/s.h5" --data "$DATA" --eps-step 0 --out "$T/keep.h5"
expect_fail "--eps-step above --eps-max" 2 "--eps-step 0.5 is larger than --eps-max 0.24" \
  $HA adversarial "$T/s.h5" --data "$DATA" --eps-step 0.5 --out "$T/keep.h5"
expect_fail "--eps-max 1.5" 2 "--eps-max: expected a number in \[0, 1\], got '1.5'" \
  $HA adversarial "$T/s.h5" --data "$DATA" --eps-max 1.5 --out "$T/keep.h5"
expect_fail "grid too fine" 2 "gives 240001 grid values \(at most 1024\)" \
  $HA adversarial "$T/s.h5" --data "$DATA" --eps-step 0.000001 --out "$T/keep.h5"
expect_fail "missing set" 1 "$T/none.h5" $HA adversarial "$T/none.h5" --data "$DATA" --out "$T/keep.h5"
if [ "$(sha256sum <"$T/keep.h5")" = "$sum0" ]; then pass "the existing --out file is unchanged"; else fail "bad input changed --out"; fi

echo "5. plot"
if "$PY" analysis/plot_adversarial.py "$T/a1.h5" --labels hyper,deep -o "$T/adv.png" >"$T/plot.out" 2>"$T/plot.err" \
   && [ -s "$T/adv.png" ] && [ "$(grep -c '^\(generated\|deep\),' "$T/plot.out")" -eq 16 ]; then
  pass "plot_adversarial.py writes a PNG and 16 medians ($(grep -c . "$T/plot.out") lines)"
else fail "plot_adversarial.py"; sed 's/^/      /' "$T/plot.err" | tail -5; fi
expect_fail "plot: unwritable output" 1 "plot_adversarial.py: error: cannot write '$T/nodir/x.png'" \
  "$PY" analysis/plot_adversarial.py "$T/a1.h5" -o "$T/nodir/x.png"
expect_fail "plot: not an adversarial result" 1 "plot_adversarial.py: error: result file '$T/s.h5'" \
  "$PY" analysis/plot_adversarial.py "$T/s.h5" -o "$T/x.png"

lib_finish
