#!/usr/bin/env bash
# Replays a fixed corpus through a fuzz harness and prints inputs/s: the before/after figure of
# docs/fuzzing.md ("Campaigns"). Compare two builds on the same corpus, interleaved (A B A B), as
# the machine's load changes. Each replay is one process over the corpus repeated REPS times.
#   bash fuzz/bench_replay.sh BUILD_DIR HARNESS CORPUS_DIR [REPS]
# e.g. bash fuzz/bench_replay.sh build-fuzz samples /tmp/corpus_samples 3
set -eu
[ $# -ge 3 ] || { echo "usage: bash fuzz/bench_replay.sh BUILD_DIR HARNESS CORPUS_DIR [REPS]" >&2; exit 2; }
bin=$1/fuzz_$2; corpus=$3; reps=${4:-1}
[ -x "$bin" ] || { echo "bench_replay: $bin: not an executable (make fuzz)" >&2; exit 1; }
[ -d "$corpus" ] || { echo "bench_replay: $corpus: not a directory" >&2; exit 1; }
files=()
for ((i = 0; i < reps; i++)); do files+=("$corpus"/*); done
log=$(mktemp /tmp/ht_bench_replay_XXXXXX)
trap 'rm -f "$log"' EXIT
t0=$(date +%s.%N)
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:quarantine_size_mb=8} \
  "$bin" -malloc_limit_mb=512 -timeout=25 "${files[@]}" >"$log" 2>&1 \
  || { tail -20 "$log" >&2; echo "bench_replay: $bin failed" >&2; exit 1; }
t1=$(date +%s.%N)
n=$(grep -c '^Executed' "$log" || true)
[ "$n" -gt 0 ] || { echo "bench_replay: no input was executed" >&2; exit 1; }
awk -v n="$n" -v a="$t0" -v b="$t1" -v h="$2" \
  'BEGIN { printf "fuzz_%s: %d inputs in %.2f s = %.1f inputs/s\n", h, n, b - a, n / (b - a) }'
