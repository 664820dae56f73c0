#!/usr/bin/env bash
# t_bundle.sh (make test): the relocatable GPU bundle and tests/gpu/run-all.sh as a verdict machine,
# on a machine without a GPU (with nvcc; else SKIPPED (no nvcc)).
#   1. make CUDA=1 MPI=0 bundle: one archive <= 30 MiB
#   2. unpacked into an empty folder: bin/ht-env finds the CUDA runtime, cuBLAS and NCCL and prints
#      where; ldd of every program resolves with only the bundle, those folders and glibc (and
#      fails when a library is taken out of lib/); hypertrain and hyperanalyze start from it
#   3. ht-env names a missing libnccl.so.2 in one line, and finds it in a Python environment's
#      nvidia/nccl/lib (all that pip's nvidia-nccl package brings)
#   4. the bundle's run-all.sh --out DIR: every GPU program starts and says SKIPPED (no GPU); DIR
#      gets exactly summary.txt, bench.json, logs.tar.gz; the summary is the last thing printed
#   5. run-all.sh on fake GPU programs (limits scaled by HT_GPU_LIMIT_SCALE): one sleeps past its
#      limit and is killed (FAIL, no process left), a failing one is FAIL, a passing one reports its
#      % of budget, and the whole script stays within its shared deadline, --quick too
set -u
cd "$(dirname "$0")/.."
NVCC=$(command -v nvcc 2>/dev/null || true)
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
if [ -z "$NVCC" ]; then echo "t_bundle: SKIPPED (no nvcc)"; exit 0; fi
BUILD=build-cuda
DATA=${HYPERTRAIN_TEST_DATA:-../shared/data/mnist}
passes=0; fails=0
pass() { passes=$((passes+1)); echo "  PASS $*"; }
fail() { fails=$((fails+1)); echo "  FAIL $*"; }
T=$(mktemp -d /tmp/ht_bundle_XXXXXX)
trap 'rm -rf "$T"' EXIT

echo "1. make CUDA=1 MPI=0 bundle"
if env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make CUDA=1 MPI=0 BUILD=$BUILD -j2 bundle >"$T/build.log" 2>&1; then
  pass "$(grep '^bundle:' "$T/build.log" | cut -c1-200)"
else
  fail "make CUDA=1 MPI=0 bundle:"; tail -20 "$T/build.log" | sed 's/^/      /'
  echo "t_bundle: $passes passed, $fails failed"; exit 1
fi
A=$BUILD/hypertrain-gpu.tar.xz
size=$(stat -c %s "$A")
[ "$size" -le $((30 * 1048576)) ] && pass "one archive, $((size / 1048576)) MiB <= 30 MiB" || fail "$A is $size bytes > 30 MiB"

echo "2. unpacked into an empty folder"
mkdir "$T/u" && tar -xJf "$A" -C "$T/u"
B=$T/u/hypertrain-gpu
missing=""
for f in bin/hypertrain bin/hyperanalyze bin/test_cuda_kernels bin/test_cuda_step bin/test_nccl bin/bench_cuda_step \
         bin/ht-env jobs/mnist.json jobs/smoke.json jobs/tiny.json tests/gpu/run-all.sh BUNDLE; do
  [ -e "$B/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && pass "it holds the programs, ht-env, jobs/, tests/gpu/run-all.sh and BUNDLE" || fail "missing:$missing"
if ls "$B/lib" | grep -qE '^lib(cudart|cublas|cublasLt|nccl|cuda)\.so|^lib(c|m|stdc\+\+)\.so'; then
  fail "lib/ carries a library the node provides: $(ls "$B/lib" | grep -E '^lib(cudart|cublas|cublasLt|nccl|cuda|c|m|stdc\+\+)\.so' | tr '\n' ' ')"
else pass "lib/ carries $(ls "$B/lib" | wc -l) libraries, none of the NVIDIA ones, glibc or libstdc++"; fi
if readelf -d "$B/bin/hypertrain" | grep -q 'RPATH.*\$ORIGIN/../lib' && ! readelf -d "$B/bin/hypertrain" | grep -qE 'R(UN)?PATH.*/usr'; then
  pass "bin/hypertrain: RPATH \$ORIGIN/../lib only"
else fail "bin/hypertrain: $(readelf -d "$B/bin/hypertrain" | grep -E 'R(UN)?PATH')"; fi
(cd / && env -u LD_LIBRARY_PATH "$B/bin/ht-env") >"$T/env.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "libnccl.so.2: " "$T/env.log" && grep -q "libcublas.so.13: " "$T/env.log" \
  && pass "ht-env finds: $(grep -E 'libcublas\.|libnccl' "$T/env.log" | sed 's/ht-env: //' | tr '\n' ' ')" \
  || { fail "ht-env: exit $rc"; sed 's/^/      /' "$T/env.log"; }
if "$B/bin/ht-env" -q --check >"$T/check.log" 2>&1; then
  pass "ldd of $(grep -c '^ht-env: ok' "$T/check.log") programs resolves with only the bundle, the NVIDIA folders and glibc"
else fail "ht-env --check:"; sed 's/^/      /' "$T/check.log"; fi
cp -r "$B" "$T/lacking" && rm "$T/lacking/lib/libcjson.so.1"
if "$T/lacking/bin/ht-env" -q --check >"$T/check2.log" 2>&1; then fail "ht-env --check passes although lib/libcjson.so.1 was removed"
elif grep -q "FAIL hypertrain: .*libcjson.so.1" "$T/check2.log"; then pass "without lib/libcjson.so.1 the check fails: $(grep -m1 'FAIL hypertrain' "$T/check2.log" | cut -c1-120)"
else fail "ht-env --check without libcjson: $(head -2 "$T/check2.log")"; fi
rm -rf "$T/lacking"
"$B/bin/ht-env" -q "$B/bin/hypertrain" jobs/smoke.json --device cuda --out "$T/cuda" >"$T/ht.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "no usable GPU" "$T/ht.log" && pass "bin/hypertrain starts: --device cuda without a GPU is the clear error" \
  || { fail "bin/hypertrain --device cuda: exit $rc"; tail -3 "$T/ht.log" | sed 's/^/      /'; }
"$B/bin/ht-env" -q "$B/bin/hyperanalyze" --help >"$T/ha.log" 2>&1
rc=$?
[ $rc -eq 0 ] && [ -s "$T/ha.log" ] && pass "bin/hyperanalyze starts (--help)" || { fail "bin/hyperanalyze --help: exit $rc"; tail -3 "$T/ha.log"; }
if ls "$DATA"/train-images-idx3-ubyte* >/dev/null 2>&1; then
  (cd "$B" && bin/ht-env -q bin/hypertrain jobs/smoke.json --data "$(cd "$OLDPWD" && cd "$DATA" && pwd)" --device auto --set steps=1 --quiet --out "$T/auto") >"$T/auto.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] && grep -q "^done" "$T/auto.log" && pass "bin/hypertrain --device auto trains a step on the CPU from the bundle (HDF5, cJSON, OpenBLAS from lib/)" \
    || { fail "bin/hypertrain --device auto: exit $rc"; tail -3 "$T/auto.log" | sed 's/^/      /'; }
fi

echo "3. ht-env: a missing NCCL, and NCCL from a Python environment"
mkdir -p "$T/cuda/lib64" "$T/venv/lib/python3.12/site-packages/nvidia/nccl/lib"
for l in libcudart.so.13 libcublas.so.13 libcublasLt.so.13; do
  p=$(sed -n "s/^ht-env: $l: \([^ ]*\) .*/\1/p" "$T/env.log"); ln -s "$p/$l" "$T/cuda/lib64/$l"
done
ln -s "$(sed -n 's/^ht-env: libnccl.so.2: \([^ ]*\) .*/\1/p' "$T/env.log")/libnccl.so.2" "$T/venv/lib/python3.12/site-packages/nvidia/nccl/lib/libnccl.so.2"
HT_ENV_NO_SYSTEM=1 CUDA_HOME=$T/cuda LD_LIBRARY_PATH= NCCL_HOME= VIRTUAL_ENV= CONDA_PREFIX= "$B/bin/ht-env" >"$T/miss.log" 2>&1
rc=$?
lines=$(grep -c "error" "$T/miss.log")
[ $rc -eq 127 ] && [ "$lines" -eq 1 ] && grep -q "error: libnccl.so.2 not found" "$T/miss.log" \
  && pass "NCCL missing: exit 127 and one line: $(grep error "$T/miss.log" | cut -c1-110)..." \
  || { fail "NCCL missing: exit $rc"; sed 's/^/      /' "$T/miss.log"; }
HT_ENV_NO_SYSTEM=1 CUDA_HOME=$T/cuda LD_LIBRARY_PATH= NCCL_HOME= VIRTUAL_ENV=$T/venv "$B/bin/ht-env" >"$T/venv.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "libnccl.so.2: .*(Python package nccl)" "$T/venv.log" && grep -q "libcublas.so.13: .*(CUDA_HOME)" "$T/venv.log" \
  && pass "cuBLAS from CUDA_HOME, libnccl.so.2 from \$VIRTUAL_ENV/.../nvidia/nccl/lib" || { fail "venv NCCL: exit $rc"; sed 's/^/      /' "$T/venv.log"; }

echo "4. the bundle's run-all.sh --out (no GPU here)"
t0=$(date +%s)
(cd / && "$B/tests/gpu/run-all.sh" --out "$T/out") >"$T/runall.log" 2>&1
rc=$?
secs=$(( $(date +%s) - t0 ))
files=$(ls -A "$T/out" | tr '\n' ' ')
[ "$files" = "bench.json logs.tar.gz summary.txt " ] && pass "--out holds exactly: $files" || fail "--out holds: $files"
sk=""
for p in test_cuda_kernels test_cuda_step test_nccl nan_diverges bench_cuda_step; do
  grep -qE "^SKIP +$p .*SKIPPED \(no GPU\)" "$T/out/summary.txt" || sk="$sk $p"
done
[ -z "$sk" ] && [ $rc -eq 3 ] && pass "every GPU program started and said SKIPPED (no GPU); exit 3 (no GPU) in $secs s" \
  || { fail "run-all.sh: exit $rc, not SKIPPED (no GPU):$sk"; tail -15 "$T/runall.log" | sed 's/^/      /'; }
n=$(wc -l <"$T/out/summary.txt")
if [ "$(tail -n $((n + 1)) "$T/runall.log" | head -n "$n")" = "$(cat "$T/out/summary.txt")" ] && tail -1 "$T/runall.log" | grep -q "^VERDICT: no GPU"; then
  pass "the summary ($n lines) and the verdict are the last thing printed"
else fail "the end of the output is not the summary:"; tail -4 "$T/runall.log" | sed 's/^/      /'; fi
tar -tzf "$T/out/logs.tar.gz" | grep -q "gpu-logs/test_cuda_step.log" && python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$T/out/bench.json" \
  && pass "logs.tar.gz holds every log, bench.json is JSON" || fail "logs.tar.gz or bench.json"

echo "5. run-all.sh on fake GPU programs (time limits x 0.05)"
F=$T/fake
mkdir -p "$F/bin" "$F/tests/gpu"
cp -r "$B/jobs" "$B/BUNDLE" "$F/" && cp "$B/tests/gpu/run-all.sh" "$F/tests/gpu/"
cat >"$F/bin/ht-env" <<'EOF'
#!/usr/bin/env bash
[ "${1:-}" = -q ] && shift
if [ "${1:-}" = --check ]; then echo "ht-env: libcublas.so.13: /fake (test)"; echo "ht-env: libnccl.so.2: /fake (test)"; exit 0; fi
[ $# -gt 0 ] && exec "$@"
EOF
cat >"$F/bin/test_cuda_kernels" <<'EOF'
#!/usr/bin/env bash
echo "  PASS im2col: |err| 0 at 0.0% of budget"; echo "  PASS conv forward: |err| 1e-7 at 42.5% of budget"
echo "test_cuda_kernels: 2 passed, 0 failed"
EOF
printf '#!/usr/bin/env bash\necho "test_cuda_conv: 1 passed, 0 failed"\n' >"$F/bin/test_cuda_conv"
cat >"$F/bin/test_cuda_step" <<'EOF'
#!/usr/bin/env bash
if [ "${1:-}" = --inject-nan ]; then echo "test_cuda_step: error: training diverged at step 1: loss nan (x)"; exit 1; fi
echo "step test hangs"; sleep 1000; echo "never"
EOF
cat >"$F/bin/test_nccl" <<'EOF'
#!/usr/bin/env bash
echo "  FAIL rank 0: all-reduce f32: 3 wrong"; echo "test_nccl (rank 0): 0 passed, 1 failed"; exit 1
EOF
cat >"$F/bin/bench_cuda_step" <<'EOF'
#!/usr/bin/env bash
sleep 0.2
echo "step: 12.500 ms/step over 300 steps (after 5 warm-up steps)"
echo "validation: 1.50 s for 200 networks x 5000 images"
echo "projected: 13000 steps x 12.500 ms = 162.5 s, + 26 validations x 1.50 s = 39.0 s; total 201.5 s (3.4 min) for the paper's run"
EOF
printf '#!/usr/bin/env bash\necho "device: CUDA"\n' >"$F/bin/hypertrain"; cp "$F/bin/hypertrain" "$F/bin/hyperanalyze"
chmod +x "$F"/bin/*
t0=$(date +%s.%N)
HT_GPU_LIMIT_SCALE=0.05 HYPERTRAIN_DATA= "$F/tests/gpu/run-all.sh" --out "$T/fout" >"$T/fake.log" 2>&1
rc=$?
el=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
S=$T/fout/summary.txt
grep -qE "^FAIL +test_cuda_step .*killed at its time limit" "$S" && [ -z "$(pgrep -f "$F/bin/test_cuda_step")" ] \
  && pass "a program sleeping past its limit (120 s x 0.05 here) is killed, recorded FAIL, no process left: $(grep test_cuda_step "$S" | tr -s ' ')" \
  || { fail "the sleeping program: $(grep test_cuda_step "$S")"; pgrep -af "$F/bin" | sed 's/^/      /'; }
grep -qE "^FAIL +test_nccl .*exit 1: 0 passed, 1 failed" "$S" && pass "a failing program: FAIL with its count" || fail "failing program: $(grep test_nccl "$S")"
grep -qE "^PASS +test_cuda_kernels .*2 passed, 0 failed .*\[budget 42.5% max\]" "$S" && pass "a passing program: PASS, its count and % of budget: $(grep test_cuda_kernels "$S" | tr -s ' ')" \
  || fail "passing program: $(grep test_cuda_kernels "$S")"
grep -qE "^PASS +nan_diverges" "$S" && grep -qE "^PASS +bench_cuda_step .*12.500 ms/step.*3.4 min" "$S" \
  && grep -q '"ms_per_step": 12.500' "$T/fout/bench.json" && pass "NaN check and benchmark figures (summary and bench.json)" \
  || fail "nan/bench: $(grep -E 'nan_|bench' "$S" | tr '\n' ' ')"
[ $rc -eq 1 ] && tail -1 "$T/fake.log" | grep -q "^VERDICT: 2 check(s) FAILED" && [ "$(ls -A "$T/fout" | wc -l)" -eq 3 ] \
  && pass "exit 1, verdict last, still exactly three files; $el s <= $(awk 'BEGIN { print 500 * 0.05 + 5 }') s" \
  || { fail "fake run: exit $rc, $el s"; tail -3 "$T/fake.log" | sed 's/^/      /'; }
awk -v e="$el" 'BEGIN { exit !(e <= 500 * 0.05 + 5) }' || fail "the fake run took $el s, over its scaled deadline"
# Every program hangs: --quick stays within its limits (170 s x scale), and a shared deadline shorter
# than the sum of the limits (HT_GPU_TOTAL_S=60 x 0.05 = 3 s) ends the script with the rest "not run".
for p in test_cuda_kernels test_nccl bench_cuda_step; do printf '#!/usr/bin/env bash\nsleep 1000\n' >"$F/bin/$p"; done
for q in quick deadline; do
  t0=$(date +%s.%N)
  if [ $q = quick ]; then lim=$(awk 'BEGIN { print 180 * 0.05 + 5 }')
    HT_GPU_LIMIT_SCALE=0.05 HYPERTRAIN_DATA= "$F/tests/gpu/run-all.sh" --quick --out "$T/q$q" >"$T/$q.log" 2>&1
  else lim=$(awk 'BEGIN { print 60 * 0.05 + 5 }')
    HT_GPU_TOTAL_S=60 HT_GPU_LIMIT_SCALE=0.05 HYPERTRAIN_DATA= "$F/tests/gpu/run-all.sh" --out "$T/q$q" >"$T/$q.log" 2>&1
  fi
  rc=$?
  el=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  notrun=$(grep -c "not run: the script's deadline" "$T/q$q/summary.txt" 2>/dev/null)
  awk -v e="$el" -v l="$lim" 'BEGIN { exit !(e <= l) }' && [ $rc -eq 1 ] && [ -s "$T/q$q/summary.txt" ] && [ -z "$(pgrep -f "$F/bin/")" ] \
    && { [ $q = quick ] || [ "$notrun" -ge 1 ]; } \
    && pass "$q, every program hanging: $el s <= $lim s, summary written ($notrun check(s) not run), no process left" \
    || { fail "$q, all hanging: exit $rc, $el s (limit $lim s)"; sed 's/^/      /' "$T/q$q/summary.txt" 2>/dev/null; }
done
echo "t_bundle: $passes passed, $fails failed"
[ $fails -eq 0 ] && [ $passes -gt 0 ]
