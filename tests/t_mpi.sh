#!/usr/bin/env bash
# Multi-rank tests of the MPI build (mpi/comm_mpi.c), run on CPU cores with mpirun --oversubscribe:
#   1. unit tests (build/tests/mpi_units) on P = 1, 2, 3, 4: collectives, synchronized batch norm
#      and the entropy estimate across ranks against one rank on the full batch;
#   2. failure handling: comm_check_same mismatch, a failing MPI call (MPI_CHECK), comm_abort before
#      comm_init, one rank losing its data while the other waits in a collective, divergence on all
#      ranks, rank 0 refusing the run directory: every rank ends promptly (< 10 s), non-zero;
#      errors every rank detects the same way (a bad job on 2 ranks, a world size the job does not
#      allow, HT_FATAL on all ranks) print their message once, without the MPI_ABORT banner, while
#      a failure on one rank only prints "[rank 1 of 2] ..." and MPI_Abort ends every rank.
#      mpirun itself adds a notice when a process exits non-zero ("Primary job terminated
#      normally, but 1 process returned a non-zero exit code ..."): that box is Open MPI's, outside
#      our control, and is ignored when counting our lines;
#   3. equivalence: the tiny job on real MNIST (else synthetic images) for 5 steps with P = 1, 2, 3 (uneven: batch 8) and
#      4 gives the same parameters (max rel. diff <= 1e-5) and the same logged losses;
#   4. resume with another number of ranks: 2 steps on P=1 + --resume 2 steps on P=2 (and
#      2 + 2 on P=2 -> P=3) equals 4 uninterrupted steps.
# Prints PASS/FAIL lines; exits non-zero on any failure. In a build without MPI it prints
# "SKIPPED (not an MPI build)" and exits 0. Run from anywhere; works as root (CI).
set -u
cd "$(dirname "$0")/.."
BIN=./hypertrain
UNITS=build/tests/mpi_units
DATA=${HYPERTRAIN_TEST_DATA:-../shared/data/mnist}
fails=0; passes=0
pass() { passes=$((passes+1)); echo "  PASS $*"; }
fail() { fails=$((fails+1)); echo "  FAIL $*"; }

[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }
if ! ldd "$BIN" 2>/dev/null | grep -q 'libmpi'; then
  echo "t_mpi: SKIPPED (not an MPI build: $BIN is not linked against MPI; build with make MPI=1)"
  exit 0
fi
command -v mpirun >/dev/null || { echo "FAIL: MPI build but no mpirun on PATH"; exit 1; }
[ -x "$UNITS" ] || { echo "FAIL: $UNITS not built (make MPI=1)"; exit 1; }

# Open MPI refuses root without these; CI runs as root. One thread per rank, no binding (the
# ranks oversubscribe the 2 CI cores).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# Containers often forbid the cross-process memory copy (CMA) of the shared-memory transport.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN=(mpirun --oversubscribe --bind-to none)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
T=$(mktemp -d /tmp/ht_mpi_XXXXXX)
trap 'rm -rf "$T"' EXIT

# run_timed NAME CMD...: runs CMD under timeout 60, sets $rc and $ms (elapsed milliseconds)
run_timed() {
  local name=$1; shift
  local t0; t0=$(date +%s%N)
  timeout 60 "$@" >"$T/$name.out" 2>"$T/$name.err"
  rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
}
# expect_abort NAME PATTERN CMD...: non-zero exit (not a timeout) within 10 s and stderr matching PATTERN
expect_abort() {
  local name=$1 pat=$2; shift 2
  run_timed "$name" "$@"
  if [ $rc -eq 0 ]; then fail "$name: exited 0"; return; fi
  if [ $rc -eq 124 ]; then fail "$name: hung (killed by timeout after 60 s)"; return; fi
  if [ $ms -gt 10000 ]; then fail "$name: took $ms ms (limit 10 s)"; return; fi
  if grep -qE -- "$pat" "$T/$name.err"; then
    pass "$name: exit $rc after $ms ms: $(grep -m1 -E -- "$pat" "$T/$name.err" | cut -c1-160)"
  else fail "$name: stderr does not match /$pat/:"; sed 's/^/      /' "$T/$name.err" | head -8; fi
}

echo "unit tests: collectives, synchronized batch norm, entropy across ranks"
for P in 1 2 3 4; do
  if "${MPIRUN[@]}" -np $P "$UNITS" >"$T/units$P.log" 2>&1; then
    pass "mpi_units on $P rank(s): $(tail -1 "$T/units$P.log")"
  else fail "mpi_units on $P rank(s):"; grep -E "FAIL|error" "$T/units$P.log" | head -10 | sed 's/^/      /'; fi
done

echo "failures end every rank promptly"
expect_abort "check_same mismatch names the rank" "consistency check failed: test buffer .*rank\(s\) 0 hold .*rank\(s\) 1 hold" \
  "${MPIRUN[@]}" -np 2 "$UNITS" --check-same-fail
expect_abort "failing MPI call reported by MPI_CHECK" "MPI_Bcast.*failed: .*(root|ROOT)" \
  "${MPIRUN[@]}" -np 2 "$UNITS" --bad-root
expect_abort "HT_DEBUG=1 adds the source location" "MPI_Bcast.*failed: .*(root|ROOT).*\(mpi/comm_mpi\.c:[0-9]+\)" \
  env HT_DEBUG=1 "${MPIRUN[@]}" -np 2 "$UNITS" --bad-root
# expect_once NAME PATTERN CMD...: an error every rank detects the same way. Non-zero exit within
# 10 s; exactly one line of ours ("<program>: error: ..." or "[rank r of P] <program>: error: ...")
# and it matches PATTERN; no MPI_ABORT banner and no "rank r of P failed" line (mpirun's own
# notice about the non-zero exit code is not counted).
expect_once() {
  local name=$1 pat=$2; shift 2
  expect_abort "$name" "$pat" "$@"
  local ours; ours=$(grep -cE '^(\[rank [0-9]+ of [0-9]+\] )?[a-z_]+: error: ' "$T/$name.err")
  if [ "$ours" -ne 1 ]; then fail "$name: $ours error lines, expected the message once:"; sed 's/^/      /' "$T/$name.err" | head -8
  elif grep -qE 'MPI_ABORT|rank [0-9]+ of [0-9]+ failed|^\[rank' "$T/$name.err"; then fail "$name: MPI_Abort banner or rank prefix:"; sed 's/^/      /' "$T/$name.err" | head -8
  else pass "$name: printed once, no MPI_ABORT banner"; fi
}
expect_once "bad job on 2 ranks" '^hypertrain: error: --set: key "lr": expected a number > 0, got -1$' \
  "${MPIRUN[@]}" -np 2 "$BIN" --set lr=-1 --print-job
expect_once "size overflow on 2 ranks" '^hypertrain: error: job: target.layers\[0\] \(conv\): .* exceed the limit' \
  "${MPIRUN[@]}" -np 2 "$BIN" --set 'target.layers[0].filters=1048576' --set 'target.layers[0].kernel=1023' --print-job
expect_once "HT_FATAL on every rank (3 ranks)" '^mpi_units: error: the same failure on every rank \(3 ranks\)$' \
  "${MPIRUN[@]}" -np 3 "$UNITS" --all-fail
expect_once "check_same mismatch printed once" 'consistency check failed' \
  "${MPIRUN[@]}" -np 2 "$UNITS" --check-same-fail
# one-sided: rank 1 fails while rank 0 waits in a barrier: rank 1's message, then MPI_Abort
expect_abort "failure on rank 1 only" '^\[rank 1 of 2\] mpi_units: error: a failure on rank 1 only$' \
  "${MPIRUN[@]}" -np 2 "$UNITS" --one-rank-fails
grep -q "MPI_ABORT\|rank 1 of 2 failed" "$T/failure on rank 1 only.err" \
  && pass "the one-sided failure ends every rank through MPI_Abort" || fail "no MPI_Abort after a one-sided failure"
[ "$(grep -c 'error:' "$T/failure on rank 1 only.err")" -eq 1 ] \
  && pass "only the failing rank prints an error" || fail "several error lines after a one-sided failure"
"$UNITS" --abort-before-init >/dev/null 2>&1; rc=$?
[ $rc -eq 7 ] && pass "comm_abort before comm_init exits with its code (7)" || fail "comm_abort before comm_init: exit $rc"

# Without MNIST the training runs below use synthetic MNIST-format images (tests/synthetic_mnist.sh).
VERIFY=()
if [ ! -d "$DATA" ]; then
  echo "  SKIPPED (no MNIST in $DATA): real MNIST; the multi-rank training runs below use synthetic MNIST-format images"
  DATA=$T/synthetic-mnist
  bash tests/synthetic_mnist.sh "$DATA" || { echo "FAIL: tests/synthetic_mnist.sh"; exit 1; }
  VERIFY=(--set data.verify=false)
fi
DATA=$(cd "$DATA" && pwd)

# rank 1 cannot read its data (a bad path on one node) while rank 0 goes on into the collectives
expect_abort "one rank loses its data" "nonexistent.*|rank 1 of 2 failed" \
  "${MPIRUN[@]}" -np 1 "$BIN" jobs/tiny.json --data "$DATA" "${VERIFY[@]}" --out "$T/fail1" --set steps=1000 --quiet \
  : -np 1 "$BIN" jobs/tiny.json --data "$T/nonexistent" --out "$T/fail1" --set steps=1000 --quiet
grep -q "rank 1 of 2 failed" "$T/one rank loses its data.err" && pass "the abort names rank 1" || fail "no 'rank 1 of 2 failed' line"
# divergence is detected on every rank (the loss is all-reduced); no update, clean abort
expect_abort "divergence on 2 ranks" "diverged at step 1" \
  "${MPIRUN[@]}" -np 2 "$BIN" jobs/tiny.json --data "$DATA" "${VERIFY[@]}" --out "$T/div" --set lambda=1e39 --quiet

# a world size the job does not allow (3 ranks, noise batch 2): every rank rejects it alike
expect_once "3 ranks for a batch of 2" 'key "batch" is 2 but the run has 3 ranks' \
  "${MPIRUN[@]}" -np 3 "$BIN" jobs/tiny.json --data "$DATA" "${VERIFY[@]}" --out "$T/w3" --set batch=2 --quiet
expect_once "3 ranks for val_samples 2" 'key "val_samples" is 2 but the run has 3 ranks' \
  "${MPIRUN[@]}" -np 3 "$BIN" jobs/tiny.json --data "$DATA" "${VERIFY[@]}" --out "$T/w3v" --set val_samples=2 --quiet
# the same data error on every rank (missing directory): once, no banner
expect_once "missing data on 2 ranks" "data directory '.*nonexistent' does not exist" \
  "${MPIRUN[@]}" -np 2 "$BIN" jobs/tiny.json --data "$T/nonexistent" --out "$T/nodata" --quiet

job=(jobs/tiny.json --data "$DATA" "${VERIFY[@]}" --set steps=5 --set checkpoint_every=2 --set keep_checkpoints=3 --set val_every=5 --threads 1)
echo "equivalence: tiny job, 5 steps, P = 1, 2, 3 (uneven), 4"
for P in 1 2 3 4; do
  if "${MPIRUN[@]}" -np $P "$BIN" "${job[@]}" --out "$T/p$P" >"$T/p$P.log" 2>&1 && [ -f "$T/p$P/ckpt_00000005.h5" ]; then
    pass "P=$P run: $(grep -m1 -o "[0-9]* rank(s) x [0-9]* thread(s)" "$T/p$P.log"), $(grep -c '"type":"train"' "$T/p$P/metrics.jsonl") train lines"
  else fail "P=$P run"; tail -5 "$T/p$P.log" | sed 's/^/      /'; fi
done
[ "$(grep -c '^done:' "$T/p4.log")" -eq 1 ] && [ "$(grep -c '^step 5/5' "$T/p4.log")" -eq 1 ] \
  && pass "only rank 0 prints progress (P=4)" || fail "progress printed by several ranks"
expect_abort "rank 0 refuses an existing run directory while rank 1 waits" "already holds checkpoints" \
  "${MPIRUN[@]}" -np 2 "$BIN" "${job[@]}" --out "$T/p2" --quiet

# compare A B: max relative difference of every dataset under /params and /bn_running, per element
# |a-b| / max(|a|, |b|, rms(tensor)). The floor at the tensor's RMS keeps the few parameters that
# happen to sit near 0 after a few Adam steps (|p| ~ 1e-6 while the tensor's scale is 1e-2) from
# turning float-reordering noise in their updates (~1e-10 absolute) into a large ratio.
cat >"$T/compare.py" <<'PY'
import sys
try:
    import h5py, numpy as np
except ImportError:
    print("SKIPPED (no h5py)"); sys.exit(77)
a_path, b_path, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
worst, where, n = 0.0, "", 0
with h5py.File(a_path, "r") as fa, h5py.File(b_path, "r") as fb:
    for group in ("params", "bn_running"):
        names = []
        fa[group].visititems(lambda k, v: names.append(k) if isinstance(v, h5py.Dataset) else None)
        for k in names:
            a = fa[group][k][...].astype(np.float64); b = fb[group][k][...].astype(np.float64)
            assert a.shape == b.shape, (k, a.shape, b.shape)
            floor = np.sqrt(np.mean(b * b)) + 1e-30
            d = np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor))
            n += a.size
            if not d <= worst: worst, where = d, f"/{group}/{k}"
    ws = (int(fa.attrs["world_size"]), int(fb.attrs["world_size"]))
    assert int(fa.attrs["step"]) == int(fb.attrs["step"])
print(f"max rel. diff {worst:.2e} over {n} values (at {where}; world sizes {ws[0]} and {ws[1]})")
sys.exit(0 if worst <= tol else 1)
PY
# compare_metrics A B: every numeric field of train and validation lines within rel 1e-5 (+1e-6 abs)
cat >"$T/metrics.py" <<'PY'
import json, sys
def load(p): return [json.loads(l) for l in open(p) if l.strip()]
a, b = load(sys.argv[1]), load(sys.argv[2])
if len(a) != len(b): print(f"{len(a)} vs {len(b)} lines"); sys.exit(1)
worst, where = 0.0, ""
for x, y in zip(a, b):
    assert (x["type"], x["step"]) == (y["type"], y["step"]), (x["type"], x["step"], y["type"], y["step"])
    for k, v in x.items():
        if k in ("steps_per_s", "seconds", "type"): continue
        vs, ws = (v, y[k]) if isinstance(v, list) else ([v], [y[k]])
        for p, q in zip(vs, ws):
            d = abs(p - q) / (1e-6 + 1e-5 * max(abs(p), abs(q)))
            if d > worst: worst, where = d, f"{x['type']} step {x['step']} {k}: {p} vs {q}"
print(f"{len(a)} lines, worst field at {worst:.2f} of its tolerance" + (f" ({where})" if where else ""))
sys.exit(0 if worst <= 1.0 else 1)
PY
compare() { # NAME A.h5 B.h5
  local out; out=$("$PY" "$T/compare.py" "$2" "$3" 1e-5 2>&1); local rc=$?
  if [ $rc -eq 0 ]; then pass "$1: $out"
  elif [ $rc -eq 77 ]; then
    h5diff -d 1e-6 "$2" "$3" /params /params >/dev/null 2>&1 && pass "$1 (h5diff, abs 1e-6; no h5py)" || fail "$1 (h5diff -d 1e-6)"
  else fail "$1: $out"; fi
}
for P in 2 3 4; do
  [ -f "$T/p$P/ckpt_00000005.h5" ] || continue
  compare "P=$P vs P=1 parameters after 5 steps" "$T/p1/ckpt_00000005.h5" "$T/p$P/ckpt_00000005.h5"
  out=$("$PY" "$T/metrics.py" "$T/p1/metrics.jsonl" "$T/p$P/metrics.jsonl" 2>&1) \
    && pass "P=$P vs P=1 logged losses and validation: $out" || fail "P=$P vs P=1 metrics: $out"
done

echo "resume with a different number of ranks"
"$BIN" "${job[@]}" --set steps=2 --out "$T/r12" --quiet >/dev/null 2>&1
"${MPIRUN[@]}" -np 2 "$BIN" "${job[@]}" --set steps=4 --out "$T/r12" --resume >"$T/r12.log" 2>&1
grep -q "resumed from .*ckpt_00000002.h5 at step 2 (written by 1 rank(s))" "$T/r12.log" \
  && pass "P=2 resumes a P=1 checkpoint (message)" || { fail "resume message"; tail -5 "$T/r12.log"; }
[ -f "$T/r12/ckpt_00000004.h5" ] && compare "2 steps P=1 + 2 steps P=2 vs 4 steps P=1" "$T/p1/ckpt_00000004.h5" "$T/r12/ckpt_00000004.h5" \
  || fail "no ckpt_00000004.h5 after resume"
"${MPIRUN[@]}" -np 2 "$BIN" "${job[@]}" --set steps=2 --out "$T/r23" --quiet >/dev/null 2>&1
"${MPIRUN[@]}" -np 3 "$BIN" "${job[@]}" --set steps=4 --out "$T/r23" --resume --quiet >"$T/r23.log" 2>&1
[ -f "$T/r23/ckpt_00000004.h5" ] && compare "2 steps P=2 + 2 steps P=3 vs 4 steps P=1" "$T/p1/ckpt_00000004.h5" "$T/r23/ckpt_00000004.h5" \
  || { fail "no ckpt_00000004.h5 after resume on P=3"; tail -5 "$T/r23.log"; }

echo "t_mpi: $passes passed, $fails failed"
[ $fails -eq 0 ] && [ $passes -gt 0 ]
