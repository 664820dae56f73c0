#!/usr/bin/env bash
# Hostile HDF5 files (issue #13): crafted variants of a real checkpoint, sample set and result file
# (tests/craft_h5.py) must each end with exit status 1 and one line "<program>: error: ..." naming
# the file, the object and what was expected; a crash (134 abort, 139 segfault) or exit 0 fails.
#   1. the four reported crashes: a 64-element variable-length "format" (segfault of --resume), a
#      2000 x S21 "format" (heap overflow), the same on a sample set (crash of hyperanalyze
#      accuracy), a 4-element "job" (stack overwrite, exit 0);
#   2. checkpoint datasets of the wrong shape, strings where floats are expected, int32, huge
#      declared dims, a group or a scalar where a dataset is expected; attributes of the wrong type;
#   3. sample sets: weights of the wrong shape or type, huge declared /z, metrics of strings;
#   4. a result file of hyperanalyze accuracy with a wrong-typed dataset (analysis/resultfile.py,
#      the reader of the plot scripts).
# Needs MNIST (for the checkpoint) and h5py; prints SKIPPED without them.
set -u
cd "$(dirname "$0")/.."
HT=${HT_BIN:-./hypertrain}
HA=${HA_BIN:-./hyperanalyze}
DATA=${HYPERTRAIN_TEST_DATA:-../shared/data/mnist}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
[ -x "$HT" ] && [ -x "$HA" ] || { echo "FAIL: $HT and $HA must be built"; exit 1; }
if [ ! -d "$DATA" ]; then echo "t_hostile_h5: SKIPPED (no MNIST in $DATA)"; exit 0; fi
if ! "$PY" -c "import h5py, numpy" 2>/dev/null; then echo "t_hostile_h5: SKIPPED (no h5py)"; exit 0; fi
T=$(mktemp -d /tmp/ht_hostile_XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1
passes=0; fails=0

# hostile NAME SRC REGEX CMD... ($F in CMD is the crafted file): crafts $T/NAME.h5 from SRC with
# case NAME, runs CMD, expects exit 1 and exactly one stderr line matching REGEX.
hostile() {
  local name=$1 src=$2 regex=$3; shift 3
  F="$T/$name.h5"
  if ! "$PY" tests/craft_h5.py "$name" "$src" "$F"; then fails=$((fails+1)); echo "  FAIL $name: crafting failed"; return; fi
  local cmd=() a
  for a in "$@"; do cmd+=("${a//@F@/$F}"); done
  "${cmd[@]}" >"$T/out" 2>"$T/err" </dev/null
  local rc=$? why=""
  if [ $rc -eq 134 ] || [ $rc -eq 139 ] || [ $rc -gt 128 ]; then why="CRASH (exit $rc)"
  elif [ $rc -ne 1 ]; then why="exit status $rc, expected 1"
  elif [ "$(grep -c . "$T/err")" -ne 1 ]; then why="stderr has $(grep -c . "$T/err") lines, expected one"
  elif ! grep -qE -- "$regex" "$T/err"; then why="stderr does not match /$regex/"
  fi
  if [ -z "$why" ]; then passes=$((passes+1)); echo "  PASS $name: $(cut -c1-170 "$T/err")"
  else fails=$((fails+1)); echo "  FAIL $name: $why"; sed 's/^/      /' "$T/err" | head -5; fi
}

echo "valid files: a 2-step checkpoint of fuzz/seed_job.json, a sample set, a result file"
"$HT" fuzz/seed_job.json --data "$DATA" --out "$T/run" --quiet >"$T/log" 2>&1 || { cat "$T/log"; echo "FAIL: training"; exit 1; }
CK=$T/run/ckpt_00000002.h5
"$HT" sample --checkpoint "$CK" --count 4 --batch 32 --metrics val --images 20 --data "$DATA" \
  --out "$T/samples.h5" --quiet >"$T/log" 2>&1 || { cat "$T/log"; echo "FAIL: sample"; exit 1; }
SS=$T/samples.h5
"$HA" accuracy "$SS" --out "$T/acc.h5" >"$T/log" 2>&1 || { cat "$T/log"; echo "FAIL: accuracy"; exit 1; }
RF=$T/acc.h5

echo "1. the reported crashes"
hostile format_vlen64 "$CK" "checkpoint '.*format_vlen64.h5': attribute \"format\" must be a single string, got a 64-element array" \
  "$HT" --resume @F@ --out "$T/r1" --quiet
hostile format_s21x2000 "$CK" "checkpoint '.*format_s21x2000.h5': attribute \"format\" must be a single string, got a 2000-element array" \
  "$HT" --resume @F@ --out "$T/r2" --quiet
hostile job_vlen4 "$CK" "checkpoint '.*job_vlen4.h5': attribute \"job\" must be a single string, got a 4-element array" \
  "$HT" --resume @F@ --out "$T/r3" --quiet --data "$DATA"
# the same attribute changes in a sample set, read by hyperanalyze accuracy
for c in format_vlen64 format_s21x2000 job_vlen4; do
  cp "$SS" "$T/ss_src.h5"
  hostile "$c" "$T/ss_src.h5" "sample set '.*$c.h5': attribute \"(format|job)\" must be a single string, got a [0-9]+-element array" \
    "$HA" accuracy @F@ --out "$T/acc_$c.h5"
done

echo "2. checkpoints: datasets and attributes"
resume() { echo "$HT" --resume @F@ --out "$T/r_$1" --quiet --data "$DATA"; }
hostile param_shape "$CK" "checkpoint '.*param_shape.h5': /params/[a-z0-9/_]+ has shape \(2, 2\) but this job's architecture expects \(2,\)" $(resume a)
hostile param_strings "$CK" "checkpoint '.*param_strings.h5': /params/[a-z0-9/_]+ has type variable-length string, but checkpoints store float32" $(resume b)
hostile param_int32 "$CK" "checkpoint '.*param_int32.h5': /adam/m/[a-z0-9/_]+ has type int32, but checkpoints store float32" $(resume c)
hostile param_huge "$CK" "checkpoint '.*param_huge.h5': /params/[a-z0-9/_]+ has shape \(1099511627776, 1048576\) but" $(resume d)
hostile param_group "$CK" "checkpoint '.*param_group.h5': /params/[a-z0-9/_]+ is not a dataset" $(resume e)
hostile param_scalar "$CK" "checkpoint '.*param_scalar.h5': /bn_running/[a-z0-9/_]+ has shape \(\) but" $(resume f)
hostile format_int "$CK" "attribute \"format\" must be a single string, got a scalar of type integer" $(resume g)
hostile format_empty "$CK" "attribute \"format\" must be a single string, got an empty \(null\) dataspace" $(resume h)
hostile version_array "$CK" "attribute \"format_version\" must be a single integer, got a 2-element array" $(resume i)
hostile step_float "$CK" "attribute \"step\" must be a single integer, got a scalar of type float" $(resume j)
hostile step_negative "$CK" "attribute \"step\" must be >= 0, got -5" $(resume k)

echo "3. sample sets"
hostile weights_shape "$SS" "sample set '.*weights_shape.h5': /weights/layer1/kernel has shape \(4, 3, 3, 1, 7\) but its target architecture needs \(4, 3, 3, 1, 1\)" \
  "$HA" accuracy @F@ --out "$T/acc_ws.h5"
hostile weights_strings "$SS" "/weights/layer1/bias has type variable-length string, but sample sets store float32" "$HA" pca @F@ --what all --out "$T/pca.h5"
hostile z_huge "$SS" "/z declares shape \(8589934592, 2\) but not all of its data is stored in the file" "$HA" ensemble @F@ --out "$T/ens.h5"
hostile metrics_strings "$SS" "/metrics/accuracy has type variable-length string" "$HA" accuracy @F@ --out "$T/acc_ms.h5"

echo "4. result files"
hostile result_accuracy_strings "$RF" "result file '.*result_accuracy_strings.h5': dataset /accuracy must be a 1-D float array, got a 4-element array of variable-length string" \
  "$PY" analysis/resultfile.py accuracy @F@
hostile result_edges_2d "$RF" "result file '.*': dataset /histogram/edges must be a 1-D float array, got an array of shape \(2, 2\) of float64" \
  "$PY" analysis/resultfile.py accuracy @F@

echo "t_hostile_h5: $passes passed, $fails failed"
[ $fails -eq 0 ] && [ $passes -gt 0 ]
