#!/usr/bin/env bash
# t_cuda_build.sh (make test): the CUDA backend builds and links, and behaves sensibly where no GPU is.
# With nvcc available:
#   1. make CUDA=1 MPI=0 BUILD=build-cuda builds build-cuda/hypertrain, the CPU tests and tests/gpu/* there,
#      linked against cudart, cuBLAS and NCCL, without touching the CPU build (./hypertrain, build/)
#   2. every GPU test binary prints "SKIPPED (no GPU)" and exits 0 here (or, on a machine with a
#      GPU, runs and passes: test_cuda_kernels only, the rest belongs to tests/gpu/run-all.sh)
#   2b. sm_90 and sm_80 machine code and compute_90 PTX (newer GPUs JIT it) are embedded
#   2c. NCCL as only libnccl.so.2 (a Python package's): NCCL_HOME=<folder with lib/libnccl.so.2>
#      links with -l:libnccl.so.2; cuda/nccl_compat/nccl.h matches the real nccl.h (values and
#      signatures, tests/gpu/nccl_abi.c) and mpi/comm_nccl.c compiles against it
#   3. build-cuda/hypertrain: --device cuda without a GPU is a clear error; --device auto prints a
#      note and trains on the CPU; a bad --device value is an error; the CPU build rejects
#      --device cuda with a hint
# Without nvcc: prints "SKIPPED (no nvcc)" and exits 0. The first build takes a few minutes
# (nvcc, two architectures); later runs are incremental.
set -u
cd "$(dirname "$0")/.."
NVCC=$(command -v nvcc 2>/dev/null || true)
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
if [ -z "$NVCC" ]; then echo "t_cuda_build: SKIPPED (no nvcc)"; exit 0; fi
BUILD=build-cuda
DATA=${HYPERTRAIN_TEST_DATA:-../shared/data/mnist}
passes=0; fails=0
pass() { passes=$((passes+1)); echo "  PASS $*"; }
fail() { fails=$((fails+1)); echo "  FAIL $*"; }
T=$(mktemp -d /tmp/ht_cuda_build_XXXXXX)
trap 'rm -rf "$T"' EXIT

echo "build (nvcc: $NVCC -> $(readlink -f "$NVCC"))"
cpu_bin_before=$( [ -f hypertrain ] && stat -c %Y hypertrain || echo none)
# A clean environment for the nested make: the outer make's flags and variables must not leak in.
# MPI=0: the flags of the bundle (tests/t_bundle.sh), so that both share build-cuda/ (comm_mpi.c,
# the only MPI-specific object, is built and tested by the CPU MPI build).
if env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make CUDA=1 MPI=0 BUILD=$BUILD -j2 >"$T/build.log" 2>&1; then
  pass "make CUDA=1 MPI=0 BUILD=$BUILD"
else
  fail "make CUDA=1 MPI=0 BUILD=$BUILD (last lines of the log:)"; tail -30 "$T/build.log" | sed 's/^/      /'
  echo "t_cuda_build: $passes passed, $fails failed"; exit 1
fi
if grep -E "warning" "$T/build.log" | grep -E "cuda/|mpi/comm_nccl|tests/gpu/" >/dev/null; then
  fail "the CUDA sources compile without warnings:"; grep -E "warning" "$T/build.log" | grep -E "cuda/|mpi/comm_nccl|tests/gpu/" | head -5 | sed 's/^/      /'
else pass "no compiler warnings in cuda/, mpi/comm_nccl.c, tests/gpu/ (of the files rebuilt now)"; fi
GPU_TESTS=(test_cuda_kernels test_cuda_conv test_cuda_step test_nccl bench_cuda_step)
missing=""
for f in hypertrain tests/test_train "${GPU_TESTS[@]/#/tests/gpu/}"; do [ -x "$BUILD/$f" ] || missing="$missing $f"; done
[ -z "$missing" ] && pass "binaries in $BUILD/: hypertrain, CPU tests, ${GPU_TESTS[*]}" || fail "missing in $BUILD/:$missing"
libs=$(ldd "$BUILD/hypertrain" 2>/dev/null)
if echo "$libs" | grep -q libcudart && echo "$libs" | grep -q libcublas && echo "$libs" | grep -q libnccl; then
  pass "$BUILD/hypertrain links cudart, cuBLAS and NCCL"
else fail "$BUILD/hypertrain does not link cudart, cuBLAS and NCCL: $(echo "$libs" | grep -E 'cuda|cublas|nccl' | tr '\n' ' ')"; fi
if echo "$libs" | grep -q "not found"; then fail "unresolved libraries: $(echo "$libs" | grep 'not found' | tr '\n' ' ')"
else pass "all shared libraries of $BUILD/hypertrain resolve"; fi
cpu_bin_after=$( [ -f hypertrain ] && stat -c %Y hypertrain || echo none)
if [ "$cpu_bin_before" = "$cpu_bin_after" ] && ! { [ -f hypertrain ] && ldd hypertrain | grep -q libcudart; }; then
  pass "the CPU build (./hypertrain) is untouched and not linked against CUDA"
else fail "the CUDA build changed ./hypertrain"; fi

CUOBJDUMP=$(dirname "$NVCC")/cuobjdump
if [ -x "$CUOBJDUMP" ]; then
  elf=$("$CUOBJDUMP" --list-elf "$BUILD/hypertrain" 2>/dev/null); ptx=$("$CUOBJDUMP" --list-ptx "$BUILD/hypertrain" 2>/dev/null)
  if echo "$elf" | grep -q sm_90 && echo "$elf" | grep -q sm_80 && echo "$ptx" | grep -qE "sm_90|compute_90"; then
    pass "$BUILD/hypertrain embeds sm_90 and sm_80 code and compute_90 PTX"
  else fail "embedded code: elf [$(echo "$elf" | grep -o 'sm_[0-9]*' | sort -u | tr '\n' ' ')] ptx [$(echo "$ptx" | grep -oE '(sm|compute)_[0-9]*' | sort -u | tr '\n' ' ')]"; fi
else # no cuobjdump (a toolkit without it): the PTX text itself is in the fat binary, uncompressed
  if strings -n 6 "$BUILD/hypertrain" | grep -q '^\.target sm_90' && grep -q "code=compute_90" "$BUILD/.cuda-flags"; then
    pass "$BUILD/hypertrain embeds compute_90 PTX (its '.target sm_90' text; no cuobjdump here for the machine code)"
  else fail "no compute_90 PTX in $BUILD/hypertrain"; fi
fi

echo "NCCL as only libnccl.so.2"
NLIB=$(ldd "$BUILD/hypertrain" | sed -n 's/.*libnccl.so.2 => \([^ ]*\) .*/\1/p')
mkdir -p "$T/nccl/lib" && ln -s "$NLIB" "$T/nccl/lib/libnccl.so.2"
cfg=$(env -u MAKEFLAGS -u MAKELEVEL make -s CUDA=1 MPI=0 NCCL_HOME="$T/nccl" BUILD="$T/cfg" cuda-config 2>&1)
nlibs=$(echo "$cfg" | sed -n 's/^NCCL_LIBS=//p')
# The Makefile's CUDA_INC (the folder with cuda_runtime.h, the one the build itself used): not
# $(dirname nvcc)/../include, which is wrong where bin/ is a link into another tree.
CUDA_INC=$(echo "$cfg" | sed -n 's/^CUDA_INC=//p')
if [ -f "$CUDA_INC/cuda_runtime.h" ]; then pass "cuda_runtime.h for the C files: $CUDA_INC"
else fail "make cuda-config: CUDA_INC='$CUDA_INC' has no cuda_runtime.h ($cfg)"; fi
echo "$nlibs" | grep -q -- "-l:libnccl.so.2" && pass "NCCL_HOME with only lib/libnccl.so.2: NCCL_LIBS=$nlibs" || fail "NCCL_HOME with only libnccl.so.2: $cfg"
# The real nccl.h: in the toolkit's include folder or the system's (where the build found it).
REAL_NCCL_INC=$(for d in "$CUDA_INC" /usr/include; do [ -f "$d/nccl.h" ] && { echo "$d"; break; }; done)
if [ -z "$REAL_NCCL_INC" ]; then
  echo "  NOTE no real nccl.h in $CUDA_INC or /usr/include: the build uses cuda/nccl_compat/nccl.h and"
  echo "       the two cannot be compared here (the compat header is still compiled and run below)"
fi
for h in real compat; do
  [ $h = real ] && [ -z "$REAL_NCCL_INC" ] && continue
  inc=$([ $h = compat ] && echo "-Icuda/nccl_compat -I$CUDA_INC" || echo "-I$REAL_NCCL_INC -I$CUDA_INC")
  if gcc -std=c11 -Wall -Wextra -Werror $inc tests/gpu/nccl_abi.c -o "$T/abi_$h" $nlibs >"$T/abi_$h.log" 2>&1 && "$T/abi_$h" >"$T/abi_$h.out" 2>>"$T/abi_$h.log"; then
    [ $h = compat ] && [ -z "$REAL_NCCL_INC" ] && pass "nccl_abi builds against cuda/nccl_compat/nccl.h, links with $nlibs and runs"
  else fail "nccl_abi against the $h nccl.h:"; sed 's/^/      /' "$T/abi_$h.log" | head -8; fi
done
if [ -n "$REAL_NCCL_INC" ]; then
  if [ -s "$T/abi_real.out" ] && cmp -s "$T/abi_real.out" "$T/abi_compat.out"; then
    pass "cuda/nccl_compat/nccl.h = the real nccl.h in $REAL_NCCL_INC ($(cut -c1-60 "$T/abi_real.out")...), linked with $nlibs and loaded"
  else fail "the compat header differs from the real one: $(cat "$T/abi_real.out" 2>/dev/null) / $(cat "$T/abi_compat.out" 2>/dev/null)"; fi
fi
gcc -std=c11 -fsyntax-only -Wall -Wextra -Wno-unused-parameter -Werror -D_POSIX_C_SOURCE=200809L -Icuda/nccl_compat -Isrc -Impi -Icuda \
    -I"$CUDA_INC" mpi/comm_nccl.c >"$T/compat.log" 2>&1 && pass "mpi/comm_nccl.c compiles against cuda/nccl_compat/nccl.h" \
  || { fail "mpi/comm_nccl.c against the compat header:"; head -5 "$T/compat.log"; }

echo "GPU test binaries"
has_gpu=0
for t in "${GPU_TESTS[@]}"; do
  timeout 600 "$BUILD/tests/gpu/$t" $( [ "$t" = bench_cuda_step ] && echo "--steps 20") >"$T/$t.log" 2>&1
  rc=$?
  if grep -q "SKIPPED (no GPU)" "$T/$t.log"; then
    [ $rc -eq 0 ] && pass "$t: $(grep -m1 'SKIPPED' "$T/$t.log" | cut -c1-110)" || fail "$t: SKIPPED but exit $rc"
  else
    has_gpu=1
    if [ "$t" = test_cuda_kernels ] || [ "$t" = test_cuda_conv ]; then
      [ $rc -eq 0 ] && pass "$t on a GPU: $(tail -1 "$T/$t.log")" || { fail "$t on a GPU: exit $rc"; grep FAIL "$T/$t.log" | head -10 | sed 's/^/      /'; }
    else
      echo "  (a GPU is present: $t ran; tests/gpu/run-all.sh runs the full GPU checks) exit $rc"
    fi
  fi
done

echo "device selection (build-cuda/hypertrain)"
HT="$BUILD/hypertrain"
"$HT" jobs/smoke.json --device bogus --out "$T/bogus" >"$T/bogus.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "device must be cpu, cuda or auto" "$T/bogus.log" && pass "--device bogus: error" \
  || fail "--device bogus: exit $rc, $(grep -m1 error "$T/bogus.log")"
if [ $has_gpu -eq 0 ]; then
  "$HT" jobs/smoke.json --device cuda --out "$T/cuda" >"$T/cuda.log" 2>&1
  rc=$?
  [ $rc -ne 0 ] && grep -q "no usable GPU" "$T/cuda.log" && pass "--device cuda without a GPU: $(grep -m1 -o 'rank 0 sees no usable GPU[^.]*' "$T/cuda.log" | cut -c1-100)" \
    || fail "--device cuda without a GPU: exit $rc, $(grep -m1 error "$T/cuda.log")"
  if ls "$DATA"/train-images-idx3-ubyte* >/dev/null 2>&1; then
    HYPERTRAIN_DEVICE= "$HT" jobs/smoke.json --data "$DATA" --set steps=1 --quiet --out "$T/auto" >"$T/auto.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] && grep -q "built with CUDA, but no usable GPU" "$T/auto.log" && grep -q "^done" "$T/auto.log" \
      && pass "--device auto without a GPU: note, then trains on the CPU" \
      || { fail "--device auto without a GPU: exit $rc"; tail -5 "$T/auto.log" | sed 's/^/      /'; }
    HYPERTRAIN_DEVICE=cpu "$HT" jobs/smoke.json --data "$DATA" --set steps=1 --quiet --out "$T/cpu" >"$T/cpu.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] && grep -q "device: CPU (--device cpu)" "$T/cpu.log" && ! grep -q "note:" "$T/cpu.log" \
      && pass "HYPERTRAIN_DEVICE=cpu: CPU, no note" || fail "HYPERTRAIN_DEVICE=cpu: exit $rc"
  else
    echo "  (no MNIST in $DATA: --device auto/cpu runs not tried)"
  fi
fi
if [ -x ./hypertrain ] && ! ldd ./hypertrain | grep -q libcudart; then
  ./hypertrain jobs/smoke.json --device cuda --out "$T/cpubuild" >"$T/cpubuild.log" 2>&1
  rc=$?
  [ $rc -ne 0 ] && grep -q "built without CUDA" "$T/cpubuild.log" && pass "CPU build, --device cuda: error with a hint" \
    || fail "CPU build, --device cuda: exit $rc, $(grep -m1 error "$T/cpubuild.log")"
fi
echo "t_cuda_build: $passes passed, $fails failed"
[ $fails -eq 0 ] && [ $passes -gt 0 ]
