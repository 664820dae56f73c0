#!/usr/bin/env bash
# tests/gpu/tf32-compare.sh: the 2,000-step MNIST comparison of cuda_math "fp32" and "tf32" on one GPU
# (issue #12: TF32 tensor-core convolutions against FP32, accuracy trajectory).
#
#   tests/gpu/tf32-compare.sh --out DIR [--bin HYPERTRAIN] [--job JOB] [--steps N] [--val-every K]
#                             [--data MNIST_DIR] [--set KEY=VALUE ...]
#
# Trains JOB (default jobs/mnist.json, the paper's network) for N steps (default 2000) with a
# validation every K steps (default 250) twice on the GPU (--device cuda), from the same seed: once
# with cuda_math = fp32, once with tf32 (the conv GEMMs on TF32 tensor cores; docs/cuda.md, "TF32").
# Both runs use HT_CUDA_CONV=im2col (tf32 runs there), so the math is the only difference.
# DIR receives:
#   fp32/, tf32/         the two run directories (job.json, metrics.jsonl, the last checkpoint)
#   fp32.log, tf32.log   their output (the "cuda:" line must name the math: no silent fallback)
#   tf32_compare.csv     one row per validation step: mean, majority-vote and mean-probability
#                        accuracy, mean NLL and entropy of each run and tf32 - fp32
#   tf32_train.csv       one row per logged training step: loss, cross-entropy, accuracy of each run
#   tf32_compare.json    both tables, and a summary: final accuracies and their difference, the
#                        largest |difference| of mean accuracy over the trajectory, wall seconds
#                        and the last steps/s of each run
# Exit status 0 when both runs finished and the tables are complete (the figures are reported, not
# judged: the two runs are different trajectories of a chaotic training, see docs/cuda.md), 1 otherwise.
# On a GPU: about 2 x (2,000 steps + 9 validations); in the CPU emulation (tests/gpu/emu/, an
# emulated build of hypertrain) only a few steps of jobs/tiny.json (tests/t_gpu_emu.sh checks the
# plumbing there). Needs only bash and awk.
set -u
OUT="" BIN="" JOB=jobs/mnist.json STEPS=2000 VAL=250 DATA="" SETS=()
usage() { echo "usage: tf32-compare.sh --out DIR [--bin HYPERTRAIN] [--job JOB] [--steps N] [--val-every K] [--data DIR] [--set KEY=VALUE ...]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=${2:?--out needs a folder}; shift 2;;
    --bin) BIN=${2:?--bin needs a program}; shift 2;;
    --job) JOB=${2:?--job needs a file}; shift 2;;
    --steps) STEPS=${2:?--steps needs a number}; shift 2;;
    --val-every) VAL=${2:?--val-every needs a number}; shift 2;;
    --data) DATA=${2:?--data needs a folder}; shift 2;;
    --set) SETS+=(--set "${2:?--set needs KEY=VALUE}"); shift 2;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//;/^set -u/d'; exit 0;;
    *) echo "tf32-compare.sh: error: unknown argument '$1'" >&2; usage;;
  esac
done
[ -n "$OUT" ] || { echo "tf32-compare.sh: error: --out DIR is required" >&2; usage; }
case $STEPS$VAL in *[!0-9]*|"") echo "tf32-compare.sh: error: --steps and --val-every must be whole numbers (got '$STEPS', '$VAL')" >&2; exit 2;; esac
[ "$STEPS" -ge 1 ] && [ "$VAL" -ge 1 ] || { echo "tf32-compare.sh: error: --steps and --val-every must be >= 1" >&2; exit 2; }
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
if [ -z "$BIN" ]; then
  for b in "$ROOT/bin/hypertrain" "$ROOT/build-cuda/hypertrain"; do [ -x "$b" ] && { BIN=$b; break; }; done
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "tf32-compare.sh: error: no hypertrain program (--bin, bin/hypertrain or build-cuda/hypertrain): '${BIN:-none}'" >&2; exit 1; }
[ -f "$JOB" ] || { echo "tf32-compare.sh: error: job file '$JOB' not found" >&2; exit 1; }
if [ -e "$OUT/fp32" ] || [ -e "$OUT/tf32" ]; then
  echo "tf32-compare.sh: error: '$OUT' already holds fp32/ or tf32/ (choose an empty --out)" >&2; exit 1
fi
mkdir -p "$OUT" || exit 1
DARGS=(); [ -n "$DATA" ] && DARGS=(--data "$DATA")
LOG_EVERY=$(( STEPS >= 500 ? 50 : 1 ))

declare -A WALL
for math in fp32 tf32; do
  echo "== cuda_math=$math: $JOB, $STEPS steps, validation every $VAL (log: $OUT/$math.log)"
  t0=$(date +%s.%N)
  HT_CUDA_CONV=im2col "$BIN" "$JOB" --device cuda "${DARGS[@]}" --out "$OUT/$math" --set steps="$STEPS" \
    --set val_every="$VAL" --set checkpoint_every="$STEPS" --set keep_checkpoints=1 --set log_every=$LOG_EVERY \
    "${SETS[@]}" --set cuda_math=$math 2>&1 | tee "$OUT/$math.log" | grep --line-buffered -E "^(step|val|cuda:|done|hypertrain: error)" \
    | awk -v m=$math '{ print "  [" m "] " $0; fflush() }'
  rc=${PIPESTATUS[0]}
  WALL[$math]=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [ "$rc" -ne 0 ]; then echo "tf32-compare.sh: error: the $math run failed (exit $rc): $(tail -1 "$OUT/$math.log")" >&2; exit 1; fi
  if ! grep -q "^cuda: convolutions im2col .* in $math " "$OUT/$math.log"; then
    echo "tf32-compare.sh: error: the $math run did not report 'cuda: convolutions im2col ... in $math' (not a GPU run, or the math was not applied): $(grep -m1 -E '^(cuda|device|note)' "$OUT/$math.log")" >&2
    exit 1
  fi
done

# The tables, from the two metrics.jsonl files (flat JSON records, one a line).
TABLES=$(LC_ALL=C awk -v csv="$OUT/tf32_compare.csv" -v tcsv="$OUT/tf32_train.csv" '
  function get(line, key,   m) { if (match(line, "\"" key "\":[^,}]*")) return substr(line, RSTART + length(key) + 3, RLENGTH - length(key) - 3); return "" }
  FNR == 1 { run = (FILENAME ~ /\/fp32\/metrics.jsonl$/) ? "fp32" : "tf32" }
  /"type":"val"/ { s = get($0, "step"); vsteps[s] = 1
    for (k = 1; k <= nv; k++) V[run, s, vk[k]] = get($0, vk[k]) }
  /"type":"train"/ { s = get($0, "step"); tsteps[s] = 1
    for (k = 1; k <= nt; k++) TR[run, s, tk[k]] = get($0, tk[k]); sps[run] = get($0, "steps_per_s") }
  BEGIN { nv = split("mean_acc majority_acc mean_prob_acc mean_nll entropy", vk, " "); nt = split("loss ce acc", tk, " ") }
  END {
    n = 0; for (s in vsteps) vs[++n] = s + 0; asort_num(vs, n)
    hdr = "step"; for (k = 1; k <= nv; k++) hdr = hdr ",fp32_" vk[k] ",tf32_" vk[k] ",diff_" vk[k]
    print hdr > csv
    rows = ""; complete = 0; maxd = 0; maxds = 0
    for (i = 1; i <= n; i++) {
      s = vs[i]; line = s; obj = "{\"step\":" s; ok = 1
      for (k = 1; k <= nv; k++) {
        a = V["fp32", s, vk[k]]; b = V["tf32", s, vk[k]]
        if (a == "" || b == "") { ok = 0; line = line ",,,"; continue }
        d = b - a; line = line "," a "," b "," sprintf("%.6g", d)
        obj = obj ",\"fp32_" vk[k] "\":" a ",\"tf32_" vk[k] "\":" b ",\"diff_" vk[k] "\":" sprintf("%.6g", d)
        if (vk[k] == "mean_acc" && (d < 0 ? -d : d) >= maxd) { maxd = (d < 0 ? -d : d); maxds = s }
      }
      print line > csv
      complete += ok; rows = rows (i > 1 ? "," : "") obj "}"
      last = s
    }
    m = 0; for (s in tsteps) ts[++m] = s + 0; asort_num(ts, m)
    print "step,fp32_loss,tf32_loss,fp32_ce,tf32_ce,fp32_acc,tf32_acc" > tcsv
    trows = ""
    for (i = 1; i <= m; i++) {
      s = ts[i]; print s "," TR["fp32", s, "loss"] "," TR["tf32", s, "loss"] "," TR["fp32", s, "ce"] "," TR["tf32", s, "ce"] "," TR["fp32", s, "acc"] "," TR["tf32", s, "acc"] > tcsv
      o = "{\"step\":" s; for (k = 1; k <= nt; k++) { a = TR["fp32", s, tk[k]]; b = TR["tf32", s, tk[k]]
        o = o ",\"fp32_" tk[k] "\":" (a == "" ? "null" : a) ",\"tf32_" tk[k] "\":" (b == "" ? "null" : b) }
      trows = trows (i > 1 ? "," : "") o "}"
    }
    printf "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, complete, last, V["fp32", last, "mean_acc"], V["tf32", last, "mean_acc"], sprintf("%.6g", maxd), maxds, sps["fp32"], sps["tf32"], m
    print rows > "/dev/stderr"; print trows > "/dev/stderr"
  }
  function asort_num(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
' "$OUT/fp32/metrics.jsonl" "$OUT/tf32/metrics.jsonl" 2>"$OUT/.rows")
IFS=$'\t' read -r NV COMPLETE LAST ACC32 ACCTF MAXD MAXDS SPS32 SPSTF NT <<<"$TABLES"
VROWS=$(sed -n 1p "$OUT/.rows"); TROWS=$(sed -n 2p "$OUT/.rows"); rm -f "$OUT/.rows"
WANT=$(( STEPS / VAL ))  # every VAL steps, and the last step
[ $(( STEPS % VAL )) -ne 0 ] && WANT=$(( WANT + 1 ))
FINAL_D=$(awk -v a="${ACC32:-0}" -v b="${ACCTF:-0}" 'BEGIN { printf "%.6g", b - a }')
cat >"$OUT/tf32_compare.json" <<JSON
{
  "job": "$JOB", "steps": $STEPS, "val_every": $VAL, "conv": "im2col", "program": "$BIN",
  "summary": {"validations": ${NV:-0}, "expected_validations": $WANT, "final_step": ${LAST:-null},
    "fp32_final_mean_acc": ${ACC32:-null}, "tf32_final_mean_acc": ${ACCTF:-null}, "diff_final_mean_acc": $FINAL_D,
    "max_abs_diff_mean_acc": ${MAXD:-null}, "at_step": ${MAXDS:-null},
    "fp32_wall_s": ${WALL[fp32]}, "tf32_wall_s": ${WALL[tf32]}, "fp32_last_steps_per_s": ${SPS32:-null}, "tf32_last_steps_per_s": ${SPSTF:-null}},
  "validation": [$VROWS],
  "train": [$TROWS]
}
JSON
echo "tf32-compare: $NV validations ($COMPLETE in both runs, $WANT expected), $NT logged steps"
echo "tf32-compare: step ${LAST:-?}: mean accuracy fp32 ${ACC32:-?}, tf32 ${ACCTF:-?} (tf32 - fp32 = $FINAL_D); largest |difference| over the trajectory $MAXD at step $MAXDS; wall fp32 ${WALL[fp32]} s, tf32 ${WALL[tf32]} s"
echo "tf32-compare: $OUT/tf32_compare.csv, $OUT/tf32_train.csv, $OUT/tf32_compare.json"
[ "${COMPLETE:-0}" -eq "$WANT" ] && [ "${NV:-0}" -eq "$WANT" ] && [ "${NT:-0}" -ge 1 ] || {
  echo "tf32-compare.sh: error: expected $WANT validations in both runs, found ${COMPLETE:-0} complete of ${NV:-0}" >&2; exit 1; }
