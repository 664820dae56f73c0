#!/usr/bin/env bash
# Everything behind docs/results.md (issue #14), in order, then the page itself:
#
#   scripts/results.sh [ROOT]            # default ROOT runs/paper; ~6 h of 2 cores in all
#   scripts/results.sh --page [ROOT]     # only regenerate docs/results.md from what exists
#   scripts/results.sh --list [ROOT]     # which results exist, nothing run
#   scripts/results.sh --no-train [ROOT] # everything but the training (e.g. while scripts/paper-runs.sh
#                                        # runs elsewhere); evaluations of unfinished runs are skipped
#
# Resumable and idempotent: every step writes its result file last (complete files only) and is
# skipped when that file exists, so after an interruption the same command continues where it
# stopped (the training runs resume from their last checkpoint, bit for bit). Each step's exact
# command line is stored beside its result as ROOT/analysis/NAME.cmd, and the page prints it
# beside the numbers it made. Order: the most important results first, so that a partial
# execution still gives the paper's table.
#   1. the five paper runs (scripts/paper-runs.sh) and their test-set ensembles at step 13,000
#      (scripts/paper-evals.sh)
#   2. a deep ensemble of 102 directly trained networks (the baseline of every comparison)
#   3. Fig. 8 adversarial (validation and test images), function-space diversity, rotated MNIST,
#      calibration, OOD, Fig. 3 filter diversity, Figs. 6/9-15 PCA with null comparisons, Fig. 7
#      paths, on λ = 1e3 seed 1's 4,000 networks of step 13,000
#   4. the toy problem (Fig. 1)
#   5. the noise-batch study: N = 32, 64, 128 networks per step, 3,000 steps each, validation only
#   6. the ensembles at step 11,000
#   7. Fashion-MNIST: one full run (13,000 steps), 2 ensembles of 200 and calibration on its test set
# Environment: THREADS (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=all train=1
case "${1:-}" in --page) mode=page; shift ;; --list) mode=list; shift ;; --no-train) train=0; shift ;; esac
ROOT=${1:-runs/paper}
THREADS=${THREADS:-$(nproc)}
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
A=$ROOT/analysis
SAMPLES=$ROOT/l1e3-s1/eval/step13000/samples.h5   # kept by paper-evals.sh
BASE=$A/baseline.h5

if [ $mode = page ]; then exec "$PY" analysis/results_page.py --root "$ROOT"; fi
if [ $mode = list ]; then
  bash scripts/paper-runs.sh --list "$ROOT"
  bash scripts/paper-evals.sh --list "$ROOT"
  for f in baseline adversarial adversarial-test diversity shift calibrate ood filterdiv pca-filter-1-0 pca-filter-2-0 pca-layer-1 pca-layer-2 pca-all paths toy noise-n32 noise-n64 noise-n128 fashion-ensemble fashion-calibrate fashion-ood; do
    if [ -e "$A/$f.h5" ] || [ -e "$A/$f/metrics.jsonl" ]; then echo "analysis $f: done"; else echo "analysis $f: pending"; fi
  done
  exit 0
fi

[ -x ./hypertrain ] && [ -x ./hyperanalyze ] || { echo "results: build first (make)" >&2; exit 1; }
mkdir -p "$A"

# step NAME RESULT CMD...: runs CMD unless RESULT exists; stores the command as $A/NAME.cmd
step() {
  local name=$1 result=$2; shift 2
  if [ -e "$result" ]; then echo "results: $name done ($result)"; return 0; fi
  echo "results: $name ($(date -u +%H:%M:%S) UTC): $*"
  local t0; t0=$(date +%s)
  printf '%q ' "$@" | sed 's/ $//' > "$A/$name.cmd.tmp"
  echo >> "$A/$name.cmd.tmp"
  "$@"
  [ -e "$result" ] || { echo "results: $name finished without writing $result" >&2; exit 1; }
  mv "$A/$name.cmd.tmp" "$A/$name.cmd"
  echo "results: $name took $(( $(date +%s) - t0 )) s"
}

# 1. training and the paper's table
if [ $train = 1 ]; then bash scripts/paper-runs.sh "$ROOT"; else echo "results: training skipped (--no-train)"; fi
STEPS=13000 bash scripts/paper-evals.sh "$ROOT"

# 2. the deep ensemble: 102 networks (an ensemble of 100 plus the adversarial source and other
# network), each trained directly with Adam for 5,000 steps of 32 images (~3 epochs), gauge-fixed
step baseline "$BASE" ./hyperanalyze baseline --job jobs/mnist.json --members 102 --steps 5000 \
     --out "$BASE" --threads "$THREADS" --log-every 1000

# 3. the analyses of one run's networks (λ = 1e3, seed 1, step 13,000)
step adversarial "$A/adversarial.h5" ./hyperanalyze adversarial "$SAMPLES" --n-images 1000 --members 100 \
     --baseline "$BASE" --out "$A/adversarial.h5" --threads "$THREADS"
# the same on the test set (issue #14's "for each test image"; the default split above is the
# paper's, Sec. 5: "all images in the validation set")
step adversarial-test "$A/adversarial-test.h5" ./hyperanalyze adversarial "$SAMPLES" --split test --n-images 1000 \
     --members 100 --baseline "$BASE" --out "$A/adversarial-test.h5" --threads "$THREADS"
step diversity "$A/diversity.h5" ./hyperanalyze diversity "$SAMPLES" --baseline "$BASE" --members 100 \
     --split test --images 10000 --out "$A/diversity.h5" --threads "$THREADS"
step shift "$A/shift.h5" ./hyperanalyze shift "$SAMPLES" --baseline "$BASE" --members 50 --images 10000 \
     --angles 0:180:15 --out "$A/shift.h5" --threads "$THREADS"
step calibrate "$A/calibrate.h5" ./hyperanalyze calibrate "$SAMPLES" --baseline "$BASE" --members 100 \
     --out "$A/calibrate.h5" --threads "$THREADS"
if [ -d /usr/share/datasets/fashion-mnist ]; then
  step ood "$A/ood.h5" ./hyperanalyze ood "$SAMPLES" --members 100 --images 10000 --out "$A/ood.h5" \
       --threads "$THREADS"
else
  echo "results: ood skipped: /usr/share/datasets/fashion-mnist missing (apt-get install dataset-fashion-mnist)"
fi

# Fig. 3 (per-filter diversity), Figs. 6/9-15 (PCA beside the deep ensemble and a Gaussian on the
# same axes) and Fig. 7 (paths) of the same run
step filterdiv "$A/filterdiv.h5" ./hyperanalyze filterdiv "$SAMPLES" --n 4000 --out "$A/filterdiv.h5"
for w in filter:1:0 filter:2:0 layer:1 layer:2 all; do
  n=pca-${w//:/-}
  std=(); [ "$w" = all ] && std=(--standardize)   # the last layer carries the scale after gauge fixing
  step "$n" "$A/$n.h5" ./hyperanalyze pca "$SAMPLES" --what "$w" --n 4000 --components 4 "${std[@]}" \
       --baseline "$BASE" --out "$A/$n.h5" --threads "$THREADS"
done
step paths "$A/paths.h5" ./hyperanalyze paths "$ROOT/l1e3-s1/ckpt_00013000.h5" --pairs 10 --points 41 \
     --out "$A/paths.h5" --threads "$THREADS"

# 4. the toy problem (Fig. 1; under a second)
step toy "$A/toy/toy_curve.csv" ./hypertrain jobs/toy.json --out "$A/toy" --quiet > /dev/null

# 5. the noise batch: N networks per step (the batch grows with ranks in the MPI design). Same job,
# same seed, 3,000 steps each; measured on validation only (200 fresh networks every 1,000 steps:
# the entropy estimate over 200 networks is comparable across N) and the diversity of 100 networks.
for n in 32 64 128; do
  d=$A/noise-n$n
  if [ ! -f "$d/ckpt_00003000.h5" ]; then
    echo "results: noise batch N = $n ($(date -u +%H:%M:%S) UTC)"
    mkdir -p "$d"
    printf '%s\n' "./hypertrain jobs/mnist.json --set batch=$n --set steps=3000 --set val_every=1000 --set checkpoint_every=1000 --set keep_checkpoints=1 --out $d --resume" > "$d/command.txt"
    ./hypertrain jobs/mnist.json --set batch=$n --set steps=3000 --set val_every=1000 --set checkpoint_every=1000 \
        --set keep_checkpoints=1 --threads "$THREADS" --out "$d" --resume --quiet > /dev/null
  fi
  step "noise-n$n-samples" "$d/samples.h5" ./hypertrain sample --checkpoint "$d/ckpt_00003000.h5" --count 100 \
       --out "$d/samples.h5" --threads "$THREADS" --quiet
  step "noise-n$n" "$A/noise-n$n.h5" ./hyperanalyze diversity "$d/samples.h5" --members 100 --split val \
       --images 5000 --out "$A/noise-n$n.h5" --threads "$THREADS"
done

# 6. the original code's evaluation point (after the noise study: 65 min of 2 cores for the five
# runs' 4,000 networks, the longest step after training)
STEPS=11000 bash scripts/paper-evals.sh "$ROOT"

# 7. Fashion-MNIST (jobs/fashion-mnist.json: the paper's job on the other data set, nothing tuned)
if [ -d /usr/share/datasets/fashion-mnist ]; then
  F=$ROOT/fashion
  if [ ! -f "$F/ckpt_00013000.h5" ]; then
    echo "results: Fashion-MNIST run ($(date -u +%H:%M:%S) UTC)"
    mkdir -p "$F"
    ./hypertrain jobs/fashion-mnist.json --set val_every=1000 --set checkpoint_every=1000 --set keep_checkpoints=3 \
        --threads "$THREADS" --out "$F" --resume 2>&1 | tee -a "$F/train.log" | grep -v '^step ' || true
    [ -f "$F/ckpt_00013000.h5" ] || { echo "results: the Fashion-MNIST run did not finish ($F/train.log)" >&2; exit 1; }
  fi
  step fashion-samples "$F/samples.h5" ./hypertrain sample --checkpoint "$F/ckpt_00013000.h5" --count 400 \
       --out "$F/samples.h5" --threads "$THREADS" --quiet
  step fashion-ensemble "$A/fashion-ensemble.h5" ./hyperanalyze ensemble "$F/samples.h5" --k 2 --m 200 \
       --split test --out "$A/fashion-ensemble.h5" --threads "$THREADS"
  step fashion-calibrate "$A/fashion-calibrate.h5" ./hyperanalyze calibrate "$F/samples.h5" --members 100 \
       --out "$A/fashion-calibrate.h5" --threads "$THREADS"
  step fashion-ood "$A/fashion-ood.h5" ./hyperanalyze ood "$F/samples.h5" --members 100 --images 10000 \
       --out "$A/fashion-ood.h5" --threads "$THREADS"   # outliers: MNIST's test images
else
  echo "results: Fashion-MNIST skipped: /usr/share/datasets/fashion-mnist missing (apt-get install dataset-fashion-mnist)"
fi

"$PY" analysis/results_page.py --root "$ROOT"
