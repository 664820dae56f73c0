#!/usr/bin/env bash
# The training runs behind docs/results.md (issue #14): the paper's job at its own settings,
# 13,000 steps, λ = 1e3 with seeds 1, 2, 3 and λ = 1e5 with seeds 1, 2, one after the other.
#
#   scripts/paper-runs.sh [ROOT]            # default ROOT: runs/paper
#   scripts/paper-runs.sh --list [ROOT]     # where each run stands, nothing started
#
# Resumable: each run is started with --resume (step 0 when its directory has no checkpoint), so
# after an interruption (a session's end, SIGTERM: hypertrain checkpoints and exits 75) the same
# command continues every run bit for bit and skips the finished ones. Checkpoints every 1,000 steps,
# the last 3 kept: 11,000 (the original code's evaluation point), 12,000 and 13,000 stay. Validation
# every 1,000 steps (200 networks on the 5,000 validation images); the test set is not touched here.
# Environment: THREADS (default: all cores), HT (default ./hypertrain), extra hypertrain options in
# HT_ARGS. Progress and errors go to ROOT/<run>/train.log as well as the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
list=0
if [ "${1:-}" = --list ]; then list=1; shift; fi
ROOT=${1:-runs/paper}
HT=${HT:-./hypertrain}
THREADS=${THREADS:-$(nproc)}
RUNS=(  # name  job  seed
  "l1e3-s1 jobs/mnist.json 1"
  "l1e3-s2 jobs/mnist.json 2"
  "l1e3-s3 jobs/mnist.json 3"
  "l1e5-s1 jobs/mnist-lambda1e5.json 1"
  "l1e5-s2 jobs/mnist-lambda1e5.json 2"
)
last_step() {  # the step of the newest checkpoint in $1, 0 if none
  local f; f=$(ls "$1"/ckpt_*.h5 2>/dev/null | sort | tail -1)
  [ -n "$f" ] && basename "$f" .h5 | sed 's/^ckpt_0*//' || echo 0
}
[ -x "$HT" ] || { echo "paper-runs: $HT not found (run make first)" >&2; exit 1; }
mkdir -p "$ROOT"
for r in "${RUNS[@]}"; do
  read -r name job seed <<<"$r"
  dir=$ROOT/$name
  step=$(last_step "$dir")
  if [ $list = 1 ]; then printf '%-8s %-28s seed %s  step %5s / 13000\n' "$name" "$job" "$seed" "$step"; continue; fi
  if [ "$step" -ge 13000 ]; then echo "paper-runs: $name finished (step $step)"; continue; fi
  echo "paper-runs: $name from step $step ($(date -u +%H:%M:%S) UTC)"
  mkdir -p "$dir"
  # --resume: continue the latest checkpoint, or start at 0. The --set values equal the stored job's
  # on a resume (a mismatch is refused by hypertrain, so a changed job cannot slip in).
  set +e
  # shellcheck disable=SC2086
  "$HT" "$job" --set seed="$seed" --set steps=13000 --set val_every=1000 --set checkpoint_every=1000 \
        --set keep_checkpoints=3 --threads "$THREADS" --out "$dir" --resume ${HT_ARGS:-} 2>&1 | tee -a "$dir/train.log"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" = 75 ]; then echo "paper-runs: $name interrupted at a checkpoint; run this again to continue"; exit 75; fi
  [ "$rc" = 0 ] || { echo "paper-runs: $name failed (exit $rc; $dir/train.log)" >&2; exit "$rc"; }
done
