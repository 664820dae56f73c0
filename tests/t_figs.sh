#!/usr/bin/env bash
# The tools for the paper's Figs. 3, 6/9-15 and 7 (docs/analysis.md), end to end on the tiny job
# (1,015 weights per network), each output checked against values computed here with h5py/numpy
# from the sample sets in their documented (natural) layout, never from the code under test:
#   1. filterdiv on a set with one filter made constant across networks: that filter has
#      diversity 0 and is the least diverse; every filter's diversity and next-layer norm, their
#      Pearson/Spearman correlations and the least/most diverse filters' slices equal numpy's;
#   2. pca --baseline: the deep ensemble's projections equal (x - mean) . components^T of its
#      vectors read with h5py (plain, --standardize, and --what all); the Gaussian null's mean and
#      covariance on the axes match 0 and numpy's eigenvalues of the generated set within 5
#      standard errors; skewness/kurtosis attributes equal numpy's; the baseline is gauge-fixed
#      like the generated set (numpy check), and a --no-gauge set or one of another architecture
#      is refused with one line, the existing --out unchanged;
#   3. paths + plot_paths.py: the paper's Fig. 7 from a checkpoint;
#   4. the plot scripts write PNGs and fail (non-zero, one line) on a foreign result, a bad option
#      or an unwritable output.
# Provenance (command line, tool version, SHA-256 of the inputs) and axes/meaning attributes of
# every new dataset are checked. Without MNIST it runs on synthetic images (tests/synthetic_mnist.sh)
# and prints a SKIPPED line saying that real MNIST was not used. Exit status non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
BIN=${HT_BIN:-./hypertrain}
HA=${HA_BIN:-./hyperanalyze}
DATA=${HYPERTRAIN_TEST_DATA:-../shared/data/mnist}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
fails=0; passes=0
pass() { passes=$((passes+1)); echo "  PASS $*"; }
fail() { fails=$((fails+1)); echo "  FAIL $*"; }
T=$(mktemp -d /tmp/ht_figs_XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1

[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }
[ -x "$HA" ] || { echo "FAIL: $HA not built"; exit 1; }
"$PY" -c "import h5py, numpy, matplotlib" 2>/dev/null || { echo "FAIL: python3 with h5py, numpy, matplotlib is needed (scripts/setup.sh)"; exit 1; }
VERIFY=()
if [ ! -d "$DATA" ]; then
  echo "  SKIPPED (no MNIST in $DATA): real MNIST; every part below runs on synthetic MNIST-format images (tests/synthetic_mnist.sh)"
  DATA=$T/synthetic-mnist
  bash tests/synthetic_mnist.sh "$DATA" || { echo "FAIL: tests/synthetic_mnist.sh"; exit 1; }
  VERIFY=(--set data.verify=false)
fi
DATA=$(cd "$DATA" && pwd)
TINY=jobs/tiny.json
if [ ${#VERIFY[@]} -gt 0 ]; then
  TINY=$T/tiny.json
  "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); j["data"]["verify"] = False; json.dump(j, open(sys.argv[2], "w"))' jobs/tiny.json "$TINY"
fi

# expect_fail NAME STATUS PATTERN CMD...: exit status STATUS and stderr matching PATTERN (one line)
expect_fail() {
  local name=$1 want=$2 pat=$3; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -ne "$want" ]; then fail "$name: exit $rc, expected $want"; sed 's/^/      /' "$T/err" | head -3; return; fi
  if [ "$(wc -l <"$T/err")" -ne 1 ]; then fail "$name: $(wc -l <"$T/err") lines on stderr, expected one"; sed 's/^/      /' "$T/err" | head -5; return; fi
  if grep -qE -- "$pat" "$T/err"; then pass "$name: $(cut -c1-190 "$T/err")"
  else fail "$name: message does not match /$pat/:"; sed 's/^/      /' "$T/err" | head -5; fi
}
# py NAME SCRIPT ARGS...: a Python check (exit 0 = pass)
py() {
  local name=$1 script=$2; shift 2
  local out; out=$("$PY" -c "$script" "$@" 2>&1); local rc=$?
  if [ $rc -eq 0 ]; then pass "$name: $out"; else fail "$name: $out"; fi
}
# run NAME CMD...: exit 0 expected (stdout kept in $T/NAME.out)
run() {
  local name=$1; shift
  if "$@" >"$T/$name.out" 2>"$T/$name.err"; then pass "$name runs"
  else fail "$name: exit $?"; sed 's/^/      /' "$T/$name.err" | tail -5; fi
}
# plot NAME SCRIPT ARGS...: writes a non-empty PNG $T/NAME.png
plot() {
  local name=$1 script=$2; shift 2
  if "$PY" "analysis/$script" "$@" -o "$T/$name.png" >"$T/plot.log" 2>&1 && [ -s "$T/$name.png" ]; then
    pass "$script $name writes a PNG"
  else fail "$script $name:"; tail -3 "$T/plot.log" | sed 's/^/      /'; fi
}

echo "inputs: 3 steps of jobs/tiny.json, 1,000 generated networks; a deep ensemble of 6"
$BIN "$TINY" --data "$DATA" "${VERIFY[@]}" --out "$T/run" --set steps=3 --quiet >"$T/train.log" 2>&1
$BIN sample --checkpoint "$T/run/ckpt_00000003.h5" --count 1000 --out "$T/s.h5" --metrics none --quiet >/dev/null 2>&1
[ -f "$T/s.h5" ] || { echo "FAIL: no sample set"; tail -3 "$T/train.log"; exit 1; }
run baseline $HA baseline --job "$TINY" --data "$DATA" --members 6 --steps 40 --lr 3e-3 --metrics none --out "$T/deep.h5"
[ -f "$T/deep.h5" ] || { echo "FAIL: no baseline set"; exit 1; }

echo "1. filterdiv: a set whose layer-1 filter 1 is the same in every network"
"$PY" - "$T/s.h5" "$T/c.h5" <<'EOF' || { echo "FAIL: building the constant-filter set"; exit 1; }
import shutil, sys, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:   # network 0's filter 1 (gauge-fixed) copied into every network
    k, b = f["weights/layer1/kernel"], f["weights/layer1/bias"]
    k[:, :, :, :, 1] = k[0, :, :, :, 1]
    b[:, 1] = b[0, 1]
EOF
run filterdiv $HA filterdiv "$T/c.h5" --n 400 --samples 9 --out "$T/fd.h5"
py "filterdiv: the constant filter is the least diverse (0); diversity, next_norm, correlations, slices == numpy" '
import hashlib, sys, h5py, numpy as np
s, r = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
N, S = 400, 9
K = [s[f"weights/layer{l}/kernel"][:N].astype(np.float64) for l in range(1, 5)]
B = [s[f"weights/layer{l}/bias"][:N].astype(np.float64) for l in range(1, 5)]
def filt(l, f):        # (N, fan_in + 1): the filter in its natural order, then its bias
    k = K[l]
    return np.concatenate([k[..., f].reshape(N, -1), B[l][:, f:f + 1]], axis=1)
def next_slice(l, c):  # (N, ...): layer l+1 weights reading channel c of layer l
    k = K[l + 1]
    if k.ndim == 5: return k[:, :, :, c, :]                      # conv: (N, kh, kw, cin, cout)
    C = K[l].shape[-1]                                          # fc after conv: rows (h, w, c) NHWC
    return k.reshape(N, -1, C, k.shape[-1])[:, :, c, :]
def ranks(x): return np.array([(x < v).sum() + ((x == v).sum() + 1) / 2 for v in x])
assert int(r.attrs["layers"]) == 3 and int(r.attrs["networks"]) == N and int(r.attrs["samples_shown"]) == S
assert r.attrs["samples_sha256"] == hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()
assert r.attrs["command"] == "hyperanalyze filterdiv" and "--n 400" in r.attrs["command_line"] and r.attrs["tool_version"]
msg = []
for l in range(3):
    g = r[f"layer{l + 1}"]
    F = K[l].shape[-1]
    div = np.array([((filt(l, f) - filt(l, f).mean(0)) ** 2).sum() / (filt(l, f) ** 2).sum() for f in range(F)])
    nn = np.array([np.sqrt((next_slice(l, f) ** 2).reshape(N, -1).sum(1).mean()) for f in range(F)])
    assert np.allclose(g["diversity"][...], div, rtol=1e-9, atol=1e-12), (g["diversity"][...], div)
    assert np.allclose(g["next_norm"][...], nn, rtol=1e-9), (g["next_norm"][...], nn)
    for name in ("diversity", "next_norm", "channel_msq", "least/slices", "most/slices", "least/filter"):
        assert g[name].attrs["axes"] and g[name].attrs["meaning"], name
    pr, sp = np.corrcoef(div, nn)[0, 1], np.corrcoef(ranks(div), ranks(nn))[0, 1]
    assert abs(g.attrs["pearson"] - pr) < 1e-9 and abs(g.attrs["spearman"] - sp) < 1e-9, (g.attrs["pearson"], pr)
    lo, hi = int(np.argmin(div)), int(np.argmax(div))
    assert int(g.attrs["least_diverse"]) == lo and int(g.attrs["most_diverse"]) == hi
    for which, f in (("least", lo), ("most", hi)):
        kk = K[l][:S, ..., f] if K[l].ndim == 5 else K[l][:S, :, f].reshape((S,) + g[which + "/filter"].shape[1:])
        ch = int(g[which].attrs["channel"])
        chsq = (kk ** 2).reshape(S, -1, kk.shape[-1]).sum(1)   # only the first S: the channel is chosen on all N
        assert int(g[which].attrs["filter"]) == f and np.array_equal(g[which + "/filter"][...], kk)
        assert np.array_equal(g[which + "/slices"][...], kk[..., ch])
        full = (filt(l, f)[:, :-1] ** 2).reshape(N, -1, kk.shape[-1]).sum(1).mean(0)
        assert ch == int(np.argmax(full)), (ch, full)
    if l == 0:
        assert lo == 1 and div[1] == 0 and g["diversity"][1] == 0, (lo, g["diversity"][...])
    msg.append(f"layer {l + 1}: least {lo} ({div[lo]:.3g}), most {hi} ({div[hi]:.3g}), Pearson {pr:.2f}")
print("; ".join(msg))
' "$T/c.h5" "$T/fd.h5"
if grep -q "^1,1,0.00000000," "$T/filterdiv.out" && grep -q "^# layer 1: least diverse filter 1 (0," "$T/filterdiv.out"; then
  pass "filterdiv stdout: filter 1 of layer 1 has diversity 0 and is named the least diverse"
else fail "filterdiv stdout:"; head -12 "$T/filterdiv.out" | sed 's/^/      /'; fi
expect_fail "filterdiv: --samples above --n" 2 "--samples 30: at most --n \(20\)" $HA filterdiv "$T/c.h5" --n 20 --samples 30
expect_fail "filterdiv: --n beyond the set" 1 "holds 1000 networks, but --n needs 1001" $HA filterdiv "$T/c.h5" --n 1001 --out "$T/x.h5"
expect_fail "filterdiv: missing set" 1 "nothing.h5" $HA filterdiv "$T/nothing.h5"
expect_fail "filterdiv: unknown option" 2 "unknown option '--frob'" $HA filterdiv "$T/c.h5" --frob 1
cp "$T/fd.h5" "$T/fd_keep.h5"
expect_fail "filterdiv: an error leaves --out unchanged" 1 "needs 1001" $HA filterdiv "$T/c.h5" --n 1001 --out "$T/fd.h5"
cmp -s "$T/fd.h5" "$T/fd_keep.h5" && pass "existing --out unchanged after the error" || fail "existing --out changed"

echo "2. pca: the deep ensemble and a Gaussian on the generated set's axes"
run pca_layer2 $HA pca "$T/s.h5" --what layer:2 --n 1000 --components 4 --baseline "$T/deep.h5" --out "$T/p2.h5"
run pca_std $HA pca "$T/s.h5" --what filter:1:2 --n 1000 --components 3 --standardize --baseline "$T/deep.h5" --seed 5 --out "$T/p1.h5"
run pca_all $HA pca "$T/s.h5" --what all --n 500 --components 4 --baseline "$T/deep.h5" --out "$T/pa.h5"
py "pca: baseline projections == (x/scale - mean) . components^T of its vectors read with h5py; moments" '
import hashlib, sys, h5py, numpy as np
t = sys.argv[1]
def vectors(path, what, n):
    s = h5py.File(path, "r")
    def filt(l, k, i):
        return np.concatenate([s[f"weights/layer{l}/kernel"][k][..., i].ravel(), [s[f"weights/layer{l}/bias"][k][i]]])
    def layer(l, k):
        return np.concatenate([filt(l, k, i) for i in range(s[f"weights/layer{l}/bias"].shape[1])])
    n = min(n, s["z"].shape[0])
    if what == "layer:2": return np.stack([layer(2, k) for k in range(n)]).astype(np.float64)
    if what == "filter:1:2": return np.stack([filt(1, k, 2) for k in range(n)]).astype(np.float64)
    return np.stack([np.concatenate([layer(l, k) for l in range(1, 5)]) for k in range(n)]).astype(np.float64)
def mom(P):
    c = P - P.mean(0); m2 = (c ** 2).mean(0)
    return P.mean(0), P.var(0, ddof=1), (c ** 3).mean(0) / m2 ** 1.5, (c ** 4).mean(0) / m2 ** 2 - 3
deep_sha = hashlib.sha256(open(t + "/deep.h5", "rb").read()).hexdigest()
msg = []
for name, what, n in (("p2", "layer:2", 1000), ("p1", "filter:1:2", 1000), ("pa", "all", 500)):
    r = h5py.File(f"{t}/{name}.h5", "r")
    C, mu = r["components"][...], r["mean"][...]
    scale = r["scale"][...] if "scale" in r else 1.0
    Xb = vectors(t + "/deep.h5", what, n)
    Pb = r["baseline/projections"][...]
    ref = (Xb / scale - mu) @ C.T
    err = np.abs(Pb - ref).max() / np.abs(ref).max()
    assert Pb.shape == (6, C.shape[0]) and err < 1e-9, (name, err)
    for grp, P in (("generated", r["projections"][...]), ("baseline", Pb), ("gaussian", r["gaussian/projections"][...])):
        for got, want, nm in zip([r[f"{grp}/{k}"][...] for k in ("mean", "variance", "skewness", "excess_kurtosis")], mom(P), "mvsk"):
            assert np.allclose(got, want, rtol=1e-9, atol=1e-9), (name, grp, nm, got, want)
        assert r[grp].attrs["label"]
    Xtot = Xb / scale
    tv = Xtot.var(0, ddof=1).sum()
    assert abs(r["baseline"].attrs["total_variance"] - tv) < 1e-9 * tv
    assert abs(r["baseline"].attrs["captured_ratio"] - Pb.var(0, ddof=1).sum() / tv) < 1e-9
    assert r.attrs["baseline_sha256"] == deep_sha and r.attrs["command"] == "hyperanalyze pca"
    for ds in ("components", "explained_variance", "projections", "gaussian/projections", "baseline/projections"):
        assert r[ds].attrs["axes"] and r[ds].attrs["meaning"], ds
    cap = r["baseline"].attrs["captured_ratio"]
    msg.append(f"{what}: max rel. error {err:.1e}, baseline variance captured by the axes {cap:.3f}")
print("; ".join(msg))
' "$T"
py "pca: the Gaussian null has mean 0 and covariance diag(numpy eigenvalues of the generated set) within 5 standard errors" '
import sys, h5py, numpy as np
t = sys.argv[1]
s = h5py.File(t + "/s.h5", "r")
K, B = s["weights/layer2/kernel"][:1000], s["weights/layer2/bias"][:1000]
X = np.stack([np.concatenate([np.concatenate([K[k][..., i].ravel(), [B[k][i]]]) for i in range(B.shape[1])]) for k in range(1000)]).astype(np.float64)
lam = np.linalg.eigvalsh(np.cov(X, rowvar=False))[::-1][:4]          # independent of the tool
r = h5py.File(t + "/p2.h5", "r")
G = r["gaussian/projections"][...]
n = len(G)
assert G.shape == (1000, 4), G.shape
cov = np.cov(G, rowvar=False)
# standard errors of a sample of n Gaussian draws: mean sqrt(lam/n); variance lam sqrt(2/(n-1));
# covariance sqrt(lam_i lam_j / n) (independent components)
zm = np.abs(G.mean(0)) / np.sqrt(lam / n)
zv = np.abs(np.diag(cov) - lam) / (lam * np.sqrt(2 / (n - 1)))
off = np.abs(cov - np.diag(np.diag(cov))) / np.sqrt(np.outer(lam, lam) / n)
assert zm.max() < 5 and zv.max() < 5 and off.max() < 5, (zm, zv, off)
assert np.allclose(r["explained_variance"][...], lam, rtol=1e-6)
G2 = h5py.File(t + "/p1.h5", "r")["gaussian/projections"][...]
assert not np.allclose(G[:, :3] / np.sqrt(lam[:3]), G2 / G2.std(0))   # --seed 5 draws others
print(f"largest z: mean {zm.max():.2f}, variance {zv.max():.2f}, covariance {off.max():.2f}; variances {np.round(np.diag(cov), 3).tolist()} vs {np.round(lam, 3).tolist()}")
' "$T"
py "the deep ensemble is gauge-fixed like the generated networks (numpy: filter RMS 1 on layers 1-3, last biases mean 0), and so is the generated set" '
import sys, h5py, numpy as np
out = []
for p in sys.argv[1:]:
    s = h5py.File(p, "r")
    dev = []
    for l in range(1, 4):
        K, B = s[f"weights/layer{l}/kernel"][...], s[f"weights/layer{l}/bias"][...]
        W = np.concatenate([K.reshape(K.shape[0], -1, K.shape[-1]), B[:, None, :]], axis=1).astype(np.float64)
        dev.append(np.abs(np.sqrt((W ** 2).mean(1)) - 1).ravel())
    dev = np.concatenate(dev)
    bm = np.abs(s["weights/layer4/bias"][...].astype(np.float64).mean(1)).max()
    # the gauge divides by sqrt(ms + 1e-8) + 1e-8 (DESIGN.md): a filter of small raw norm stays
    # measurably below RMS 1 (up to 3e-2 at initialization), so the median is held to 1e-5
    assert np.median(dev) < 1e-5 and dev.max() < 5e-2 and bm < 1e-5, (p, np.median(dev), dev.max(), bm)
    out.append(f"median |rms - 1| {np.median(dev):.1e} (max {dev.max():.1e}), |mean last bias| {bm:.1e}")
print("; ".join(out))
' "$T/deep.h5" "$T/s.h5"
$HA baseline --job "$TINY" --data "$DATA" --members 3 --steps 5 --metrics none --no-gauge --out "$T/deep_ng.h5" >/dev/null 2>&1
cp "$T/p2.h5" "$T/p2_keep.h5"
expect_fail "pca: a baseline that is not gauge-fixed" 1 "deep_ng.h5' is not gauge-fixed .* but '.*s.h5' is gauge-fixed" \
  $HA pca "$T/s.h5" --what layer:1 --baseline "$T/deep_ng.h5" --out "$T/p2.h5"
cmp -s "$T/p2.h5" "$T/p2_keep.h5" && pass "existing --out unchanged after the error" || fail "existing --out changed"
"$PY" - "$TINY" "$T/tiny5.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1])); j["target"]["layers"][0]["filters"] = 5; json.dump(j, open(sys.argv[2], "w"))
EOF
$HA baseline --job "$T/tiny5.json" --data "$DATA" --members 2 --steps 1 --metrics none --out "$T/deep5.h5" >/dev/null 2>&1
expect_fail "pca: a baseline of another architecture" 1 "deep5.h5' is a sample set from another target architecture" \
  $HA pca "$T/s.h5" --what layer:1 --baseline "$T/deep5.h5" --out "$T/p2.h5"
expect_fail "pca: missing baseline" 1 "nothing.h5" $HA pca "$T/s.h5" --what layer:1 --baseline "$T/nothing.h5" --out "$T/p2.h5"
expect_fail "pca: --baseline without a value" 2 "--baseline needs a value" $HA pca "$T/s.h5" --what layer:1 --baseline

echo "3. paths (Fig. 7)"
run paths $HA paths "$T/run/ckpt_00000003.h5" --pairs 4 --points 6 --images 100 --data "$DATA" --out "$T/paths.h5"
py "paths: interpolated and direct paths meet at the endpoints" '
import sys, h5py, numpy as np
r = h5py.File(sys.argv[1], "r")
ai, ad = r["interpolated/accuracy"][...], r["direct/accuracy"][...]
assert ai.shape == ad.shape == (4, 6) and np.array_equal(ai[:, [0, -1]], ad[:, [0, -1]])
assert (r["distance"][:, [0, -1]] < 1e-3).all() and (r["distance"][:, 1:-1] > 0).all()
print(f"pair 1: interpolated {np.round(ai[0], 2).tolist()}, direct {np.round(ad[0], 2).tolist()}")
' "$T/paths.h5"

run filters $HA filters "$T/c.h5" --layer 2 --filter 1 --channel 2 --samples 4 --out "$T/f2.h5"
py "paths and filters results: provenance (SHA-256 of the input, command line, tool version), axes/meaning on every dataset" '
import hashlib, sys, h5py
for path, role, src in ((sys.argv[1], "checkpoint", sys.argv[2]), (sys.argv[3], "samples", sys.argv[4])):
    r = h5py.File(path, "r")
    assert r.attrs[role + "_sha256"] == hashlib.sha256(open(src, "rb").read()).hexdigest() and r.attrs[role] == src
    assert r.attrs["tool_version"] and r.attrs["command_line"].startswith("hyperanalyze " + r.attrs["command"].split()[1])
    names = []
    r.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    bad = [n for n in names if not (r[n].attrs.get("axes") and r[n].attrs.get("meaning"))]
    assert not bad, (path, bad)
print("paths: %d root attributes, filters: %d" % tuple(len(h5py.File(p, "r").attrs) for p in sys.argv[1::2]))
' "$T/paths.h5" "$T/run/ckpt_00000003.h5" "$T/f2.h5" "$T/c.h5"

echo "4. plots"
plot fig3 plot_filters.py --diversity "$T/fd.h5"
plot fig3_layers plot_filters.py --diversity "$T/fd.h5" --layers 1,2
plot pca_layer2 plot_pca.py "$T/p2.h5"
plot pca_labels plot_pca.py "$T/pa.h5" --components 4 --labels "hypernetwork,deep ensemble,Gaussian"
plot fig7 plot_paths.py "$T/paths.h5" --pairs 3
"$HA" pca "$T/s.h5" --what layer:1 --components 2 --out "$T/p_old.h5" >/dev/null 2>&1
"$PY" -c 'import sys, h5py; f = h5py.File(sys.argv[1], "r+"); del f["gaussian"]' "$T/p_old.h5"
plot pca_without_nulls plot_pca.py "$T/p_old.h5"
expect_fail "plot_pca.py: a filterdiv result" 1 "it is a result of 'hyperanalyze filterdiv', not of hyperanalyze pca" "$PY" analysis/plot_pca.py "$T/fd.h5" -o "$T/x.png"
expect_fail "plot_filters.py --diversity: a pca result" 1 "not of hyperanalyze filterdiv" "$PY" analysis/plot_filters.py --diversity "$T/p2.h5" -o "$T/x.png"
expect_fail "plot_paths.py: a pca result" 1 "not of hyperanalyze paths" "$PY" analysis/plot_paths.py "$T/p2.h5" -o "$T/x.png"
expect_fail "plot_pca.py: unwritable output" 1 "cannot write '$T/no/such/dir/x.png'" "$PY" analysis/plot_pca.py "$T/p2.h5" -o "$T/no/such/dir/x.png"
expect_fail "plot_paths.py: unwritable output" 1 "cannot write" "$PY" analysis/plot_paths.py "$T/paths.h5" -o "$T/no/such/dir/x.png"
expect_fail "plot_filters.py: unwritable output" 1 "cannot write" "$PY" analysis/plot_filters.py --diversity "$T/fd.h5" -o "$T/no/x.png"
expect_fail "plot_pca.py: wrong number of labels" 2 "--labels: expected 3 comma-separated labels" "$PY" analysis/plot_pca.py "$T/p2.h5" --labels a,b -o "$T/x.png"
expect_fail "plot_pca.py: unknown option" 2 "unknown option '--frob'" "$PY" analysis/plot_pca.py "$T/p2.h5" --frob -o "$T/x.png"
expect_fail "plot_paths.py: bad --pairs" 2 "--pairs: expected an integer >= 1, got 'x'" "$PY" analysis/plot_paths.py "$T/paths.h5" --pairs x -o "$T/x.png"
expect_fail "plot_filters.py: --layers out of range" 2 "--layers 4: the file has layers 1..3" "$PY" analysis/plot_filters.py --diversity "$T/fd.h5" --layers 4 -o "$T/x.png"
expect_fail "plot_pca.py: not HDF5" 1 "cannot be read as HDF5" "$PY" analysis/plot_pca.py "$T/train.log" -o "$T/x.png"
expect_fail "plot_pca.py: -o without a value" 2 "-o needs a value" "$PY" analysis/plot_pca.py "$T/p2.h5" -o
[ ! -e "$T/x.png" ] && pass "no PNG written by the failed plots" || fail "a failed plot left $T/x.png"

echo "t_figs: $passes passed, $fails failed"
[ $fails -eq 0 ]
