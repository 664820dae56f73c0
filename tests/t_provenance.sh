#!/usr/bin/env bash
# Every result file of hyperanalyze is self-describing (issue #14, docs/analysis.md): the result
# of each command that writes one -- accuracy, ensemble, ood, baseline, diversity, shift,
# calibrate, adversarial -- run on the tiny job (a 3-step run, 16 networks; a deep ensemble of 4)
# is checked by tests/check_resultfiles.py: root attributes command, tool_version, command_line and
# the SHA-256 of its input sample set (recomputed from the file; baseline: of its job file), and
# "axes" and "meaning" on every dataset. The checker itself must reject a copy of a good file
# without one dataset attribute and one without samples_sha256 (so the check can fail).
# Not covered: filters, pca and paths, whose result files do not carry the provenance yet.
# Without MNIST everything runs on synthetic MNIST-format images (tests/synthetic_mnist.sh) and a
# SKIPPED line says so; ood needs Fashion-MNIST (dataset-fashion-mnist) and is skipped without it.
set -u
cd "$(dirname "$0")/.."
FASHION=${HYPERTRAIN_TEST_FASHION:-/usr/share/datasets/fashion-mnist}
. tests/lib.sh
lib_init provenance 2
if ! "$PY" -c "import h5py" 2>/dev/null; then echo "FAIL: python3 with h5py is required"; exit 1; fi
lib_data

echo "inputs: 16 networks of a 3-step tiny run, a deep ensemble of 4 (hyperanalyze baseline)"
lib_tiny_run 3 || { echo "FAIL: tiny run"; tail -5 "$T/train.log"; exit 1; }
lib_sample 16 "$T/s.h5"
[ -f "$T/s.h5" ] || { echo "FAIL: no sample set"; exit 1; }
run baseline $HA baseline --job "$TINY" --data "$DATA" --members 4 --steps 20 --metrics val --images 100 --out "$T/deep.h5"

echo "every command's result file"
D=(--data "$DATA")
run accuracy $HA accuracy "$T/s.h5" "${D[@]}" --images 100 --out "$T/acc.h5"
run ensemble $HA ensemble "$T/s.h5" "${D[@]}" --k 2 --m 8 --images 100 --out "$T/ens.h5"
run diversity $HA diversity "$T/s.h5" "${D[@]}" --baseline "$T/deep.h5" --members 4 --images 100 --out "$T/div.h5"
run shift $HA shift "$T/s.h5" "${D[@]}" --baseline "$T/deep.h5" --members 2 --images 50 --angles 0,90 --out "$T/shift.h5"
run calibrate $HA calibrate "$T/s.h5" "${D[@]}" --baseline "$T/deep.h5" --members 2 --val-images 100 --test-images 100 --out "$T/cal.h5"
run adversarial $HA adversarial "$T/s.h5" "${D[@]}" --baseline "$T/deep.h5" --members 2 --n-images 5 --eps-max 0.02 --out "$T/adv.h5"
FILES=("$T/deep.h5" "$T/acc.h5" "$T/ens.h5" "$T/div.h5" "$T/shift.h5" "$T/cal.h5" "$T/adv.h5")
if [ -d "$FASHION" ]; then
  run ood $HA ood "$T/s.h5" "${D[@]}" --outliers "$FASHION" --members 4 --images 50 --out "$T/ood.h5"
  FILES+=("$T/ood.h5")
else echo "  SKIPPED ood (no $FASHION: apt-get install dataset-fashion-mnist)"; fi
for f in "${FILES[@]}"; do
  out=$("$PY" tests/check_resultfiles.py "$f" 2>&1) && pass "$(echo "$out" | sed "s#$T/##")" || fail "$out"
done

echo "the check can fail"
cp "$T/acc.h5" "$T/no_meaning.h5"
cp "$T/ens.h5" "$T/no_sha.h5"
"$PY" -c '
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f: del f["histogram/edges"].attrs["meaning"]
with h5py.File(sys.argv[2], "r+") as f: del f.attrs["samples_sha256"]
' "$T/no_meaning.h5" "$T/no_sha.h5"
out=$("$PY" tests/check_resultfiles.py "$T/no_meaning.h5" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "dataset /histogram/edges has no 'meaning' attribute" \
  && pass "a dataset without 'meaning': exit 1, $(echo "$out" | sed "s#$T/##")" || fail "no 'meaning' not caught (exit $rc): $out"
out=$("$PY" tests/check_resultfiles.py "$T/no_sha.h5" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "'samples_sha256' must be 64 hex digits" \
  && pass "a file without samples_sha256: exit 1, $(echo "$out" | sed "s#$T/##")" || fail "no samples_sha256 not caught (exit $rc): $out"
out=$("$PY" tests/check_resultfiles.py "$T/s.h5" 2>&1); rc=$?
[ $rc -eq 1 ] && pass "a sample set of hypertrain sample is no result file: exit 1" || fail "sample set accepted: $out"

lib_finish
