#!/usr/bin/env bash
# Reproduces the numbers and figures of docs/results.md from a trained run directory.
#   analysis/reproduce_results.sh RUN_DIR [OUT_DIR]
# RUN_DIR holds a hypertrain run (job.json, metrics.jsonl, ckpt_*.h5; its latest checkpoint is
# used). Sizes are set for a 2-core machine (see the variables below; the paper's sizes are in
# comments). Everything lands in OUT_DIR (default RUN_DIR/results).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?usage: analysis/reproduce_results.sh RUN_DIR [OUT_DIR]}
OUT=${2:-$RUN/results}
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
NETS=${NETS:-400}            # networks sampled from the hypernetwork
ACC_IMAGES=${ACC_IMAGES:-2000}  # test images for per-network accuracy (paper: all)
ENS_K=${ENS_K:-4}; ENS_M=${ENS_M:-50}   # paper: 20 ensembles of 200
ADV_IMAGES=${ADV_IMAGES:-100}
BASE_MEMBERS=${BASE_MEMBERS:-10}; BASE_STEPS=${BASE_STEPS:-2000}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
CKPT=$(ls "$RUN"/ckpt_*.h5 | sort | tail -1)
echo "checkpoint: $CKPT"
./hypertrain sample --checkpoint "$CKPT" --count "$NETS" --out "$OUT/samples.h5" --force --threads "$THREADS" --quiet
./hyperanalyze accuracy "$OUT/samples.h5" --split test --images "$ACC_IMAGES" --out "$OUT/accuracy.h5" --threads "$THREADS" > "$OUT/accuracy.txt"
./hyperanalyze ensemble "$OUT/samples.h5" --k "$ENS_K" --m "$ENS_M" --split test --images "$ACC_IMAGES" --out "$OUT/ensemble.h5" --threads "$THREADS" > "$OUT/ensemble.csv"
./hyperanalyze filters "$OUT/samples.h5" --layer 1 --filter 0 --samples 25 --out "$OUT/filters_l1f0.h5" > /dev/null
./hyperanalyze filters "$OUT/samples.h5" --layer 2 --filter 0 --samples 25 --out "$OUT/filters_l2f0.h5" > /dev/null
./hyperanalyze adversarial "$OUT/samples.h5" --n-images "$ADV_IMAGES" --members 100 --out "$OUT/adversarial.h5" --threads "$THREADS" > "$OUT/adversarial.csv"
if [ -d /usr/share/datasets/fashion-mnist ]; then
  ./hyperanalyze ood "$OUT/samples.h5" --members 100 --images 1000 --out "$OUT/ood.h5" --threads "$THREADS" > "$OUT/ood.csv"
fi
./hyperanalyze baseline --job "$RUN/job.json" --members "$BASE_MEMBERS" --steps "$BASE_STEPS" --out "$OUT/baseline.h5" --force --threads "$THREADS" > "$OUT/baseline.log"
./hyperanalyze accuracy "$OUT/baseline.h5" --split test --images "$ACC_IMAGES" --out "$OUT/baseline_accuracy.h5" --threads "$THREADS" > "$OUT/baseline_accuracy.txt"
./hyperanalyze ensemble "$OUT/baseline.h5" --k 1 --m "$BASE_MEMBERS" --split test --images "$ACC_IMAGES" --out "$OUT/baseline_ensemble.h5" --threads "$THREADS" > "$OUT/baseline_ensemble.csv"
for p in accuracy ensemble; do $PY analysis/plot_$p.py "$OUT/$p.h5" -o "$OUT/$p.png" >/dev/null || true; done
$PY analysis/plot_filters.py "$OUT/filters_l1f0.h5" -o "$OUT/filters_l1f0.png" >/dev/null || true
$PY analysis/plot_filters.py "$OUT/filters_l2f0.h5" -o "$OUT/filters_l2f0.png" >/dev/null || true
$PY analysis/plot_adversarial.py "$OUT/adversarial.h5" -o "$OUT/adversarial.png" >/dev/null || true
[ -f "$OUT/ood.h5" ] && { $PY analysis/plot_ood.py "$OUT/ood.h5" -o "$OUT/ood.png" >/dev/null || true; }
echo "results in $OUT"
