#!/usr/bin/env bash
# Runs every test: the C test binaries in build/tests and the shell tests tests/t_*.sh (make test
# runs it from the repository root; what CI runs). Each test's output goes to
# build/test-logs/<test>.log. Every test program or script ends as exactly one of:
#   PASS  exit 0 and no line containing "SKIPPED"
#   SKIP  exit 0 but some of it did not run: its log holds "SKIPPED (reason)" lines, which are
#         listed under it. A whole-test skip ("t_sample: SKIPPED (no MNIST ...)") and a partial
#         one ("  SKIPPED (no h5dump): h5dump -H" among PASS lines) both count as skipped, so a
#         test that silently lost part of its checks is never counted as passed.
#   FAIL  non-zero exit (or, in strict mode, a disallowed skip; see below)
# and the last line is "N passed, N failed, N skipped", alone on its line (N = test programs and
# scripts). The exit status is non-zero if any test failed or none ran.
#
# Strict mode (CI): HT_STRICT=1, or CI=true when HT_STRICT is unset (.ci/run sets HT_STRICT=1).
# Every skip fails its test, except one whose SKIPPED line says "no GPU", "no nvcc" or "on this
# CPU" (hardware, e.g. "no AVX-512 on this CPU", and a toolkit that scripts/setup.sh does not install): CI has MNIST (../shared/data/mnist),
# every package of scripts/setup.sh and an MPI build, so anything else skipped there is a lost
# test. HT_STRICT=0 turns it off even when CI=true.
#
#   bash tests/run.sh [NAME ...]   only the tests whose names are given (test_hyper t_sample ...)
set -u
cd "$(dirname "$0")/.."
strict=${HT_STRICT:-}
if [ -z "$strict" ]; then [ "${CI:-}" = true ] && strict=1 || strict=0; fi
case $strict in 0|1) ;; *) echo "tests/run.sh: HT_STRICT must be 0 or 1, got '$strict'"; exit 2;; esac
[ "$strict" = 1 ] && echo "strict mode: any SKIPPED other than \"no GPU\", \"no nvcc\" or \"... on this CPU\" fails its test"
only=" $* "
pass=0; fail=0; skip=0; failed=(); skipped=()
run() {
  local name=$1; shift
  [ "$only" = "  " ] || [[ "$only" == *" $name "* ]] || return 0
  local log="build/test-logs/$name.log"
  mkdir -p build/test-logs
  local t0=$(date +%s) rc=0
  "$@" >"$log" 2>&1 || rc=$?
  local dt=$(( $(date +%s) - t0 ))
  local skips bad=""
  skips=$(grep -h "SKIPPED" "$log" 2>/dev/null)
  [ "$strict" = 1 ] && bad=$(printf '%s\n' "$skips" | grep -v -e "no GPU" -e "no nvcc" -e "on this CPU" | grep .)
  if [ $rc -ne 0 ]; then
    fail=$((fail+1)); failed+=("$name"); echo "FAIL $name (${dt}s, exit $rc) -- last lines of $log:"
    tail -n 25 "$log" | sed 's/^/    /'
  elif [ -n "$bad" ]; then
    fail=$((fail+1)); failed+=("$name")
    echo "FAIL $name (${dt}s): skipped in strict mode (only \"no GPU\", \"no nvcc\" and \"... on this CPU\" may be skipped):"
  elif [ -n "$skips" ]; then
    skip=$((skip+1)); skipped+=("$name")
    echo "SKIP $name (${dt}s): exit 0, but $(printf '%s\n' "$skips" | wc -l) part(s) did not run:"
  else
    pass=$((pass+1)); echo "PASS $name (${dt}s)"
  fi
  [ -n "$skips" ] && printf '%s\n' "$skips" | sed 's/^ */    /'
  return 0
}
for t in build/tests/test_*; do
  [ -x "$t" ] || continue
  run "$(basename "$t")" "$t"
done
for t in tests/t_*.sh; do
  [ -f "$t" ] || continue
  run "$(basename "$t" .sh)" bash "$t"
done
[ ${#skipped[@]} -ne 0 ] && echo "skipped (in part or whole): ${skipped[*]}"
[ ${#failed[@]} -ne 0 ] && echo "failed: ${failed[*]}"
[ $((pass + fail + skip)) -eq 0 ] && echo "no tests ran"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ] && [ $((pass + fail + skip)) -ne 0 ]
