#!/usr/bin/env bash
# t_gpu_emu.sh (make test): the GPU paths that need no GPU, checked on the CPU.
#   1. device selection (mpi/devsel.c) on faked device lists: tests/gpu/test_devsel.c, and with an
#      MPI build's mpicc, across 3 real ranks (comm_node_local = MPI_Comm_split_type):
#      tests/gpu/test_node_local.c
#   2. through the CPU EMULATION of CUDA, cuBLAS and NCCL (tests/gpu/emu/; a one-rank NCCL that
#      really copies and checks its buffers):
#      - test_nccl: every collective of mpi/comm_nccl.c on known values, with guard regions
#      - test_cuda_conv: the implicit-GEMM conv blocks (cuda/conv_igemm.cu) against src/ and im2col
#      - the forced-NCCL training step: HYPERTRAIN_COMM=nccl test_cuda_step (tiny jobs, lockstep and
#        free-running against the CPU trainer; every collective must have gone through NCCL), with
#        the default conv path (igemm), then the same step with HT_CUDA_CONV=im2col
#      - a NaN (and an Inf) in the generated weights ends the GPU step in the same "training
#        diverged at step 1" error as the CPU step (no read of neighbour -1)
#      - cuda_math = tf32: the TF32 conv checks run inside test_cuda_conv and test_cuda_step (above);
#        here the plumbing of tests/gpu/tf32-compare.sh (the 2,000-step fp32/tf32 comparison on a
#        GPU) end to end on an emulated hypertrain: jobs/tiny.json, 4 steps, synthetic images
# The emulation needs g++, python3 and the CPU build's libraries, not nvcc. The first run builds
# build-emu/ (about 2 minutes on 2 cores); later runs rebuild what changed.
set -u
cd "$(dirname "$0")/.."
passes=0; fails=0
pass() { passes=$((passes+1)); echo "  PASS $*"; }
fail() { fails=$((fails+1)); echo "  FAIL $*"; }
T=$(mktemp -d /tmp/ht_gpu_emu_XXXXXX)
trap 'rm -rf "$T"' EXIT

echo "1. device selection on faked device lists"
if gcc -std=c11 -Wall -Wextra -Werror -O1 -D_POSIX_C_SOURCE=200809L -Isrc -Impi -Itests tests/gpu/test_devsel.c \
     mpi/devsel.c src/common.c mpi/comm_single.c -o "$T/test_devsel" -lm >"$T/devsel.log" 2>&1 && "$T/test_devsel" >>"$T/devsel.log" 2>&1; then
  pass "$(tail -1 "$T/devsel.log")"
else fail "test_devsel:"; grep -E "FAIL|error" "$T/devsel.log" | head -10 | sed 's/^/      /'; fi

if command -v mpicc >/dev/null && command -v mpirun >/dev/null; then
  # The node-local rank (MPI_Comm_split_type) and the decision across 3 real MPI ranks.
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
  export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
  if mpicc -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter -O1 -D_POSIX_C_SOURCE=200809L -DHT_MPI=1 -Isrc -Impi -Itests \
       tests/gpu/test_node_local.c mpi/devsel.c mpi/comm_mpi.c src/common.c -o "$T/test_node_local" -lm >"$T/nl.log" 2>&1 \
     && timeout 60 mpirun --oversubscribe --bind-to none -np 3 "$T/test_node_local" >>"$T/nl.log" 2>&1; then
    pass "3 MPI ranks: $(tail -1 "$T/nl.log") (comm_node_local, per-rank device lists, a shared bus id)"
  else fail "test_node_local under mpirun -np 3:"; grep -E "FAIL|error" "$T/nl.log" | head -8 | sed 's/^/      /'; fi
else echo "  (no mpicc/mpirun: the 3-rank node-local check is not run)"; fi

echo "2. the CPU emulation of the CUDA backend"
if ! command -v g++ >/dev/null || ! command -v python3 >/dev/null; then
  echo "  (no g++ or python3: the emulated checks are not run)"
elif ! nice tests/gpu/emu/run-emulated.sh --build-only test_nccl test_cuda_conv test_cuda_step hypertrain >"$T/build.log" 2>&1; then
  fail "building the emulation:"; tail -15 "$T/build.log" | sed 's/^/      /'
else
  E=build-emu
  timeout 300 "$E/test_nccl" >"$T/nccl.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] && pass "emulated test_nccl: $(tail -1 "$T/nccl.log")" || { fail "emulated test_nccl: exit $rc"; grep FAIL "$T/nccl.log" | head -5; }
  timeout 300 "$E/test_cuda_conv" >"$T/conv.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] && pass "emulated test_cuda_conv (implicit-GEMM conv blocks vs src/ and im2col): $(tail -1 "$T/conv.log")" \
    || { fail "emulated test_cuda_conv: exit $rc"; grep -E "FAIL|error" "$T/conv.log" | head -8 | sed 's/^/      /'; }
  HYPERTRAIN_COMM=nccl HT_GPU_TEST_QUICK=1 timeout 600 "$E/test_cuda_step" >"$T/step.log" 2>&1
  rc=$?
  n=$(grep -c "collectives through NCCL: [1-9][0-9]* (HYPERTRAIN_COMM=nccl" "$T/step.log")
  [ $rc -eq 0 ] && [ "$n" -ge 4 ] \
    && pass "forced-NCCL step (HYPERTRAIN_COMM=nccl), GPU vs CPU: $(tail -1 "$T/step.log"); $(grep -m1 -o 'collectives through NCCL: [0-9]*' "$T/step.log") in the first run" \
    || { fail "forced-NCCL step: exit $rc, $n runs with NCCL collectives"; grep -E "FAIL|error" "$T/step.log" | head -8 | sed 's/^/      /'; }
  # igemm is the default conv path, so the run above trains with it; the whole step once more with
  # the im2col path (the cuda_trainer_create line must name it: no silent fallback)
  HT_CUDA_CONV=im2col HT_GPU_TEST_QUICK=1 timeout 600 "$E/test_cuda_step" >"$T/im2col.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] && grep -q "^cuda: convolutions im2col" "$T/im2col.log" && ! grep -q "^cuda: convolutions igemm" "$T/im2col.log" \
    && pass "step with HT_CUDA_CONV=im2col, GPU vs CPU: $(tail -1 "$T/im2col.log")" \
    || { fail "step with HT_CUDA_CONV=im2col: exit $rc"; grep -E "FAIL|error|^cuda:" "$T/im2col.log" | head -8 | sed 's/^/      /'; }
  # tf32-compare.sh on the emulated device: both runs, the "cuda:" line naming each math, the tables
  bash tests/synthetic_mnist.sh "$T/syn" >/dev/null 2>&1
  timeout 300 bash tests/gpu/tf32-compare.sh --bin "$E/hypertrain" --job jobs/tiny.json --steps 4 --val-every 2 \
    --data "$T/syn" --set data.verify=false --out "$T/cmp" >"$T/cmp.log" 2>&1
  rc=$?
  rows=$(grep -c '^[24],' "$T/cmp/tf32_compare.csv" 2>/dev/null)
  if [ $rc -eq 0 ] && [ "$rows" = 2 ] && [ "$(grep -c '^[1-4],' "$T/cmp/tf32_train.csv")" = 4 ] \
     && grep -q "^cuda: convolutions im2col .* in tf32 (cuda_math: TF32" "$T/cmp/tf32.log" \
     && grep -q "^cuda: convolutions im2col .* in fp32 (cuda_math)" "$T/cmp/fp32.log" \
     && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); s=d['summary']; assert s['validations']==2 and len(d['train'])==4 and s['fp32_final_mean_acc'] is not None" "$T/cmp/tf32_compare.json" 2>>"$T/cmp.log"; then
    pass "tf32-compare.sh on the emulated device (tiny job, 4 steps): $(grep -m1 'mean accuracy fp32' "$T/cmp.log" | cut -c15-140)"
  else fail "tf32-compare.sh on the emulated device: exit $rc, $rows validation rows"; tail -5 "$T/cmp.log" | sed 's/^/      /'; fi
  for what in nan inf; do
    for side in gpu cpu; do
      timeout 120 "$E/test_cuda_step" --inject-nan $side $what >"$T/$side-$what.log" 2>&1
      eval "rc_$side=$?"
    done
    msg_g=$(grep -o "error: training diverged at step 1: loss" "$T/gpu-$what.log"); msg_c=$(grep -o "error: training diverged at step 1: loss" "$T/cpu-$what.log")
    if [ "$rc_gpu" -ne 0 ] && [ "$rc_gpu" -lt 124 ] && [ -n "$msg_g" ] && [ "$msg_g" = "$msg_c" ] && [ "$rc_gpu" = "$rc_cpu" ] \
       && grep -q "no update was applied" "$T/gpu-$what.log"; then
      pass "$what in the generated weights: GPU and CPU end alike (exit $rc_gpu): $(grep -o 'training diverged.*entropy [^)]*)' "$T/gpu-$what.log")"
    else fail "$what in the generated weights: GPU exit $rc_gpu, CPU exit $rc_cpu"; tail -2 "$T/gpu-$what.log" "$T/cpu-$what.log" | sed 's/^/      /'; fi
  done
fi
echo "t_gpu_emu: $passes passed, $fails failed"
[ $fails -eq 0 ] && [ $passes -gt 0 ]
