#!/usr/bin/env bash
# Runs every test: the C test binaries in build/tests and the shell tests tests/t_*.sh.
# Exits non-zero if any test fails. Run from the repository root (make test does).
set -u
cd "$(dirname "$0")/.."
pass=0; fail=0; failed=()
run() {
  local name=$1; shift
  local log="build/test-logs/$name.log"
  mkdir -p build/test-logs
  local t0=$(date +%s)
  if "$@" >"$log" 2>&1; then
    pass=$((pass+1)); echo "PASS $name ($(( $(date +%s) - t0 ))s)"
  else
    fail=$((fail+1)); failed+=("$name"); echo "FAIL $name ($(( $(date +%s) - t0 ))s) -- last lines of $log:"
    tail -n 25 "$log" | sed 's/^/    /'
  fi
  grep -h "SKIPPED" "$log" 2>/dev/null | sed 's/^/    /'
}
for t in build/tests/test_*; do
  [ -x "$t" ] || continue
  run "$(basename "$t")" "$t"
done
for t in tests/t_*.sh; do
  [ -f "$t" ] || continue
  run "$(basename "$t" .sh)" bash "$t"
done
echo "== $pass passed, $fail failed =="
if [ $fail -ne 0 ]; then echo "failed: ${failed[*]}"; exit 1; fi
if [ $pass -eq 0 ]; then echo "no tests ran"; exit 1; fi
