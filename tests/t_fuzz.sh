#!/usr/bin/env bash
# The libFuzzer harnesses of fuzz/ (docs/fuzzing.md): builds them (make fuzz: clang, ASan + UBSan),
# runs each for FUZZ_SECONDS (default 30) over a scratch copy of its committed corpus
# fuzz/corpus/<harness>/ (the committed files are never changed), then replays every crash
# reproducer in fuzz/regressions/<harness>/. A crash, hang, sanitizer report or oversized
# allocation (> 512 MB in one malloc) fails the test; the input is kept in build-fuzz/artifacts/.
# Without clang: SKIPPED, or FAIL when CI=true (CI must run it).
set -u
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-30}
if ! command -v "${FUZZ_CC:-clang}" >/dev/null; then
  if [ "${CI:-}" = "true" ]; then echo "FAIL: clang not found (scripts/setup.sh installs it); CI must run the fuzzers"; exit 1; fi
  echo "t_fuzz: SKIPPED (clang not found; scripts/setup.sh installs clang and libclang-rt-14-dev)"; exit 0
fi
if ! nice make -s fuzz >build-fuzz.log 2>&1; then
  tail -20 build-fuzz.log; echo "FAIL: make fuzz"; rm -f build-fuzz.log; exit 1
fi
rm -f build-fuzz.log
T=$(mktemp -d /tmp/ht_fuzz_XXXXXX)
trap 'rm -rf "$T"' EXIT
ART=build-fuzz/artifacts
mkdir -p "$ART"
# Leaks are not checked: a fatal error returns to the harness by longjmp and leaves what the
# interrupted function allocated (in the normal build the process ends there).
export ASAN_OPTIONS="detect_leaks=0:quarantine_size_mb=16${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
COMMON=(-malloc_limit_mb=512 -timeout=25 -detect_leaks=0)
fails=0; passes=0
for bin in build-fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=${bin#build-fuzz/fuzz_}
  corpus="$T/corpus_$name"
  mkdir -p "$corpus"
  cp fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null
  if nice "$bin" "$corpus" "${COMMON[@]}" -max_total_time="$SECONDS_EACH" -artifact_prefix="$ART/${name}_" \
       -print_final_stats=1 >"$T/$name.log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/$name.log")
    passes=$((passes+1)); echo "  PASS fuzz_$name: ${SECONDS_EACH}s, ${execs:-?} executions, no crash"
  else
    fails=$((fails+1)); echo "  FAIL fuzz_$name: (input kept in $ART/)"; grep -E "ERROR|SUMMARY|#0|#1 |#2 |#3 " "$T/$name.log" | head -12 | sed 's/^/      /'
  fi
  regs=(fuzz/regressions/"$name"/*)
  [ -e "${regs[0]}" ] || continue
  if "$bin" "${COMMON[@]}" "${regs[@]}" >"$T/$name.reg.log" 2>&1; then
    passes=$((passes+1)); echo "  PASS fuzz_$name: ${#regs[@]} regression input(s) replayed"
  else
    fails=$((fails+1)); echo "  FAIL fuzz_$name regressions:"; grep -E "Running:|ERROR|SUMMARY|#0|#1 " "$T/$name.reg.log" | head -12 | sed 's/^/      /'
  fi
done
echo "t_fuzz: $passes passed, $fails failed"
[ $fails -eq 0 ] && [ $passes -gt 0 ]
