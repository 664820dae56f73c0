#!/usr/bin/env bash
# run-emulated.sh: builds the CUDA backend (cuda/*.cu, mpi/comm_nccl.c) and the GPU tests against a
# CPU EMULATION of the CUDA runtime, cuBLAS and NCCL (tests/gpu/emu/), in build-emu/, and runs
# test_cuda_kernels and test_cuda_step there. This checks the kernels' indexing and logic against
# src/ on a machine without a GPU (optionally under AddressSanitizer: ASAN=1). It is NOT a GPU run:
# speed, concurrency (streams, races), NCCL and the real GPU arithmetic are not exercised.
#   tests/gpu/emu/run-emulated.sh [--build-only] [TEST ...]   default: test_cuda_kernels test_cuda_conv test_cuda_step
# (--build-only: build build-emu/TEST and run nothing; tests/t_gpu_emu.sh runs them its own way;
# TEST "hypertrain" builds build-emu/hypertrain, the program on the emulated device, and never runs it)
# About 1 minute for test_cuda_kernels and 7 for test_cuda_step on 2 cores (HT_GPU_TEST_QUICK=1:
# the tiny jobs only, about 1 minute).
set -eu
cd "$(dirname "$0")/../../.."
BUILD_ONLY=0; [ "${1:-}" = --build-only ] && { BUILD_ONLY=1; shift; }
B=build-emu; [ "${ASAN:-0}" = 1 ] && B=build-emu-asan
mkdir -p $B/pp/cuda $B/pp/tests/gpu $B/obj
PKGC() { pkg-config "$@" 2>/dev/null || true; }
OB=/usr/lib/x86_64-linux-gnu/openblas-openmp
BLAS="-lopenblas"; [ -f $OB/libopenblas.so ] && BLAS="-L$OB -Wl,-rpath,$OB -lopenblas"
INC="-Itests/gpu/emu -Isrc -Impi -Icuda -Itests -Itests/gpu $(PKGC --cflags hdf5) $(PKGC --cflags libcjson) $(PKGC --cflags openblas)"
LIBS="$(PKGC --libs hdf5 || echo -lhdf5) $(PKGC --libs libcjson || echo -lcjson) $BLAS -lz -lm"
SAN=""; [ "${ASAN:-0}" = 1 ] && SAN="-fsanitize=address -fno-omit-frame-pointer"
CFLAGS="-O1 -g -fopenmp -D_POSIX_C_SOURCE=200809L -DHT_CUDA=1 -DHT_CUDA_EMU=1 $SAN"
objs=()
for c in src/*.c mpi/comm_single.c mpi/comm_nccl.c mpi/devsel.c; do
  [ "$c" = src/main.c ] && continue
  o=$B/obj/$(echo "$c" | tr / _).o
  if [ ! -f "$o" ] || [ "$c" -nt "$o" ] || [ -n "$(find src mpi cuda -name '*.h' -newer "$o" 2>/dev/null | head -1)" ]; then
    gcc -std=c11 $CFLAGS $INC -c "$c" -o "$o"
  fi
  objs+=("$o")
done
for cu in cuda/*.cu; do
  pp=$B/pp/${cu%.cu}.cpp; o=$B/obj/$(echo "$cu" | tr / _).o
  python3 tests/gpu/emu/prep.py "$cu" "$pp"
  if [ ! -f "$o" ] || [ "$pp" -nt "$o" ] || [ -n "$(find src mpi cuda -name '*.h' -o -name '*.cuh' | xargs ls -t | head -1 | xargs -I{} find {} -newer "$o")" ]; then
    g++ -std=c++17 $CFLAGS -Wall -Wno-unused-function $INC -x c++ -c "$pp" -o "$o"
  fi
  objs+=("$o")
done
g++ -std=c++17 $CFLAGS $INC -c tests/gpu/emu/emu.cpp -o $B/obj/emu.o
objs+=($B/obj/emu.o)
tests=("$@"); [ ${#tests[@]} -eq 0 ] && tests=(test_cuda_kernels test_cuda_conv test_cuda_step)
rc=0
for t in "${tests[@]}"; do
  if [ "$t" = hypertrain ]; then # the program itself on the emulated device (--device cuda); never run here
    gcc -std=c11 $CFLAGS $INC -c src/main.c -o $B/obj/src_main.c.o
    g++ -std=c++17 $CFLAGS $B/obj/src_main.c.o "${objs[@]}" -o $B/hypertrain $LIBS
    continue
  fi
  python3 tests/gpu/emu/prep.py tests/gpu/$t.cu $B/pp/tests/gpu/$t.cpp
  g++ -std=c++17 $CFLAGS $INC -x c++ $B/pp/tests/gpu/$t.cpp -x none "${objs[@]}" -o $B/$t $LIBS
  [ $BUILD_ONLY = 1 ] && continue
  echo "== $t (CPU EMULATION of the CUDA backend, not a GPU run)"
  if ! ./$B/$t; then rc=1; fi
done
exit $rc
