#!/usr/bin/env bash
# The C test programs under AddressSanitizer + UndefinedBehaviorSanitizer: builds them with
# `make SANITIZE=1` (objects and binaries in build-san/, never mixed with build/) and runs each
# build-san/tests/test_* as tests/run.sh runs build/tests/test_*. A test fails on a non-zero exit
# or on any sanitizer report, including one in a forked child whose exit status its parent
# consumes (the fatal-error tests): ASan/LSan reports go to files (log_path) and any such file
# fails the test; UBSan prints to stderr even with log_path, so the test's log is searched for
# "runtime error:"; and a sanitizer exits with status 86, which no harness expects. Leak
# detection is on; leaks inside Open MPI, OpenMP, OpenBLAS and HDF5 are suppressed by
# tests/lsan.supp (library names only). UB is fatal (-fno-sanitize-recover=undefined).
#   tests/t_sanitize.sh [test_hyper ...]   only these programs (default: every tests/test_*.c)
#   HT_TEST_SANITIZE=0   skip (prints SKIPPED: fails in strict mode, see tests/run.sh)
# Logs: build-san/test-logs/<test>.log, reports build-san/test-logs/<test>.san.<pid>.
set -u
cd "$(dirname "$0")/.."
if [ "${HT_TEST_SANITIZE:-1}" = 0 ]; then echo "t_sanitize: SKIPPED (HT_TEST_SANITIZE=0)"; exit 0; fi
CC_PROBE=$(command -v mpicc || command -v "${CC:-gcc}" || true)
if ! printf 'int main(void){return 0;}\n' | $CC_PROBE -x c - -o /dev/null \
     -fsanitize=address,undefined >/dev/null 2>&1; then
  echo "t_sanitize: SKIPPED (the compiler cannot build with -fsanitize=address,undefined: libasan/libubsan missing?)"
  exit 0
fi

# Called from make test: start a make of our own, not a sub-make of the caller's jobserver.
unset MAKEFLAGS MFLAGS MAKELEVEL
LOGS=build-san/test-logs
mkdir -p "$LOGS"
rm -f "$LOGS"/*
progs=()
if [ $# -gt 0 ]; then for name in "$@"; do progs+=("build-san/tests/$name"); done
else for src in tests/test_*.c; do progs+=("build-san/tests/$(basename "$src" .c)"); done; fi
t0=$(date +%s)
if ! make SANITIZE=1 -j"$(nproc)" "${progs[@]}" >"$LOGS/make.log" 2>&1; then
  echo "t_sanitize: FAIL: make SANITIZE=1 failed -- last lines of $LOGS/make.log:"
  tail -n 30 "$LOGS/make.log"
  exit 1
fi
echo "built ${#progs[@]} test programs with make SANITIZE=1 ($(( $(date +%s) - t0 ))s)"

SUPP="$PWD/tests/lsan.supp"
# fast_unwind_on_malloc=0: full stacks for allocations made in libraries built without frame
# pointers (Open MPI's), so that tests/lsan.supp can match their library names.
export LSAN_OPTIONS="suppressions=$SUPP:print_suppressions=0"
# Open MPI and PMIx keep their plugins loaded, so that leak stacks name them (not "<unknown module>").
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
fail=0
for t in "${progs[@]}"; do
  name=$(basename "$t")
  log="$LOGS/$name.log"
  export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:exitcode=86:log_path=$PWD/$LOGS/$name.san"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86"
  s=$(date +%s)
  "$t" >"$log" 2>&1
  rc=$?
  reports=$(ls "$LOGS/$name.san".* 2>/dev/null | tr "\n" " ")
  if grep -qE "runtime error:|ERROR: (Address|Leak)Sanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer" "$log"; then
    reports="$reports $log"
  fi
  if [ $rc -eq 0 ] && [ -z "$reports" ]; then
    echo "PASS $name under ASan+UBSan ($(( $(date +%s) - s ))s)"
  else
    fail=$((fail+1))
    echo "FAIL $name under ASan+UBSan (exit $rc; sanitizer reports: ${reports:-none}) -- $log"
    grep -E "^  FAIL|: FAIL" "$log" | head -n 10 | sed 's/^/    /'
    grep -hE -A12 "runtime error:" "$log" | head -n 40 | sed 's/^/    /'
    for r in $reports; do [ "$r" = "$log" ] || { echo "    --- $r"; head -n 40 "$r" | sed 's/^/    /'; }; done
  fi
  # skips of the sanitized programs are the normal run's skips: shown, counted by tests/run.sh
  grep -h "SKIPPED" "$log" | sed "s/^ */  /; s/^/  $name: /"
done
echo "t_sanitize: $(( ${#progs[@]} - fail )) of ${#progs[@]} test programs pass under ASan+UBSan ($(( $(date +%s) - t0 ))s in all)"
[ $fail -eq 0 ]
