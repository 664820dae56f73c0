#!/usr/bin/env bash
# tests/gpu/run-all.sh: everything that needs a GPU, in one prepared script (run from anywhere, on a
# machine with an NVIDIA GPU and the CUDA toolkit; about 3-4 minutes on one H200):
#   1. build: make CUDA=1 into $BUILD (default build-cuda), for this GPU's architecture only
#   2. test_cuda_kernels   every kernel against src/ (budgets in tests/gpu/gpu_check.cuh)
#   3. test_cuda_step      5 training steps, GPU vs CPU (lockstep and free-running)
#   4. test_nccl           NCCL collectives on known values: one rank; then, under MPI, one rank per
#                          GPU (>= 2 GPUs) or, with a single GPU, the clear error for 2 ranks on it;
#                          and a fatal NCCL error ending every rank promptly (--fail)
#   5. hypertrain          jobs/smoke.json on the GPU (when MNIST is found), and the same run split
#                          by a checkpoint + --resume must log the same losses
#   6. bench_cuda_step     ms/step on the paper job and the projected time of 13,000 steps
# Prints a summary; exits non-zero if anything failed. Logs in $BUILD/gpu-logs/.
# Environment: BUILD, CUDA_ARCH (default: detected with nvidia-smi), HYPERTRAIN_DATA (MNIST dir),
# MPI=0/1 (default: make's detection), JOBS (make -j).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-cuda}
LOGS=$BUILD/gpu-logs
mkdir -p "$LOGS"
T_START=$(date +%s)
summary=()
failures=0

record() { # record STATUS NAME SECONDS DETAIL
  summary+=("$(printf '%-5s %-46s %5ss  %s' "$1" "$2" "$3" "$4")")
  [ "$1" = FAIL ] && failures=$((failures + 1))
  echo "== $1 $2 ($3 s) $4"
}

# run NAME LIMIT_S CMD...: runs CMD under timeout with its output in $LOGS/NAME.log; sets rc, secs
run() {
  local name=$1 limit=$2; shift 2
  local t0; t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$LOGS/$name.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo "   (killed by timeout after $limit s)" >>"$LOGS/$name.log"; fi
}

show_tail() { tail -n "${2:-15}" "$LOGS/$1.log" | sed 's/^/    /'; }

# A test binary: PASS on exit 0 with its summary line, FAIL otherwise (SKIPPED would mean no GPU).
test_binary() {
  local name=$1 limit=$2; shift 2
  run "$name" "$limit" "$@"
  local last; last=$(grep -E "passed, [0-9]+ failed|SKIPPED" "$LOGS/$name.log" | tail -1)
  if [ $rc -eq 0 ] && ! grep -q "SKIPPED" "$LOGS/$name.log"; then record PASS "$name" "$secs" "$last"
  elif [ $rc -eq 0 ]; then record FAIL "$name" "$secs" "skipped on a GPU machine? $last"
  else record FAIL "$name" "$secs" "exit $rc${last:+: $last}"; grep -E "FAIL|error" "$LOGS/$name.log" | head -20 | sed 's/^/    /'; fi
}

echo "hypertrain GPU checks, $(date -u +%Y-%m-%dT%H:%M:%SZ), logs in $LOGS/"
NGPU=0
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi -L | sed 's/^/  /'
  NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
  CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
  [ -z "${CUDA_ARCH:-}" ] && [ -n "$CC" ] && CUDA_ARCH="-gencode arch=compute_$CC,code=sm_$CC"
else
  echo "  nvidia-smi not found: the GPU tests will report SKIPPED (no GPU) and count as failures here"
fi
CUDA_ARCH=${CUDA_ARCH:--gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80}
echo "  $NGPU GPU(s); CUDA_ARCH=$CUDA_ARCH"

# ---- 1. build
MAKEARGS=(CUDA=1 "BUILD=$BUILD" "CUDA_ARCH=$CUDA_ARCH" -j"${JOBS:-$(nproc)}")
[ -n "${MPI:-}" ] && MAKEARGS+=("MPI=$MPI")
run build 300 env -u MAKEFLAGS -u MAKELEVEL make "${MAKEARGS[@]}"
if [ $rc -ne 0 ]; then
  record FAIL build "$secs" "make ${MAKEARGS[*]} failed (exit $rc)"; show_tail build 30
  echo "the build failed: nothing else can run"; exit 1
fi
record PASS build "$secs" "make ${MAKEARGS[*]}"
G=$BUILD/tests/gpu

# ---- 2-3. kernel and step tests
test_binary test_cuda_kernels 150 "$G/test_cuda_kernels"
test_binary test_cuda_step 240 "$G/test_cuda_step"

# ---- 4. NCCL
test_binary test_nccl_1rank 60 "$G/test_nccl"
if grep -q libmpi < <(ldd "$G/test_nccl" 2>/dev/null) && command -v mpirun >/dev/null; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  MPIRUN=(mpirun --oversubscribe --bind-to none)
  if [ "$NGPU" -ge 2 ]; then
    test_binary "test_nccl_${NGPU}ranks" 90 "${MPIRUN[@]}" -np "$NGPU" "$G/test_nccl"
  else
    run test_nccl_2ranks_1gpu 60 "${MPIRUN[@]}" -np 2 "$G/test_nccl"
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "ranks run on host .* visible GPU" "$LOGS/test_nccl_2ranks_1gpu.log"; then
      record PASS "2 ranks on 1 GPU: clear error" "$secs" "$(grep -m1 -o 'ranks run on host .* visible GPU(s)' "$LOGS/test_nccl_2ranks_1gpu.log")"
    else record FAIL "2 ranks on 1 GPU: clear error" "$secs" "exit $rc, no 'ranks run on host ... GPU' message"; show_tail test_nccl_2ranks_1gpu; fi
  fi
  NP=$([ "$NGPU" -ge 2 ] && echo 2 || echo 1)
  run test_nccl_fail 60 "${MPIRUN[@]}" -np "$NP" "$G/test_nccl" --fail
  if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$secs" -le 30 ] && grep -q "invalid datatype) failed" "$LOGS/test_nccl_fail.log"; then
    record PASS "fatal NCCL error ends $NP rank(s)" "$secs" "exit $rc"
  else record FAIL "fatal NCCL error ends $NP rank(s)" "$secs" "exit $rc (expected non-zero within 30 s and the NCCL_CHECK message)"; show_tail test_nccl_fail; fi
else
  record SKIP "test_nccl under mpirun" 0 "not an MPI build or no mpirun"
fi

# ---- 5. hypertrain on the GPU
DATA=""
for d in "${HYPERTRAIN_DATA:-}" data/mnist ../shared/data/mnist shared/data/mnist; do
  if [ -n "$d" ] && ls "$d"/train-images-idx3-ubyte* >/dev/null 2>&1; then DATA=$d; break; fi
done
if [ -n "$DATA" ]; then
  T=$(mktemp -d /tmp/ht_gpu_XXXXXX)
  HT=("$BUILD/hypertrain" jobs/smoke.json --data "$DATA" --device cuda --quiet)
  run hypertrain_smoke 120 "${HT[@]}" --out "$T/full"
  if [ $rc -eq 0 ] && grep -q "device: CUDA" "$LOGS/hypertrain_smoke.log"; then
    record PASS "hypertrain smoke job on the GPU" "$secs" "$(grep -m1 '^done' "$LOGS/hypertrain_smoke.log")"
    run hypertrain_split 120 "${HT[@]}" --out "$T/split" --set steps=2
    [ $rc -eq 0 ] && run hypertrain_resume 120 "${HT[@]}" --out "$T/split" --resume
    a=$(grep '"type":"train","step":4,' "$T/full/metrics.jsonl" | grep -o '"loss":[^,]*')
    b=$(grep '"type":"train","step":4,' "$T/split/metrics.jsonl" 2>/dev/null | grep -o '"loss":[^,]*')
    if [ $rc -eq 0 ] && [ -n "$a" ] && [ "$a" = "$b" ]; then record PASS "GPU resume repeats the run" "$secs" "step 4 $a in both"
    else record FAIL "GPU resume repeats the run" "$secs" "exit $rc; step 4: uninterrupted ${a:-none}, resumed ${b:-none}"
      show_tail hypertrain_split 5; show_tail hypertrain_resume; fi
  else record FAIL "hypertrain smoke job on the GPU" "$secs" "exit $rc"; show_tail hypertrain_smoke; fi
  rm -rf "$T"
else
  record SKIP "hypertrain smoke job on the GPU" 0 "no MNIST found (set HYPERTRAIN_DATA)"
fi

# ---- 6. benchmark
run bench_cuda_step 120 "$G/bench_cuda_step" --steps 300
if [ $rc -eq 0 ] && grep -q "^projected" "$LOGS/bench_cuda_step.log"; then
  record PASS bench_cuda_step "$secs" "$(grep -m1 '^step:' "$LOGS/bench_cuda_step.log" | cut -c1-90)"
else record FAIL bench_cuda_step "$secs" "exit $rc"; show_tail bench_cuda_step; fi

echo
echo "================ summary ($(( $(date +%s) - T_START )) s) ================"
for line in "${summary[@]}"; do echo "$line"; done
grep -E "^(step|validation|projected):" "$LOGS/bench_cuda_step.log" 2>/dev/null | sed 's/^/  /'
if [ $failures -ne 0 ]; then echo "$failures check(s) FAILED (logs in $LOGS/)"; exit 1; fi
echo "all GPU checks passed"
