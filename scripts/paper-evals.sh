#!/usr/bin/env bash
# The test-set evaluations behind docs/results.md's ensemble table and Fig. 2 (issue #14): for every
# finished run of scripts/paper-runs.sh and each of its checkpoints 13,000 and 11,000 (the original
# code's evaluation point), 4,000 networks are generated and split into the paper's 20 disjoint
# ensembles of 200, evaluated on the 10,000 test images:
#
#   hypertrain sample --checkpoint RUN/ckpt_000SSSSS.h5 --count 4000 --out RUN/eval/stepSSSSS/samples.h5
#   hyperanalyze ensemble RUN/eval/stepSSSSS/samples.h5 --k 20 --m 200 --split test
#
# The ensemble file also holds every network's test accuracy (/networks/accuracy: 4,000 networks,
# the Fig. 2 histograms). The sample set (~320 MB) is deleted afterwards except for the seed-1 runs
# at step 13,000, which the other analyses (filters, PCA, paths, adversarial) read.
#
#   scripts/paper-evals.sh [ROOT] [RUN ...]     # default ROOT runs/paper, its finished l1e*-s* runs
#   scripts/paper-evals.sh --list [ROOT]        # which evaluations exist
#
# Resumable and idempotent: an evaluation whose ensemble.h5 exists is skipped; a partial one (no
# ensemble.h5) is redone from the start. Steps: STEPS (default "13000 11000"). THREADS (default all
# cores). Each evaluation takes ~15 min on this 2-core machine when it runs alone (879 s measured
# for l1e3-s1 at step 11,000: 4,000 networks generated and run on the 10,000 test images).
set -euo pipefail
cd "$(dirname "$0")/.."
list=0
if [ "${1:-}" = --list ]; then list=1; shift; fi
ROOT=${1:-runs/paper}
[ $# -gt 0 ] && shift
THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-13000 11000}
COUNT=4000 K=20 M=200
[ -x ./hypertrain ] && [ -x ./hyperanalyze ] || { echo "paper-evals: build first (make)" >&2; exit 1; }
[ -d "$ROOT" ] || { echo "paper-evals: $ROOT: no such run root (run scripts/paper-runs.sh first)" >&2; exit 1; }
runs=("$@")
if [ ${#runs[@]} = 0 ]; then
  for d in "$ROOT"/l1e*-s*/; do [ -d "$d" ] && runs+=("$(basename "$d")"); done   # the runs of paper-runs.sh
fi
for step in $STEPS; do
  for name in "${runs[@]}"; do
    dir=$ROOT/$name
    ck=$(printf '%s/ckpt_%08d.h5' "$dir" "$step")
    ev=$(printf '%s/eval/step%05d' "$dir" "$step")
    if [ $list = 1 ]; then
      if [ -f "$ev/ensemble.h5" ]; then st=done; elif [ -f "$ck" ]; then st=pending; else st="no checkpoint"; fi
      printf '%-8s step %5s  %s\n' "$name" "$step" "$st"; continue
    fi
    [ -f "$ev/ensemble.h5" ] && { echo "paper-evals: $name step $step done"; continue; }
    # a run still training has no 13,000 checkpoint yet; its 11,000 one may be rotated away later
    [ -f "$dir/ckpt_00013000.h5" ] || { echo "paper-evals: $name not finished, skipped"; continue; }
    [ -f "$ck" ] || { echo "paper-evals: $ck missing (checkpoint rotated away?)" >&2; exit 1; }
    mkdir -p "$ev"
    # one process per evaluation: a second one (e.g. scripts/results.sh beside this script) skips it
    if ! mkdir "$ev/.busy" 2>/dev/null; then
      pid=$(cat "$ev/.busy/pid" 2>/dev/null || true)
      if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        echo "paper-evals: $name step $step is being evaluated by process $pid, skipped"; continue
      fi
      echo "paper-evals: $name step $step: stale $ev/.busy (process ${pid:-?} gone), taking it over"
    fi
    echo $$ > "$ev/.busy/pid"
    echo "paper-evals: $name step $step ($(date -u +%H:%M:%S) UTC)"
    t0=$(date +%s)
    ./hypertrain sample --checkpoint "$ck" --count $COUNT --out "$ev/samples.h5" --force \
        --threads "$THREADS" --quiet
    ./hyperanalyze ensemble "$ev/samples.h5" --k $K --m $M --split test --threads "$THREADS" \
        --out "$ev/ensemble.tmp.h5" > "$ev/ensemble.csv"
    mv "$ev/ensemble.tmp.h5" "$ev/ensemble.h5"   # complete files only: the skip test above is safe
    case "$name:$step" in *-s1:13000) ;; *) rm -f "$ev/samples.h5" ;; esac
    rm -rf "$ev/.busy"
    echo "paper-evals: $name step $step took $(( $(date +%s) - t0 )) s"
  done
done
