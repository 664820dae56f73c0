#!/usr/bin/env bash
# hyperanalyze diversity, shift and calibrate (docs/analysis.md, "Function-space diversity, dataset
# shift, calibration") end to end on the tiny job (1,015 weights per network): a hypernetwork
# sample set (3 training steps, 12 networks) and a deep ensemble (hyperanalyze baseline, 4
# members, 150 steps). Each result file is checked by tests/check_uncert.py against an independent
# float64 numpy forward pass of the stored weights:
#   1. diversity: per-network errors, every pair's disagreement and KL both ways, kl_sym and the
#      normalized disagreement; provenance (command, tool_version, command_line, SHA-256 of both
#      inputs) and axes/meaning attributes on every dataset;
#   2. shift: /examples equal np.rot90 at 0/90/180 degrees (bit for bit) and an independent numpy
#      bilinear rotation at 30, 60, ...; single-network and ensemble accuracy, NLL and ECE at 0,
#      90 and 180 degrees equal numpy's; a list of angles;
#   3. calibrate: the fitted T of every size is a minimum of the validation NLL on a numpy grid,
#      validation NLL never rises, test accuracy/NLL/ECE before and after equal numpy's,
#      reliability counts sum to the test images;
#      every dataset is the same with 1 and 2 threads;
#   4. bad input: missing set, a checkpoint as --baseline, a baseline of another architecture,
#      too few networks, bad --angles / --split / --members / options: exit 1 or 2, one line, and
#      an existing --out file unchanged;
#   5. the plot scripts write PNGs and refuse a result of another command with one line.
# Prints PASS/FAIL lines; exits non-zero on any failure. Without MNIST everything runs on synthetic
# MNIST-format images (tests/synthetic_mnist.sh) and a SKIPPED line says so.
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
lib_init uncert 2
if ! "$PY" -c "import h5py, numpy, matplotlib" 2>/dev/null; then echo "t_uncert: SKIPPED (no h5py/numpy/matplotlib)"; exit 0; fi
lib_data

# expect_fail NAME STATUS PATTERN CMD...: exit status STATUS, stderr one line matching PATTERN
expect_fail() {
  local name=$1 want=$2 pat=$3; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -ne "$want" ]; then fail "$name: exit $rc, expected $want"; sed 's/^/      /' "$T/err" | head -3; return; fi
  if [ "$(wc -l <"$T/err")" -ne 1 ]; then fail "$name: $(wc -l <"$T/err") lines on stderr, expected 1:"; sed 's/^/      /' "$T/err" | head -5; return; fi
  if grep -qE -- "$pat" "$T/err"; then pass "$name: $(cut -c1-200 "$T/err")"
  else fail "$name: message does not match /$pat/:"; sed 's/^/      /' "$T/err" | head -3; fi
}
# check KIND RESULT: tests/check_uncert.py
check() {
  local out; out=$(PYTHONPATH=tests "$PY" tests/check_uncert.py "$1" "$2" "$T/s.h5" "$T/b.h5" "$DATA" 2>&1)
  if [ $? -eq 0 ]; then pass "$1 equals numpy: $out"; else fail "$1 against numpy:"; echo "$out" | tail -8 | sed 's/^/      /'; fi
}

echo "sample sets: a hypernetwork (3 steps of jobs/tiny.json, 12 networks) and a deep ensemble (4 members)"
lib_tiny_run 3
lib_sample 12 "$T/s.h5"
[ -f "$T/s.h5" ] || { echo "FAIL: no sample set"; cat "$T/train.log" | tail -5; exit 1; }
$HA baseline --job "$TINY" --data "$DATA" --members 4 --steps 150 --lr 3e-3 --log-every 50 --out "$T/b.h5" >/dev/null 2>"$T/b.err" \
  || { echo "FAIL: hyperanalyze baseline"; tail -3 "$T/b.err"; exit 1; }

echo "1. diversity"
run diversity $HA diversity "$T/s.h5" --baseline "$T/b.h5" --members 4 --images 200 --data "$DATA" --out "$T/div.h5"
check diversity "$T/div.h5"
if grep -q '^generated,4,' "$T/diversity.out" && grep -q '^baseline,4,' "$T/diversity.out"; then pass "diversity prints one CSV row per set"
else fail "diversity stdout:"; sed 's/^/      /' "$T/diversity.out"; fi

echo "2. shift"
run shift $HA shift "$T/s.h5" --baseline "$T/b.h5" --members 3 --images 150 --angles 0:180:30 --data "$DATA" --out "$T/shift.h5"
check shift "$T/shift.h5"
run shift_list $HA shift "$T/s.h5" --members 2 --images 20 --angles 0,45,90 --data "$DATA" --out "$T/shift2.h5"
if "$PY" -c 'import sys, h5py; f = h5py.File(sys.argv[1], "r"); assert list(f["angles"][...]) == [0, 45, 90] and "baseline" not in f' "$T/shift2.h5"; then
  pass "shift --angles 0,45,90 without --baseline: three angles, no /baseline"; else fail "shift --angles list"; fi

echo "3. calibrate"
run calibrate $HA calibrate "$T/s.h5" --baseline "$T/b.h5" --members 4 --val-images 300 --test-images 300 --data "$DATA" --out "$T/cal.h5"
check calibrate "$T/cal.h5"
if [ "$(grep -c '^generated,' "$T/calibrate.out")" = 4 ] && [ "$(grep -c '^baseline,' "$T/calibrate.out")" = 4 ]; then
  pass "calibrate prints sizes 1, 2, 4 and 'single' for each set"; else fail "calibrate stdout:"; sed 's/^/      /' "$T/calibrate.out"; fi

run calibrate_1thread $HA calibrate "$T/s.h5" --baseline "$T/b.h5" --members 4 --val-images 300 --test-images 300 --data "$DATA" --threads 1 --out "$T/cal1.h5"
if "$PY" - "$T/cal.h5" "$T/cal1.h5" <<'EOF2'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
bad = [n for n in names if not np.array_equal(a[n][...], b[n][...], equal_nan=True)]
assert len(names) > 20 and not bad, bad
EOF2
then pass "calibrate: every dataset identical with 1 and 2 threads"; else fail "calibrate differs between 1 and 2 threads"; fi

echo "4. bad input"
expect_fail "missing sample set" 1 "cannot open sample set '$T/none.h5'" $HA diversity "$T/none.h5" --data "$DATA"
expect_fail "a checkpoint as --baseline" 1 "is a hypertrain checkpoint, not a sample set" \
  $HA shift "$T/s.h5" --baseline "$T/run/ckpt_00000003.h5" --members 2 --data "$DATA" --out "$T/x.h5"
"$PY" - "$TINY" "$T/other.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1])); j["target"]["layers"][0]["filters"] = 8; json.dump(j, open(sys.argv[2], "w"))
EOF
$HA baseline --job "$T/other.json" --data "$DATA" --members 2 --steps 2 --out "$T/other.h5" >/dev/null 2>&1
expect_fail "a baseline of another architecture" 1 "is a sample set from another target architecture" \
  $HA calibrate "$T/s.h5" --baseline "$T/other.h5" --members 2 --data "$DATA" --out "$T/x.h5"
expect_fail "too few networks" 1 "holds 4 networks, but --members 5 needs 5" \
  $HA diversity "$T/s.h5" --baseline "$T/b.h5" --members 5 --data "$DATA" --out "$T/x.h5"
expect_fail "bad --angles (step 0)" 2 "--angles: expected A:B:S .* got '0:180:0'" $HA shift "$T/s.h5" --angles 0:180:0
expect_fail "bad --angles (text)" 2 "--angles: expected .* got '0,ninety'" $HA shift "$T/s.h5" --angles 0,ninety
expect_fail "bad --angles (out of range)" 2 "got '0:720:90'" $HA shift "$T/s.h5" --angles 0:720:90
expect_fail "bad --split" 2 "--split: expected val or test, got 'train'" $HA diversity "$T/s.h5" --split train
expect_fail "--members 1 for diversity" 2 "--members: expected an integer in \[2, 4096\]" $HA diversity "$T/s.h5" --members 1
expect_fail "unknown option" 2 "unknown option '--temperature'" $HA calibrate "$T/s.h5" --temperature 2
expect_fail "option without its value" 2 "--bins needs a value" $HA calibrate "$T/s.h5" --bins
cp "$T/div.h5" "$T/keep.h5"
expect_fail "an error keeps an existing --out" 1 "holds 4 networks" \
  $HA diversity "$T/s.h5" --baseline "$T/b.h5" --members 6 --data "$DATA" --out "$T/div.h5"
if cmp -s "$T/div.h5" "$T/keep.h5" && [ -z "$(ls "$T" | grep '\.tmp\.')" ]; then pass "the existing result file is unchanged, no temporary file left"
else fail "the existing result file changed or a temporary file was left"; fi

echo "5. plots"
for k in diversity:div shift:shift calibration:cal; do
  script=${k%%:*}; f=${k##*:}
  if "$PY" analysis/plot_$script.py "$T/$f.h5" -o "$T/$script.png" >"$T/plot.out" 2>&1 && [ -s "$T/$script.png" ]; then
    pass "plot_$script.py writes a PNG"; else fail "plot_$script.py:"; sed 's/^/      /' "$T/plot.out" | tail -5; fi
done
expect_fail "plot_shift.py on a diversity result" 1 "it is a result of 'hyperanalyze diversity', not of hyperanalyze shift" \
  "$PY" analysis/plot_shift.py "$T/div.h5" -o "$T/bad.png"
expect_fail "plot_calibration.py: unwritable output" 1 "cannot write" \
  "$PY" analysis/plot_calibration.py "$T/cal.h5" -o "$T/no/such/dir/c.png"

lib_finish
