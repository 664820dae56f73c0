#!/usr/bin/env bash
# Kill test: SIGKILL a training run at random moments and resume it each time, until it ends on
# its own; then require
#   - every checkpoint present after every kill loads (hypertrain's checkpoint reader),
#   - the final checkpoints are bit-identical (h5diff, exact: parameters, Adam state, running
#     statistics) to those of an uninterrupted run of the same job,
#   - metrics.jsonl equals the uninterrupted run's (apart from timings): every step once,
#   - no temporary file, lock file or abandoned-* folder is left.
# A round is one run directory trained to the end; rounds repeat until --kills kills were made.
#
# usage: tests/t_kill.sh [--kills N] [--seed S] [--job tiny|toy]
#   --kills N  kills in all (default 6: the make test setting, well under a minute)
#   --seed S   seed of the kill moments (default: from the clock; printed, to replay a failure)
#   --job J    tiny: jobs/tiny.json on MNIST, 60 steps, a checkpoint every 2 (default when MNIST
#              is there); toy: jobs/toy.json, no data (the fallback)
set -u
cd "$(dirname "$0")/.."
KILLS=6; SEED=$(( $(date +%s) % 100000 )); JOB=""
while [ $# -gt 0 ]; do
  case $1 in
    --kills) KILLS=$2; shift 2;;
    --seed) SEED=$2; shift 2;;
    --job) JOB=$2; shift 2;;
    *) echo "usage: tests/t_kill.sh [--kills N] [--seed S] [--job tiny|toy]"; exit 2;;
  esac
done
BIN=./hypertrain
DATA="${HYPERTRAIN_DATA:-../shared/data/mnist}"
[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }
[ -n "$JOB" ] || { [ -d "$DATA" ] && JOB=tiny || JOB=toy; }
export OMP_WAIT_POLICY=passive   # the machine may be shared: no spinning threads
case $JOB in
  tiny) [ -d "$DATA" ] || { echo "FAIL: --job tiny needs MNIST at $DATA"; exit 1; }
        ARGS=(jobs/tiny.json --data "$DATA" --set steps=60 --set checkpoint_every=2 --set keep_checkpoints=3
              --set val_every=5 --set log_every=1 --threads 1 --quiet);;
  toy)  ARGS=(jobs/toy.json --set steps=600 --set checkpoint_every=20 --set keep_checkpoints=3
              --set val_every=50 --set log_every=5 --set batch=256 --threads 1 --quiet);;
  *) echo "FAIL: --job must be tiny or toy"; exit 2;;
esac
RANDOM=$SEED
T=$(mktemp -d /tmp/ht_kill_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { fails=$((fails+1)); echo "  FAIL $*"; }
strip() { sed 's/,"steps_per_s".*//; s/,"seconds".*//' "$1"; }
same_state() {
  for g in params adam bn_running; do h5diff "$1" "$2" /$g /$g >/dev/null 2>&1 || return 1; done
}
now_ms() { date +%s%3N; }

echo "t_kill: job $JOB, $KILLS kills, seed $SEED"
t0=$(now_ms)
"$BIN" "${ARGS[@]}" --out "$T/ref" >"$T/ref.log" 2>&1 || { echo "FAIL: reference run: $(tail -2 "$T/ref.log")"; exit 1; }
REF_MS=$(( $(now_ms) - t0 ))
echo "  uninterrupted run: ${REF_MS} ms; kills land uniformly in [0, ${REF_MS}] ms after each start"

# Loads checkpoint $1 with hypertrain's reader: `sample` reads every tensor (MNIST jobs); the toy
# task has no networks to sample, so its checkpoint is resumed into a scratch run directory that
# ends at the checkpoint's own step (read, validated, saved; nothing trained).
probe() {
  if [ "$JOB" = tiny ]; then
    "$BIN" sample --checkpoint "$1" --count 1 --out "$T/probe.h5" --force --quiet --threads 1 >"$T/probe.log" 2>&1
  else
    local step=$((10#$(basename "$1" | sed 's/ckpt_\([0-9]*\)\.h5/\1/')))
    rm -rf "$T/probe"
    "$BIN" "${ARGS[@]}" --out "$T/probe" --resume "$1" --set steps=$step >"$T/probe.log" 2>&1 &&
      grep -q "resumed from .* at step $step" "$T/probe.log"
  fi
}

# Every checkpoint in $1 loads in full; each file content is checked once.
declare -A loaded
loads=0
check_loadable() {
  local c sum
  for c in "$1"/ckpt_*.h5; do
    [ -e "$c" ] || continue
    sum=$(sha256sum "$c" | cut -c1-64)
    [ -n "${loaded[$sum]:-}" ] && continue
    if probe "$c"; then
      loaded[$sum]=1; loads=$((loads+1))
    else fail "$(basename "$c") does not load after a kill: $(grep -m1 error "$T/probe.log")"; fi
  done
}

kills=0; starts=0; rounds=0; tmp_seen=0; stale_locks=0
while [ $kills -lt $KILLS ] || [ $rounds -eq 0 ]; do
  rounds=$((rounds+1)); dir="$T/run$rounds"
  while :; do
    starts=$((starts+1))
    "$BIN" "${ARGS[@]}" --out "$dir" --resume >"$T/last.log" 2>&1 &
    pid=$!
    if [ $kills -lt $KILLS ]; then
      delay=$(( (RANDOM * 32768 + RANDOM) % (REF_MS + 1) ))
      sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
      kill -KILL $pid 2>/dev/null
    fi
    { wait $pid; } 2>/dev/null; rc=$?   # (no "Killed" notice from bash)
    if [ $rc -eq 0 ]; then break; fi
    if [ $rc -ne 137 ]; then fail "round $rounds: run exited with $rc: $(grep -m1 error "$T/last.log")"; break 2; fi
    kills=$((kills+1))
    ls "$dir" 2>/dev/null | grep -q '\.tmp\.' && tmp_seen=$((tmp_seen+1))
    [ -e "$dir/.lock" ] && stale_locks=$((stale_locks+1))
    check_loadable "$dir"
  done
  # The round's run ended on its own: compare it with the uninterrupted one.
  final=$(printf 'ckpt_%08d.h5' "$(grep -o '"steps": *[0-9]*' "$T/ref/job.json" | grep -o '[0-9]*$')")
  for c in "$T/ref"/ckpt_*.h5; do
    b=$(basename "$c")
    same_state "$c" "$dir/$b" || fail "round $rounds: $b differs from the uninterrupted run (or is missing)"
  done
  [ -f "$dir/$final" ] || fail "round $rounds: no final checkpoint $final"
  diff <(strip "$T/ref/metrics.jsonl") <(strip "$dir/metrics.jsonl") >"$T/mdiff" \
    || fail "round $rounds: metrics.jsonl differs from the uninterrupted run: $(head -3 "$T/mdiff" | tr '\n' ' ')"
  left=$(ls -A "$dir" | grep -E '\.tmp\.|^\.lock$|^abandoned-' | tr '\n' ' ')
  [ -z "$left" ] || fail "round $rounds: left in the run directory: $left"
  cmp -s "$T/ref/job.json" "$dir/job.json" || fail "round $rounds: job.json differs"
  echo "  round $rounds: done after $starts start(s) in all, $kills kill(s) in all"
  [ $fails -eq 0 ] || break
  rm -rf "$dir"
done

resumes=$((starts - rounds))
echo "t_kill: $kills kills, $resumes resumes, $rounds rounds (job $JOB, seed $SEED): $loads checkpoint" \
     "files loaded after kills, $tmp_seen kill(s) left a temporary file (removed by the next start)" \
     "and $stale_locks a .lock file (taken over by the next start); every round bit-identical to the uninterrupted run: $([ $fails -eq 0 ] && echo yes || echo NO)"
[ $fails -eq 0 ] && [ $kills -ge $KILLS ]
