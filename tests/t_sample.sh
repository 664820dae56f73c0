#!/usr/bin/env bash
# Sample sets (hypertrain sample) and the analyses that read them (hyperanalyze accuracy, ensemble,
# pca, paths), on a 3-step run of the tiny job (1,015 weights per network) on real MNIST (without
# it, on synthetic MNIST-format images: every check runs either way):
#   1. export: h5py opens the set and finds the documented attributes, datasets, shapes, dtypes and
#      chunking; gauge fixing holds; an independent numpy forward pass of the stored weights in the
#      documented layout reproduces the stored /metrics (tests/check_samples.py); h5dump -H shows
#      the structure;
#   2. the file does not depend on P, threads or --batch: P=1 twice and P=2, P=3 (MPI build) give
#      byte-identical files; other --threads/--batch give identical data (h5diff);
#   3. peak memory does not grow with N (256 vs 16,384 networks);
#   4. the reading API: `accuracy --recompute` (weights read back into the flat layout and run again)
#      equals the stored metrics; ensemble metrics equal a numpy recomputation; PCA projections equal
#      (x - mean) . components with x taken from the file in the documented order; path endpoints
#      are the sample set's networks 2p, 2p+1;
#   5. bad input: each ends non-zero with one line naming the file (and dataset): missing dataset,
#      wrong shape, wrong type, other format version, not a sample set, a checkpoint, truncated file,
#      altered architecture, a sample set from another target architecture, N larger than the set,
#      bad options.
# Prints PASS/FAIL lines; exits non-zero on any failure. Binaries: ./hypertrain, ./hyperanalyze
# (override with HT_BIN / HA_BIN).
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
lib_init sample 1
# Without MNIST every check still runs, on synthetic MNIST-format images (nothing here needs
# MNIST itself); the SKIPPED line says that real MNIST was not used.
lib_data

# expect_fail NAME PATTERN CMD...: non-zero exit and stderr matching PATTERN
expect_fail() {
  local name=$1 pat=$2; shift 2
  if "$@" >"$T/out" 2>"$T/err"; then fail "$name: exited 0"; return; fi
  if grep -qE -- "$pat" "$T/err"; then pass "$name: $(grep -m1 -E 'error' "$T/err" | cut -c1-170)"
  else fail "$name: message does not match /$pat/:"; sed 's/^/      /' "$T/err" | head -5; fi
}
# py NAME SCRIPT ARGS...: a Python check (exit 0 pass, 77 skipped)
py() {
  local name=$1 script=$2; shift 2
  local out; out=$("$PY" -c "$script" "$@" 2>&1); local rc=$?
  if [ $rc -eq 0 ]; then pass "$name: $out"
  elif [ $rc -eq 77 ]; then echo "  SKIPPED $name (no h5py)"
  else fail "$name: $out"; fi
}

echo "a checkpoint: 3 steps of jobs/tiny.json"
lib_tiny_run 3 && pass "tiny run wrote $(basename "$CK")" || { fail "tiny run"; tail -5 "$T/train.log"; exit 1; }

echo "export"
S=$T/s1.h5
common=(--checkpoint "$CK" --count 100 --seed 7 --metrics val --images 100 --batch 64 --data "$DATA")
if $BIN sample "${common[@]}" --out "$S" >"$T/s1.log" 2>&1; then pass "sample: $(grep 'wrote' "$T/s1.log" | cut -c1-150)"
else fail "sample exits 0"; tail -5 "$T/s1.log"; exit 1; fi
ls "$T" | grep -q '\.tmp\.' && fail "a temporary file was left behind" || pass "no temporary file left behind"
out=$("$PY" tests/check_samples.py "$S" --count 100 --checkpoint "$CK" --data "$DATA" --nets 8 2>&1); rc=$?
if [ $rc -eq 0 ]; then pass "h5py + numpy (tests/check_samples.py): $(echo "$out" | grep -c PASS) checks"; echo "$out" | sed 's/^/      /'
elif [ $rc -eq 77 ]; then echo "  SKIPPED check_samples.py ($out)"
else fail "check_samples.py:"; echo "$out" | sed 's/^/      /'; fi
if command -v h5dump >/dev/null; then
  h5dump -H "$S" >"$T/dump" 2>&1
  miss=""
  for pat in 'ATTRIBUTE "format"' 'ATTRIBUTE "format_version"' 'ATTRIBUTE "job"' 'ATTRIBUTE "target_architecture"' \
             'ATTRIBUTE "checkpoint"' 'ATTRIBUTE "step"' 'ATTRIBUTE "seed"' 'DATASET "z"' 'GROUP "weights"' 'GROUP "layer4"' \
             'SIMPLE { ( 100, 8 ) / ( 100, 8 ) }' 'SIMPLE { ( 100, 5, 5, 1, 4 ) / ( 100, 5, 5, 1, 4 ) }' \
             'SIMPLE { ( 100, 147, 5 ) / ( 100, 147, 5 ) }' 'DATASET "accuracy"' 'H5T_IEEE_F32LE'; do
    grep -qF "$pat" "$T/dump" || miss="$miss [$pat]"
  done
  [ -z "$miss" ] && pass "h5dump -H shows the attributes, groups, datasets and shapes" || fail "h5dump -H lacks:$miss"
else echo "  SKIPPED h5dump -H (no h5dump)"; fi

echo "the file does not depend on ranks, threads or block size"
$BIN sample "${common[@]}" --out "$T/s1b.h5" --quiet >/dev/null 2>&1
cmp -s "$S" "$T/s1b.h5" && pass "the same command twice: byte-identical files" || fail "two runs differ"
OMP_NUM_THREADS=2 $BIN sample "${common[@]}" --batch 32 --out "$T/s_t2.h5" --quiet >/dev/null 2>&1
if h5diff "$S" "$T/s_t2.h5" >"$T/h5diff.log" 2>&1; then pass "2 threads and --batch 32: identical data (h5diff)"
else fail "2 threads / --batch 32 differ: $(head -3 "$T/h5diff.log")"; fi
if ldd "$BIN" 2>/dev/null | grep -q libmpi && command -v mpirun >/dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  for P in 2 3; do
    if timeout 120 mpirun --allow-run-as-root --oversubscribe --bind-to none -np $P $BIN sample "${common[@]}" \
         --out "$T/s_p$P.h5" >"$T/p$P.log" 2>&1 && cmp -s "$S" "$T/s_p$P.h5"; then
      pass "P=$P (mpirun): byte-identical to P=1 ($(grep -o '[0-9]* rank(s)' "$T/p$P.log"))"
    else fail "P=$P differs from P=1 or failed:"; tail -3 "$T/p$P.log" | sed 's/^/      /'; fi
  done
else
  echo "  SKIPPED P=2 vs P=1 (not an MPI build: $BIN is not linked against MPI, or no mpirun)"
fi

echo "memory does not grow with N"
rss() { $BIN sample --checkpoint "$CK" --count "$1" --out "$T/m$1.h5" 2>/dev/null | grep -o 'peak memory [0-9.]* MB' | grep -o '[0-9.]*' | head -1; }
r1=$(rss 256); r2=$(rss 16384)
if [ -n "$r1" ] && [ -n "$r2" ] && [ "$(echo "$r2 - $r1 < 24" | bc)" -eq 1 ]; then
  pass "peak memory: 256 networks ${r1} MB, 16,384 networks (67 MB of weights) ${r2} MB"
else fail "peak memory grows: 256 -> ${r1:-?} MB, 16384 -> ${r2:-?} MB"; fi
rm -f "$T"/m*.h5

echo "analyses"
if $HA accuracy "$S" --out "$T/acc.h5" >"$T/acc.csv" 2>"$T/acc.err" && grep -q "using the stored" "$T/acc.err"; then
  pass "accuracy reuses the stored metrics: $(grep '^# accuracy' "$T/acc.csv" | cut -c3-110)"
else fail "accuracy (stored)"; cat "$T/acc.err"; fi
$HA accuracy "$S" --recompute --images 100 --data "$DATA" --out "$T/acc2.h5" >"$T/acc2.csv" 2>&1 || fail "accuracy --recompute"
py "accuracy --recompute (weights read back, run again) == stored /metrics" '
import sys, h5py, numpy as np
s, a, b = (h5py.File(p, "r") for p in sys.argv[1:4])
x, y, z = s["metrics/accuracy"][...], a["accuracy"][...], b["accuracy"][...]
assert np.array_equal(x, z) and np.array_equal(x, y), (x[:5], z[:5])
assert np.allclose(s["metrics/loss"][...], b["loss"][...], rtol=1e-12, atol=0)
assert int(a["histogram/counts"][...].sum()) == 100 and a["histogram/edges"].shape == (a["histogram/counts"].shape[0] + 1,)
print("100 accuracies equal, mean %.4f; histogram of %d bins sums to 100" % (a.attrs["mean"], a["histogram/counts"].shape[0]))
' "$S" "$T/acc.h5" "$T/acc2.h5"
grep -q '^bin_lo,bin_hi,count$' "$T/acc.csv" && pass "accuracy prints the histogram as CSV" || fail "accuracy CSV"

if $HA ensemble "$S" --k 4 --m 25 --images 100 --data "$DATA" --out "$T/ens.h5" >"$T/ens.csv" 2>"$T/ens.err"; then
  pass "ensemble --k 4 --m 25: $(grep '^# ensembles' "$T/ens.csv" | cut -c3-120)"
else fail "ensemble"; cat "$T/ens.err"; fi
py "ensemble metrics == numpy recomputation from the stored weights" '
import sys, json, h5py, numpy as np
sys.path.insert(0, "tests")
import check_samples as cs
s, r = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
job = json.loads(s.attrs["job"]); layers, ops = cs.target_layers(job)
n_img = int(r.attrs["images"]); data = sys.argv[3]
imgs = cs.read_idx(cs.find_idx(data, "train-images-idx3-ubyte"))[:n_img].astype(np.float64).reshape(n_img, 28, 28, 1) / 255
y = cs.read_idx(cs.find_idx(data, "train-labels-idx1-ubyte"))[:n_img]
sizes = list(r["sizes"][...]); assert sizes == [1, 2, 4, 8, 16, 25], sizes
assert r["curve/majority_acc"].shape == (6, 4) and r["reliability/count"].shape == (6, 15)
j = 1   # ensemble 1 = networks 25..49
P = np.stack([cs.forward(ops, [(s[f"weights/layer{i+1}/kernel"][k].astype(np.float64), s[f"weights/layer{i+1}/bias"][k].astype(np.float64)) for i in range(len(layers))], imgs) for k in range(25 * j, 25 * j + 25)])
votes = np.zeros((n_img, 10)); [np.add.at(votes, (np.arange(n_img), p.argmax(1)), 1) for p in P]
maj = float(np.mean(votes.argmax(1) == y)); mp = P.mean(0)
mpa = float(np.mean(mp.argmax(1) == y)); nll = float(np.mean(-np.log(mp[np.arange(n_img), y] + 1e-30)))
brier = float(np.mean(np.sum((mp - np.eye(10)[y]) ** 2, 1)))
conf = mp.max(1); ok = mp.argmax(1) == y; b = np.clip(np.ceil(conf * 15).astype(int) - 1, 0, 14)
ece = sum(np.sum(b == q) / n_img * abs(ok[b == q].mean() - conf[b == q].mean()) for q in range(15) if np.any(b == q))
got = [r[f"ensembles/{m}"][j] for m in ("majority_acc", "mean_prob_acc", "nll", "brier", "ece")]
want = [maj, mpa, nll, brier, ece]
assert abs(got[0] - want[0]) <= 1.0 / n_img and abs(got[1] - want[1]) <= 1.0 / n_img, (got, want)
assert all(abs(g - w) <= 1e-4 * max(1, abs(w)) for g, w in zip(got[2:], want[2:])), (got, want)
single = r["networks/accuracy"][...]
assert np.allclose(r["curve/majority_acc"][0], single[::25]) and np.allclose(r["curve/mean_prob_acc"][0], single[::25])
print("ensemble 1 of 25: majority %.4f, mean-prob %.4f, NLL %.4f, Brier %.4f, ECE %.4f; size-1 row == single networks" % tuple(got))
' "$S" "$T/ens.h5" "$DATA"

for what in filter:2:1 layer:1 all; do
  if $HA pca "$S" --what $what --components 4 --out "$T/pca_${what//:/_}.h5" >"$T/pca.csv" 2>"$T/pca.err"; then
    pass "pca --what $what: $(sed -n 2p "$T/pca.csv" | cut -c3-100)"
  else fail "pca --what $what"; cat "$T/pca.err"; fi
done
py "PCA: components orthonormal; projections == (x - mean) . components, x in the documented order" '
import sys, h5py, numpy as np
s = h5py.File(sys.argv[1], "r")
def vec(which, k):
    if which == "filter_2_1":
        return np.concatenate([s["weights/layer2/kernel"][k][..., 1].ravel(), [s["weights/layer2/bias"][k][1]]])
    if which == "layer_1":
        K, b = s["weights/layer1/kernel"][k], s["weights/layer1/bias"][k]
        return np.concatenate([np.concatenate([K[..., i].ravel(), [b[i]]]) for i in range(K.shape[-1])])
    parts = []
    for l in range(1, 5):
        K, b = s[f"weights/layer{l}/kernel"][k], s[f"weights/layer{l}/bias"][k]
        parts += [np.concatenate([K[..., i].ravel(), [b[i]]]) for i in range(K.shape[-1])]
    return np.concatenate(parts)
msg = []
for which in ("filter_2_1", "layer_1", "all"):
    r = h5py.File(sys.argv[2] + "_" + which + ".h5", "r")
    C, mu, Pj = r["components"][...], r["mean"][...], r["projections"][...]
    X = np.stack([vec(which, k) for k in range(100)]).astype(np.float64)
    assert C.shape[1] == X.shape[1], (which, C.shape, X.shape)
    assert np.allclose(C @ C.T, np.eye(C.shape[0]), atol=1e-9)
    assert np.allclose(mu, X.mean(0), atol=1e-6)
    assert np.allclose((X - mu) @ C.T, Pj, atol=1e-6 * np.abs(Pj).max())
    Xc = X - X.mean(0)
    ev = np.linalg.eigvalsh(Xc.T @ Xc if X.shape[1] <= X.shape[0] else Xc @ Xc.T)[::-1][:4] / (len(X) - 1)
    assert np.allclose(r["explained_variance"][...], ev, rtol=1e-6), (r["explained_variance"][...], ev)
    msg.append("%s D=%d (%s)" % (which, X.shape[1], r.attrs["method"]))
print("; ".join(msg) + "; variances == numpy eigvalsh")
' "$S" "$T/pca"

if $HA paths "$CK" --pairs 2 --points 5 --seed 7 --images 100 --data "$DATA" --out "$T/paths.h5" >"$T/paths.csv" 2>"$T/paths.err"; then
  pass "paths --pairs 2 --points 5: $(sed -n 3p "$T/paths.csv")"
else fail "paths"; cat "$T/paths.err"; fi
py "paths: endpoints are networks 2p, 2p+1 of the sample set; both paths meet there" '
import sys, h5py, numpy as np
s, r = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
z = s["z"][...]; acc = s["metrics/accuracy"][...]
for p in range(2):
    assert np.array_equal(r["z1"][p], z[2 * p]) and np.array_equal(r["z2"][p], z[2 * p + 1])
    ai, ad = r["interpolated/accuracy"][p], r["direct/accuracy"][p]
    # the same z through the hypernetwork in another batch: equal up to float reordering (one image)
    assert abs(ai[-1] - acc[2 * p]) <= 0.0101 and abs(ai[0] - acc[2 * p + 1]) <= 0.0101, (ai, acc[:4])
    assert ad[0] == ai[0] and ad[-1] == ai[-1]
    d = r["distance"][p]; assert d[0] < 1e-3 and d[-1] < 1e-3 and d[2] > 0, d
assert np.allclose(r["t"][...], np.linspace(0, 1, 5))
print("pair 0: interpolated %s, direct %s" % (np.round(r["interpolated/accuracy"][0], 3), np.round(r["direct/accuracy"][0], 3)))
' "$S" "$T/paths.h5"

echo "plot scripts"
if "$PY" -c "import matplotlib" 2>/dev/null; then
  for spec in "accuracy acc.h5" "ensemble ens.h5" "pca pca_filter_2_1.h5" "paths paths.h5"; do
    set -- $spec
    if "$PY" analysis/plot_$1.py "$T/$2" -o "$T/$1.png" >"$T/plot.log" 2>&1 && [ -s "$T/$1.png" ]; then
      pass "analysis/plot_$1.py writes a PNG"
    else fail "plot_$1.py:"; tail -3 "$T/plot.log" | sed 's/^/      /'; fi
  done
else echo "  SKIPPED plot scripts (no matplotlib)"; fi

echo "bad input: clear errors, non-zero exit"
for kind in missing-bias bad-shape float64-z version2 wrong-format altered-arch extra-layer no-job; do
  "$PY" tests/check_samples.py --corrupt $kind "$S" "$T/bad_$kind.h5" >/dev/null 2>&1
done
if [ -f "$T/bad_missing-bias.h5" ]; then
  expect_fail "missing dataset" "bad_missing-bias.h5.*missing dataset /weights/layer2/bias" $HA accuracy "$T/bad_missing-bias.h5"
  expect_fail "wrong shape" "bad_bad-shape.h5.*/weights/layer1/kernel has shape \(100, 5, 5, 1, 5\) but its target architecture needs \(100, 5, 5, 1, 4\)" $HA pca "$T/bad_bad-shape.h5" --what all
  expect_fail "wrong type" "bad_float64-z.h5.*/z has type float64" $HA accuracy "$T/bad_float64-z.h5"
  expect_fail "other format version" "bad_version2.h5.*format_version 2.*reads only version 1" $HA accuracy "$T/bad_version2.h5"
  expect_fail "not a sample set" "bad_wrong-format.h5.*is not a hypertrain sample set" $HA ensemble "$T/bad_wrong-format.h5"
  expect_fail "altered architecture attribute" "bad_altered-arch.h5.*does not match the architecture of its stored job" $HA accuracy "$T/bad_altered-arch.h5"
  expect_fail "extra layer" "bad_extra-layer.h5.*/weights holds 5 entries but its target architecture has 4 layers" $HA accuracy "$T/bad_extra-layer.h5"
  expect_fail "no job attribute" "bad_no-job.h5.*missing root attribute \"job\"" $HA accuracy "$T/bad_no-job.h5"
else echo "  SKIPPED damaged copies (no h5py)"; fi
expect_fail "another target architecture" "s1.h5' is a sample set from another target architecture: it holds networks of \[input 28x28x1 \| conv 5x5x1->4" \
  $HA accuracy "$S" --job jobs/smoke.json
expect_fail "N larger than the set (ensemble)" "s1.h5' holds 100 networks, but --k 5 x --m 30 needs 150" $HA ensemble "$S" --k 5 --m 30
expect_fail "N larger than the set (pca)" "s1.h5' holds 100 networks, but --n needs 101" $HA pca "$S" --what layer:1 --n 101
expect_fail "N larger than the set (accuracy)" "s1.h5' holds 100 networks, but --n needs 500" $HA accuracy "$S" --n 500
expect_fail "a checkpoint given as a sample set" "is a hypertrain checkpoint, not a sample set" $HA accuracy "$CK"
head -c 3000 "$S" >"$T/cut.h5"
expect_fail "truncated file" "cut.h5' is not a readable HDF5 file" $HA accuracy "$T/cut.h5"
expect_fail "missing file" "cannot open sample set '.*nope.h5': No such file" $HA accuracy "$T/nope.h5"
expect_fail "pca: bad --what" "--what layer:9: the target network has layers 1..4" $HA pca "$S" --what layer:9
expect_fail "pca: filter out of range" "layer 2 has filters 0..2" $HA pca "$S" --what filter:2:3
expect_fail "sample: --checkpoint required" "--checkpoint CKPT is required" $BIN sample --count 4 --out "$T/x.h5"
expect_fail "sample: --batch not a multiple of 32" "--batch must be a multiple of 32" $BIN sample --checkpoint "$CK" --count 4 --out "$T/x.h5" --batch 50
expect_fail "sample: existing output" "s1.h5' already exists \(use --force" $BIN sample --checkpoint "$CK" --count 4 --out "$S"
expect_fail "sample: missing checkpoint" "cannot open checkpoint '.*nope.h5'" $BIN sample --checkpoint "$T/nope.h5" --count 4 --out "$T/x.h5"
expect_fail "sample: bad --metrics" "--metrics: expected val, test or none" $BIN sample --checkpoint "$CK" --count 4 --out "$T/x.h5" --metrics train
expect_fail "sample: unwritable output" "cannot write sample set '.*/no/such/dir/x.h5'" $BIN sample --checkpoint "$CK" --count 4 --out "$T/no/such/dir/x.h5"
$BIN jobs/toy.json --out "$T/toy" --set steps=1 --quiet >/dev/null 2>&1
[ -f "$T/toy/ckpt_00000001.h5" ] && expect_fail "sample: toy checkpoint" "toy task.*not networks" $BIN sample --checkpoint "$T/toy/ckpt_00000001.h5" --count 4 --out "$T/x.h5"
[ ! -e "$T/x.h5" ] && pass "failed exports left no output file" || fail "a failed export left $T/x.h5"
# a write that fails half way (a 20 MB file-size limit on an 80 MB set, as a full disk; a lower
# limit stops Open MPI's own start-up in an MPI build): one line, exit 1 (no crash in
# HDF5's exit handler), the file already under that name unchanged, no temporary file left
cp "$S" "$T/keep.h5"
( ulimit -f 20000; trap '' XFSZ; exec $BIN sample --checkpoint "$CK" --count 20000 --out "$T/keep.h5" --force --quiet ) >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "cannot write sample set '.*keep.h5': H5Dwrite failed .*File too large" "$T/err" && cmp -s "$S" "$T/keep.h5" \
   && ! ls "$T" | grep -q 'keep.h5.tmp'; then
  pass "write failing half way: exit 1, $(grep -o "H5Dwrite failed on [^ ]*" "$T/err"), old file intact, no temporary file"
else fail "write failing half way: exit $rc, old file $(cmp -s "$S" "$T/keep.h5" && echo intact || echo CHANGED): $(head -c 300 "$T/err")"; fi

lib_finish
