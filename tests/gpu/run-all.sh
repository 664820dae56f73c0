#!/usr/bin/env bash
# tests/gpu/run-all.sh: the complete verdict on the CUDA backend, in one command, on one GPU node.
#
#   tests/gpu/run-all.sh [--out DIR] [--quick] [--tf32-compare]
#
# Runs from the GPU bundle (make CUDA=1 MPI=0 bundle; then bin/ holds prebuilt programs and
# bin/ht-env finds the node's CUDA runtime, cuBLAS and NCCL) or from a source tree (then it builds
# with make CUDA=1 first, for this GPU's architecture). Checks, each under its own time limit:
#   environment        the NVIDIA libraries (ht-env), the GPU (nvidia-smi), the bundle's origin
#   test_cuda_kernels  every kernel against src/ (budgets in tests/gpu/gpu_check.cuh)
#   test_cuda_conv     the implicit-GEMM conv blocks (HT_CUDA_CONV=igemm) against src/ and im2col
#   test_cuda_step     training steps GPU vs CPU, lockstep and free-running, every collective
#                      through NCCL on one rank (HYPERTRAIN_COMM=nccl)
#   test_nccl          NCCL collectives on known values (one rank; under mpirun in an MPI build)
#   nan_diverges       a NaN in the generated weights ends in the CPU's "training diverged" error
#   sync_mode          HT_CUDA_SYNC=1 (a synchronize after every kernel) runs two steps
#   smoke, resume      jobs/smoke.json on the GPU with NCCL (needs MNIST), and the same run split by
#                      a checkpoint must log the same step-4 loss
#   bench_cuda_step    ms/step of the paper job, one validation, projected time of 13,000 steps
#                      (HT_CUDA_CONV=im2col with cuda_math tf32, im2col, igemm)
#   tf32_compare       only with --tf32-compare (needs MNIST; up to 300 s more): tests/gpu/tf32-compare.sh,
#                      jobs/mnist.json for 2,000 steps with cuda_math fp32 and tf32 (validation every
#                      250); the tables go into the logs, the JSON into bench.json ("tf32_compare")
#   memcheck_kernels, memcheck_steps, racecheck, initcheck   compute-sanitizer (the kernel test, two
#                      paper steps; one tiny step each for racecheck and initcheck), when it exists
#                      and can use this GPU
# --quick: a subset in under 3 minutes (kernels, tiny step test, NCCL, NaN, one memcheck, a short
# benchmark). The whole script ends within 8 minutes (3 with --quick) whatever happens: every check
# has a limit and the checks also share one deadline; a check killed at its limit is a FAIL, and
# the summary is still written.
#
# Output: the log of each check; the summary (one line per check: PASS/FAIL/SKIP, seconds, figure,
# % of its error budget used, the largest over its comparisons) is the LAST thing printed. With
# --out DIR, DIR receives exactly three files: summary.txt, bench.json (the benchmark figures and
# the machine) and logs.tar.gz (every log). Exit status: 0 every check passed, 1 a check failed,
# 3 no GPU (every GPU program said SKIPPED (no GPU)).
# MNIST: $HYPERTRAIN_DATA, else data/mnist or .gpu/mnist inside the bundle or tree, else
# ../shared/data/mnist. Environment: BUILD, CUDA_ARCH, MPI, JOBS (source-tree mode only).
# Test hooks (tests/t_bundle.sh): HT_GPU_LIMIT_SCALE multiplies every time limit, HT_GPU_TOTAL_S
# replaces the shared deadline (500 s, --quick 180 s; before the scale).
set -u
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
cd "$ROOT"
OUTDIR="" QUICK=0 TF32CMP=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUTDIR=${2:?--out needs a folder}; shift 2;;
    --quick) QUICK=1; shift;;
    --tf32-compare) TF32CMP=1; shift;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//;/^set -u/d'; exit 0;;
    *) echo "run-all.sh: error: unknown argument '$1' (usage: run-all.sh [--out DIR] [--quick] [--tf32-compare])" >&2; exit 2;;
  esac
done
SCALE=${HT_GPU_LIMIT_SCALE:-1}
T_START=$(date +%s.%N)
# The per-check limits below add up to 490 s (--quick: 165 s); the shared deadline only matters
# in source-tree mode (the build's 240 s come first) or when a check overruns its limit's kill.
TOTAL=${HT_GPU_TOTAL_S:-$([ $QUICK = 1 ] && echo 180 || echo 500)}  # seconds for all checks (+ packing)
TF32_LIMIT=300; [ $TF32CMP = 1 ] && TOTAL=$((TOTAL + TF32_LIMIT))  # --tf32-compare: its own 300 s on top
DEADLINE=$(awk -v t="$T_START" -v a="$TOTAL" -v s="$SCALE" 'BEGIN { printf "%.3f", t + a * s }')
if [ -x "$ROOT/bin/hypertrain" ] && [ -f "$ROOT/BUNDLE" ]; then
  MODE=bundle; BIN=$ROOT/bin; G=$ROOT/bin; LOGS=$ROOT/gpu-logs
else
  MODE=tree; BUILD=${BUILD:-build-cuda}; BIN=$BUILD; G=$BUILD/tests/gpu; LOGS=$BUILD/gpu-logs
fi
ENV=(env)  # every program runs through it (the bundle's library path is set below, once)
[ -n "$OUTDIR" ] && LOGS=$(mktemp -d /tmp/ht_gpu_logs_XXXXXX)/gpu-logs
rm -rf "$LOGS"; mkdir -p "$LOGS"
SUMMARY=$LOGS/summary.txt; : >"$SUMMARY"
failures=0 skips=0 passes=0 noGPU=0
export HYPERTRAIN_COMM=nccl   # every collective through NCCL, also on one rank
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

# record STATUS NAME SECONDS FIGURE [BUDGET%]
record() {
  local line; line=$(printf '%-4s  %-22s %6ss  %s%s' "$1" "$2" "$3" "$4" "${5:+  [budget $5]}")
  echo "$line" >>"$SUMMARY"
  case $1 in FAIL) failures=$((failures + 1));; SKIP) skips=$((skips + 1));; PASS) passes=$((passes + 1));; esac
  echo "== $line"
}

# run NAME LIMIT CMD...: CMD under its limit (scaled; cut to the shared deadline) with its output in
# $LOGS/NAME.log; sets rc, secs, killed (1 when the limit ended it).
run() {
  local name=$1 limit=$2; shift 2
  local now lim; now=$(date +%s.%N)
  lim=$(awk -v l="$limit" -v s="$SCALE" -v d="$DEADLINE" -v n="$now" 'BEGIN { a = l * s; r = d - n; if (r < a) a = r; printf "%.2f", a }')
  killed=0
  if awk -v d="$DEADLINE" -v n="$now" 'BEGIN { exit !(d - n < 0.5) }'; then
    echo "not run: the script's time is used up" >"$LOGS/$name.log"; rc=124; secs=0; killed=1; return
  fi
  echo "\$ $* (limit ${lim} s)" >"$LOGS/$name.log"
  local t0; t0=$(date +%s.%N)
  timeout --kill-after=3 "$lim" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null
  rc=$?
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then killed=1; echo "   (killed at its limit of $lim s)" >>"$LOGS/$name.log"; fi
}

show_tail() { tail -n "${2:-12}" "$LOGS/$1.log" | sed 's/^/    /'; }
# the largest "% of budget" of a log's comparisons
budget_max() { grep -o 'at [0-9.]*% of budget' "$LOGS/$1.log" 2>/dev/null | awk '{ v = $2 + 0; if (v > m) m = v } END { if (NR) printf "%.1f%% max", m }'; }
skipped() { grep -q "SKIPPED (no GPU)" "$LOGS/$1.log"; }

# A test program: PASS on exit 0 with its "N passed, 0 failed" line; SKIP when it found no GPU.
test_binary() {
  local name=$1 limit=$2; shift 2
  run "$name" "$limit" "${ENV[@]}" "$@"
  local last; last=$(grep -E "passed, [0-9]+ failed" "$LOGS/$name.log" | tail -1 | sed 's/.*: \([0-9]* passed\)/\1/')
  if [ $killed = 1 ] && grep -q "^not run" "$LOGS/$name.log"; then record FAIL "$name" 0 "not run: the script's deadline was reached"
  elif [ $killed = 1 ]; then record FAIL "$name" "$secs" "killed at its time limit; $(tail -2 "$LOGS/$name.log" | head -1 | cut -c1-80)"
  elif [ $rc -eq 0 ] && skipped "$name"; then noGPU=$((noGPU + 1)); record SKIP "$name" "$secs" "$(grep -m1 -o 'SKIPPED (no GPU).*' "$LOGS/$name.log" | cut -c1-100)"
  elif [ $rc -eq 0 ]; then record PASS "$name" "$secs" "$last" "$(budget_max "$name")"
  else record FAIL "$name" "$secs" "exit $rc${last:+: $last}" "$(budget_max "$name")"
    grep -E "FAIL|error" "$LOGS/$name.log" | head -12 | sed 's/^/    /'; fi
}

# ---------------------------------------------------------------- environment
echo "hypertrain GPU verdict, $(date -u +%Y-%m-%dT%H:%M:%SZ), $MODE mode$([ $QUICK = 1 ] && echo ", --quick"), logs in $LOGS/"
GPU_NAME="none" CC="" NGPU=0 DRIVER=""
{
  echo "host: $(hostname) $(uname -srm), $(nproc) cores"
  [ $MODE = bundle ] && cat "$ROOT/BUNDLE"
  [ $MODE = tree ] && echo "source tree at $(git rev-parse --short HEAD 2>/dev/null)"
} >"$LOGS/environment.log"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  nvidia-smi >>"$LOGS/environment.log" 2>&1
  NGPU=$(nvidia-smi -L | grep -c '^GPU')
  GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
  CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
  DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)
fi
env_ok=1 env_fig=""
if [ $MODE = bundle ]; then
  # ht-env finds the node's NVIDIA libraries once; every program then runs with that library path.
  if "$ROOT/bin/ht-env" --check >>"$LOGS/environment.log" 2>&1; then
    env_fig="libraries: $(grep -E '^ht-env: (libcublas|libnccl)\.' "$LOGS/environment.log" | sed 's/ht-env: //' | tr '\n' ';' | sed 's/;$//')"
    LDP=$("$ROOT/bin/ht-env" -q env | sed -n 's/^LD_LIBRARY_PATH=//p')
    [ -n "$LDP" ] && export LD_LIBRARY_PATH=$LDP
  else env_ok=0; env_fig=$(grep -E "error|FAIL" "$LOGS/environment.log" | head -2 | tr '\n' ' ' | cut -c1-200); fi
fi
if [ "$NGPU" -gt 0 ]; then env_fig="$NGPU x $GPU_NAME (sm_$CC, driver $DRIVER); $env_fig"
else env_fig="no GPU visible to nvidia-smi; $env_fig"; fi
record "$([ $env_ok = 1 ] && echo PASS || echo FAIL)" environment 0 "$env_fig"

# ---------------------------------------------------------------- build (source tree only)
if [ $MODE = tree ]; then
  ARCH=${CUDA_ARCH:-$([ -n "$CC" ] && echo "-gencode arch=compute_$CC,code=sm_$CC")}
  MAKEARGS=(CUDA=1 "BUILD=$BUILD" -j"${JOBS:-$(nproc)}")
  [ -n "$ARCH" ] && MAKEARGS+=("CUDA_ARCH=$ARCH")
  [ -n "${MPI:-}" ] && MAKEARGS+=("MPI=$MPI")
  run build 240 env -u MAKEFLAGS -u MAKELEVEL make "${MAKEARGS[@]}"
  if [ $rc -eq 0 ]; then record PASS build "$secs" "make ${MAKEARGS[*]}"
  else record FAIL build "$secs" "make ${MAKEARGS[*]}: exit $rc$([ $killed = 1 ] && echo ' (time limit)')"; show_tail build 25; fi
fi

# ---------------------------------------------------------------- tests
if [ $QUICK = 1 ]; then
  test_binary test_cuda_kernels 35 "$G/test_cuda_kernels"
  HT_GPU_TEST_QUICK=1 test_binary test_cuda_step 35 "$G/test_cuda_step"
else
  test_binary test_cuda_kernels 45 "$G/test_cuda_kernels"
  test_binary test_cuda_step 120 "$G/test_cuda_step"
fi
test_binary test_cuda_conv 10 "$G/test_cuda_conv"
test_binary test_nccl 15 "$G/test_nccl"

# NaN in the generated weights: the run must end in the CPU's message, not in a CUDA fault.
run nan_diverges 15 "${ENV[@]}" "$G/test_cuda_step" --inject-nan gpu nan
if [ $rc -eq 0 ] && skipped nan_diverges; then noGPU=$((noGPU + 1)); record SKIP nan_diverges "$secs" "SKIPPED (no GPU)"
elif [ $killed = 0 ] && [ $rc -ne 0 ] && grep -q "error: training diverged at step 1" "$LOGS/nan_diverges.log" \
     && ! grep -qiE "CUDA error|illegal|misaligned" "$LOGS/nan_diverges.log"; then
  record PASS nan_diverges "$secs" "$(grep -o 'training diverged at step 1: loss [^,]*' "$LOGS/nan_diverges.log")"
else record FAIL nan_diverges "$secs" "exit $rc, expected the 'training diverged at step 1' error"; show_tail nan_diverges 5; fi

# Two steps with a device synchronize after every kernel (HT_CUDA_SYNC=1, the debugging mode).
if [ $QUICK = 0 ]; then
  run sync_mode 20 env HT_CUDA_SYNC=1 "${ENV[@]}" "$G/bench_cuda_step" --steps 2 --warmup 0 --profile 2 --no-val --job jobs/tiny.json
  if [ $rc -eq 0 ] && skipped sync_mode; then noGPU=$((noGPU + 1)); record SKIP sync_mode "$secs" "SKIPPED (no GPU)"
  elif [ $rc -eq 0 ]; then record PASS sync_mode "$secs" "HT_CUDA_SYNC=1: $(grep -m1 -o '^step: [0-9.]* ms/step' "$LOGS/sync_mode.log")"
  else record FAIL sync_mode "$secs" "exit $rc"; show_tail sync_mode 5; fi
fi

# ---------------------------------------------------------------- MPI (source-tree MPI builds only)
if [ $MODE = tree ] && grep -q libmpi < <(ldd "$G/test_nccl" 2>/dev/null) && command -v mpirun >/dev/null && [ $QUICK = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  MPIRUN=(mpirun --oversubscribe --bind-to none)
  if [ "$NGPU" -ge 2 ]; then test_binary "test_nccl_${NGPU}ranks" 40 "${MPIRUN[@]}" -np "$NGPU" "$G/test_nccl"
  else
    run nccl_2ranks_1gpu 20 "${MPIRUN[@]}" -np 2 "$G/test_nccl"
    if [ $rc -ne 0 ] && [ $killed = 0 ] && grep -q "ranks run on host .* visible GPU" "$LOGS/nccl_2ranks_1gpu.log"; then
      record PASS nccl_2ranks_1gpu "$secs" "clear error: $(grep -m1 -o 'ranks run on host .* visible GPU(s)' "$LOGS/nccl_2ranks_1gpu.log")"
    else record FAIL nccl_2ranks_1gpu "$secs" "exit $rc, no 'ranks run on host ... GPU' message"; fi
  fi
fi

# ---------------------------------------------------------------- hypertrain on the GPU
DATA=""
for d in "${HYPERTRAIN_DATA:-}" "$ROOT/data/mnist" "$ROOT/.gpu/mnist" "$ROOT/../.gpu/mnist" "$ROOT/../shared/data/mnist" "$ROOT/shared/data/mnist"; do
  if [ -n "$d" ] && ls "$d"/train-images-idx3-ubyte* >/dev/null 2>&1; then DATA=$d; break; fi
done
if [ -z "$DATA" ]; then
  record SKIP smoke 0 "no MNIST (set HYPERTRAIN_DATA, or put it in data/mnist)"
elif [ $noGPU -gt 0 ] && ! grep -qE "^PASS +(test_|nan_|sync_|memcheck)" "$SUMMARY"; then
  record SKIP smoke 0 "no GPU (the GPU programs said SKIPPED (no GPU)); MNIST in $DATA"
elif [ $QUICK = 0 ]; then
  T=$(mktemp -d /tmp/ht_gpu_XXXXXX)
  HT=("${ENV[@]}" "$BIN/hypertrain" jobs/smoke.json --data "$DATA" --device cuda --quiet)
  run smoke 35 "${HT[@]}" --out "$T/full"
  if [ $rc -eq 0 ] && grep -q "device: CUDA" "$LOGS/smoke.log"; then
    record PASS smoke "$secs" "$(grep -m1 '^done' "$LOGS/smoke.log" | cut -c1-100)"
    run resume_split 15 "${HT[@]}" --out "$T/split" --set steps=2
    [ $rc -eq 0 ] && run resume 15 "${HT[@]}" --out "$T/split" --resume
    a=$(grep '"type":"train","step":4,' "$T/full/metrics.jsonl" | grep -o '"loss":[^,]*')
    b=$(grep '"type":"train","step":4,' "$T/split/metrics.jsonl" 2>/dev/null | grep -o '"loss":[^,]*')
    if [ $rc -eq 0 ] && [ -n "$a" ] && [ "$a" = "$b" ]; then record PASS resume "$secs" "step 4 $a in both runs"
    else record FAIL resume "$secs" "exit $rc; step 4: uninterrupted ${a:-none}, resumed ${b:-none}"; fi
  elif [ $rc -eq 0 ]; then record FAIL smoke "$secs" "ran, but not on the GPU: $(grep -m1 -E '^(device|note)' "$LOGS/smoke.log")"
  else record FAIL smoke "$secs" "exit $rc$([ $killed = 1 ] && echo ' (time limit)')"; show_tail smoke 6; fi
  rm -rf "$T"
fi

# ---------------------------------------------------------------- benchmark
# It runs the split generators (igemm) first, then each conv implementation (HT_CUDA_CONV=im2col with
# cuda_math tf32, im2col, then igemm) with the grouped generators,
# each with the graph and plain launches and per-phase CUDA events; the figures are the last (igemm,
# the default, with the graph), conv_ms compares the four ("tf32" = im2col with TF32 conv GEMMs);
# the last one's figures as JSON in bench_cuda_step.json.
if [ $QUICK = 1 ]; then run bench_cuda_step 20 "${ENV[@]}" "$G/bench_cuda_step" --steps 30 --no-val --json "$LOGS/bench_cuda_step.json"
else run bench_cuda_step 50 "${ENV[@]}" "$G/bench_cuda_step" --steps 300 --json "$LOGS/bench_cuda_step.json"; fi
ms=$(sed -n 's/^step: \([0-9.]*\) ms\/step.*/\1/p' "$LOGS/bench_cuda_step.log" | tail -1)
val=$(sed -n 's/^validation: \([0-9.]*\) s.*/\1/p' "$LOGS/bench_cuda_step.log" | tail -1)
proj=$(sed -n 's/^projected: .*total \([0-9.]*\) s (\([0-9.]*\) min).*/\1/p' "$LOGS/bench_cuda_step.log" | tail -1)
# a header "== conv implementation: HT_CUDA_CONV=C[ cuda_math=tf32], generators HT_CUDA_GENS=G" names
# its run "C" ("tf32" with TF32, "C split-gens" with the split generators)
conv_ms=$(awk '/^== conv implementation: HT_CUDA_CONV=/ { c = $0; sub(/.*HT_CUDA_CONV=/, "", c); sub(/[ ,].*/, "", c)
  if ($0 ~ /cuda_math=tf32/) c = "tf32"; if ($0 ~ /HT_CUDA_GENS=split/) c = c " split-gens"; impl = c }
  /^step: / && impl != "" { printf "%s%s %s", sep, impl, $2; sep = ", " }' "$LOGS/bench_cuda_step.log")
if [ $rc -eq 0 ] && skipped bench_cuda_step; then noGPU=$((noGPU + 1)); record SKIP bench_cuda_step "$secs" "SKIPPED (no GPU)"
elif [ $rc -eq 0 ] && [ -n "$ms" ]; then
  record PASS bench_cuda_step "$secs" "$ms ms/step$([ -n "$conv_ms" ] && echo " (ms/step by conv: $conv_ms)")$([ -n "$val" ] && echo ", validation $val s"); 13,000 steps: $(awk -v p="${proj:-0}" -v m="$ms" 'BEGIN { if (p > 0) printf "%.1f min", p / 60; else printf "%.1f min of steps", 13000 * m / 60000 }')"
else record FAIL bench_cuda_step "$secs" "exit $rc$([ $killed = 1 ] && echo ' (time limit)')"; show_tail bench_cuda_step 6; fi

# ---------------------------------------------------------------- multi-GPU model inputs
# Full mode only: the default path once more at batch 8 (the paper job otherwise; no validation).
# With the batch-32 figures above it fits the fixed and per-network step time of the multi-GPU
# model (scripts/gpu-scaling-model.py, docs/performance-gpu.md); its tables go into the logs
# (scaling_model.md) and bench.json ("scaling_model"). The collective latency stays assumed: one
# GPU cannot measure it. Reported, not judged.
MODEL_JSON=""
if [ $QUICK = 0 ] && [ -s "$LOGS/bench_cuda_step.json" ]; then
  sed 's/"batch": 32,/"batch": 8,/' "$ROOT/jobs/mnist.json" >"$LOGS/mnist-b8.json"
  run bench_b8 25 "${ENV[@]}" HT_CUDA_CONV=igemm HT_CUDA_GENS=grouped "$G/bench_cuda_step" --steps 200 --no-val \
    --job "$LOGS/mnist-b8.json" --json "$LOGS/bench_b8.json"
  PY=$(command -v python3 2>/dev/null || true)
  if [ $rc -ne 0 ] || [ ! -s "$LOGS/bench_b8.json" ]; then
    record FAIL bench_b8 "$secs" "exit $rc$([ $killed = 1 ] && echo ' (time limit)')"; show_tail bench_b8 6
  elif [ -z "$PY" ]; then record SKIP bench_b8 "$secs" "no python3 for scripts/gpu-scaling-model.py (bench_b8.json is in the logs)"
  elif "$PY" "$ROOT/scripts/gpu-scaling-model.py" --bench "$LOGS/bench_cuda_step.json" --bench "$LOGS/bench_b8.json" \
         --json "$LOGS/scaling_model.json" >"$LOGS/scaling_model.md" 2>&1; then
    MODEL_JSON=$LOGS/scaling_model.json
    eff=$(awk -F'|' '/^\| 8 \| 8 \(grouped\) \| yes/ { gsub(/ /, "", $12); print $12; exit }' "$LOGS/scaling_model.md")
    b8=$(sed -n 's/^step: \([0-9.]*\) ms\/step.*/\1/p' "$LOGS/bench_b8.log" | head -1)
    record PASS bench_b8 "$secs" "batch 8: $b8 ms/step; model, 8 GPUs x 32 networks at the assumed NCCL latency: $eff weak-scaling efficiency"
  else record FAIL bench_b8 "$secs" "scripts/gpu-scaling-model.py failed: $(tail -1 "$LOGS/scaling_model.md" | cut -c1-120)"; fi
fi

# ---------------------------------------------------------------- TF32 against FP32, 2,000 steps
# Only with --tf32-compare: two trainings of the paper job (cuda_math fp32, then tf32; im2col),
# their accuracy/loss trajectories and differences (tests/gpu/tf32-compare.sh). Reported, not judged.
TF32_JSON=""
if [ $TF32CMP = 1 ]; then
  if [ -z "$DATA" ]; then record SKIP tf32_compare 0 "no MNIST (set HYPERTRAIN_DATA, or put it in data/mnist)"
  elif [ $noGPU -gt 0 ] && ! grep -qE "^PASS +(test_|nan_|sync_|memcheck|bench)" "$SUMMARY"; then record SKIP tf32_compare 0 "no GPU"
  else
    T=$(mktemp -d /tmp/ht_gpu_tf32_XXXXXX)
    run tf32_compare $TF32_LIMIT "${ENV[@]}" bash "$ROOT/tests/gpu/tf32-compare.sh" --bin "$BIN/hypertrain" --data "$DATA" \
      --job jobs/mnist.json --steps 2000 --val-every 250 --out "$T/cmp"
    for f in tf32_compare.json tf32_compare.csv tf32_train.csv fp32.log tf32.log; do [ -f "$T/cmp/$f" ] && cp "$T/cmp/$f" "$LOGS/"; done
    fig=$(grep -m1 -o 'step [0-9]*: mean accuracy fp32 .*' "$LOGS/tf32_compare.log" | cut -c1-200)
    if [ $rc -eq 0 ] && [ -s "$LOGS/tf32_compare.json" ]; then TF32_JSON=$LOGS/tf32_compare.json; record PASS tf32_compare "$secs" "$fig"
    else record FAIL tf32_compare "$secs" "exit $rc$([ $killed = 1 ] && echo ' (time limit)')"; show_tail tf32_compare 6; fi
    rm -rf "$T"
  fi
fi

# ---------------------------------------------------------------- compute-sanitizer
# Last: the slowest checks, so that a slow tool never costs the benchmark its time. Without NCCL
# (HYPERTRAIN_COMM=auto): the reports are about our kernels; NCCL is checked above.
SAN=$(command -v compute-sanitizer 2>/dev/null || true)
for d in "${CUDA_HOME:-}" /usr/local/cuda; do [ -z "$SAN" ] && [ -n "$d" ] && [ -x "$d/bin/compute-sanitizer" ] && SAN=$d/bin/compute-sanitizer; done
sanitize() { # NAME LIMIT TOOL CMD...
  local name=$1 limit=$2 tool=$3; shift 3
  run "$name" "$limit" env HYPERTRAIN_COMM=auto "$SAN" --tool "$tool" --error-exitcode 86 --print-limit 20 "$@"
  local errs; errs=$(grep -m1 -oE "ERROR SUMMARY: [0-9]+ error|RACECHECK SUMMARY: [0-9]+ hazard[^ ]*" "$LOGS/$name.log")
  if skipped "$name" && [ $rc -eq 0 ]; then noGPU=$((noGPU + 1)); record SKIP "$name" "$secs" "SKIPPED (no GPU)"
  elif grep -qE "Device not supported|Unable to find injection|error 999" "$LOGS/$name.log" && [ $rc -ne 86 ]; then
    record SKIP "$name" "$secs" "compute-sanitizer cannot use this GPU here: $(grep -m1 -oE 'Device not supported|Unable to find injection[^.]*|error 999' "$LOGS/$name.log")"
  elif [ $rc -eq 0 ]; then record PASS "$name" "$secs" "${errs:-no report}"
  else record FAIL "$name" "$secs" "exit $rc$([ $killed = 1 ] && echo ' (time limit)'); ${errs:-}"
    grep -m8 -E "=========  (Invalid|Race|Uninitialized|Program hit|.*at .*in )" "$LOGS/$name.log" | sed 's/^/    /'; fi
}
TWO_STEPS=("$G/bench_cuda_step" --steps 2 --warmup 0 --profile 0 --no-val)
if [ -z "$SAN" ]; then
  record SKIP compute-sanitizer 0 "not found (PATH, CUDA_HOME/bin, /usr/local/cuda/bin)"
elif [ $QUICK = 1 ]; then
  HT_CUDA_CONV=igemm HT_CUDA_GENS=grouped sanitize memcheck_steps 35 memcheck "${TWO_STEPS[@]}" --job jobs/tiny.json
else
  sanitize memcheck_kernels 40 memcheck "$G/test_cuda_kernels"
  # The steps with the default conv and generator paths only (unset, bench_cuda_step would run
  # the split generators, TF32, im2col and igemm).
  HT_CUDA_CONV=igemm HT_CUDA_GENS=grouped sanitize memcheck_steps 35 memcheck "${TWO_STEPS[@]}"
  HT_CUDA_CONV=igemm HT_CUDA_GENS=grouped sanitize racecheck 25 racecheck "$G/bench_cuda_step" --steps 1 --warmup 0 --profile 0 --no-val --job jobs/tiny.json
  HT_CUDA_CONV=igemm HT_CUDA_GENS=grouped sanitize initcheck 25 initcheck "$G/bench_cuda_step" --steps 1 --warmup 0 --profile 0 --no-val --job jobs/tiny.json
fi

# ---------------------------------------------------------------- verdict
ELAPSED=$(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
json_str() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
cat >"$LOGS/bench.json" <<JSON
{
  "gpu": "$(json_str "$GPU_NAME")", "compute_capability": "$CC", "driver": "$(json_str "$DRIVER")",
  "mode": "$MODE", "quick": $QUICK, "origin": "$(json_str "$([ $MODE = bundle ] && sed -n 's/^commit: //p' "$ROOT/BUNDLE" || git rev-parse --short HEAD 2>/dev/null)")",
  "job": "jobs/mnist.json", "comm": "nccl",
  "ms_per_step": ${ms:-null}, "validation_s": ${val:-null}, "projected_13000_steps_s": ${proj:-null},
  "conv_ms_per_step": "$(json_str "$conv_ms")",
  "step_bench": $([ -s "$LOGS/bench_cuda_step.json" ] && cat "$LOGS/bench_cuda_step.json" || echo null),
  "tf32_compare": $([ -n "$TF32_JSON" ] && cat "$TF32_JSON" || echo null),
  "scaling_model": $([ -n "$MODEL_JSON" ] && cat "$MODEL_JSON" || echo null),
  "checks_passed": $passes, "checks_failed": $failures, "checks_skipped": $skips, "elapsed_s": $ELAPSED
}
JSON
if [ $failures -gt 0 ]; then verdict="VERDICT: $failures check(s) FAILED, $passes passed, $skips skipped ($ELAPSED s)"; status=1
elif [ $noGPU -gt 0 ] && [ $passes -le 1 ]; then verdict="VERDICT: no GPU: $noGPU GPU program(s) said SKIPPED (no GPU); nothing was checked ($ELAPSED s)"; status=3
else verdict="VERDICT: all $passes checks passed, $skips skipped ($ELAPSED s)"; status=0; fi
if [ -n "$OUTDIR" ]; then
  mkdir -p "$OUTDIR"
  cp "$SUMMARY" "$LOGS/bench.json" "$OUTDIR/"
  tar -C "$(dirname "$LOGS")" -czf "$OUTDIR/logs.tar.gz" gpu-logs
  rm -rf "$(dirname "$LOGS")"
  where="$OUTDIR/: summary.txt, bench.json, logs.tar.gz"; SUMMARY=$OUTDIR/summary.txt
else where="$LOGS/"; fi
echo
echo "================ summary ================  (full logs: $where)"
cat "$SUMMARY"
echo "$verdict"
exit $status
