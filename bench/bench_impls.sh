#!/usr/bin/env bash
# The figures of docs/performance.md ("AVX-512"), in one run: the target network's implementations
# compared on this machine, interleaved, so that a drift of the machine's speed hits both alike.
#   bench/bench_impls.sh [-r ROUNDS] [-i "avx2 avx512"] [-t "1 2"] [-s STEPS] [-e EVAL_IMAGES] [-k] [-c]
#                        [-B OTHER_BENCH_STEP]
#     -r  rounds (default 3): each round runs bench_step once per implementation and thread count
#     -i  implementations (HT_TARGET_IMPL values)     -t  thread counts
#     -s  steps per bench_step run (default 20)       -e  --eval-images of bench_step (default 200)
#     -k  skip bench_target (FMA peaks, conv kernels against them, target network alone)
#     -c  also bench/bench_comm.sh: 2 ranks x 1 thread and 1 rank x 2 threads (an MPI build)
#     -B  also run this bench_step binary (another build, e.g. a copy of the one before a change)
#         after each of this build's runs, same arguments: before/after ratios from one run
#         (reported as implementation "IMPL@B")
# Prints every run's ms/step (mean and median), its split into parts, the full-validation seconds
# bench_step extrapolates and its peak memory, then per implementation and thread count the
# medians over the rounds (of the step and of each part).
# OMP_WAIT_POLICY=passive throughout (docs/performance.md, "How to measure").
set -eu
cd "$(dirname "$0")/.."
rounds=3; impls="avx2 avx512"; threads="1 2"; steps=20; eval_images=200; kernels=1; comm=0; other=""
while [ $# -gt 0 ]; do
  case $1 in
    -r) rounds=$2; shift 2;;
    -i) impls=$2; shift 2;;
    -t) threads=$2; shift 2;;
    -s) steps=$2; shift 2;;
    -e) eval_images=$2; shift 2;;
    -k) kernels=0; shift;;
    -c) comm=1; shift;;
    -B) other=$2; shift 2;;
    *) echo "usage: $0 [-r ROUNDS] [-i IMPLS] [-t THREADS] [-s STEPS] [-e EVAL_IMAGES] [-k] [-c] [-B BENCH_STEP]" >&2; exit 2;;
  esac
done
[ -z "$other" ] || [ -x "$other" ] || { echo "-B $other: not an executable" >&2; exit 1; }
for b in bench_step bench_target bench_rows; do
  [ -x build/bench/$b ] || { echo "build/bench/$b missing: run make" >&2; exit 1; }
done
export OMP_WAIT_POLICY=passive
echo "bench_impls: $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
if [ "$kernels" = 1 ]; then
  echo "== build/bench/bench_target --threads 1,2 --impl fast --reps 5 --eval-images 100 --sgemm 2048 --kernel-reps 5"
  build/bench/bench_target --threads 1,2 --impl fast --reps 5 --eval-images 100 --sgemm 2048 --kernel-reps 5
  echo "== build/bench/bench_rows --threads 1,2 --reps 20"
  build/bench/bench_rows --threads 1,2 --reps 20
fi
res=$(mktemp)
trap 'rm -f "$res"' EXIT
for r in $(seq "$rounds"); do
  for t in $threads; do
    for impl in $impls; do
      for bin in build/bench/bench_step $other; do
        label=$impl; [ "$bin" = build/bench/bench_step ] || label=$impl@B
        out=$(HT_TARGET_IMPL=$impl $bin --threads "$t" --steps "$steps" --eval-images "$eval_images")
        mean=$(printf '%s\n' "$out" | sed -n 's/^training step: \([0-9.]*\) ms\/step mean, \([0-9.]*\) median.*/\1/p')
        med=$(printf '%s\n' "$out" | sed -n 's/^training step: \([0-9.]*\) ms\/step mean, \([0-9.]*\) median.*/\2/p')
        val=$(printf '%s\n' "$out" | sed -n 's/.*full validation set (5,000 images) ~ \([0-9.]*\) s.*/\1/p')
        mem=$(printf '%s\n' "$out" | sed -n 's/.* \([0-9.]*\) MiB after validation.*/\1/p')
        split=$(printf '%s\n' "$out" | sed -n 's/^ *\(hypernetwork .*\)$/\1/p')
        echo "round $r: HT_TARGET_IMPL=$impl $bin --threads $t --steps $steps --eval-images $eval_images:" \
             "$mean ms/step mean, $med median; validation ~$val s; peak $mem MiB (load $(cut -d' ' -f1 /proc/loadavg))"
        echo "    split: $split"
        parts=$(printf '%s\n' "$split" | sed 's/[^0-9. ]//g' | awk '{print $1, $2, $3, $4, $6}')
        echo "$label $t $med $val $mem $parts" >> "$res"
      done
    done
  done
done
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
echo "== medians over $rounds round(s)"
labels=$impls
[ -z "$other" ] || labels="$(for i in $impls; do printf '%s %s@B ' "$i" "$i"; done)"
for t in $threads; do
  for impl in $labels; do
    ms=$(awk -v i="$impl" -v t="$t" '$1==i && $2==t {print $3}' "$res" | median)
    v=$(awk -v i="$impl" -v t="$t" '$1==i && $2==t {print $4}' "$res" | median)
    m=$(awk -v i="$impl" -v t="$t" '$1==i && $2==t {print $5}' "$res" | sort -n | tail -1)
    p=""
    for c in 6 7 8 9 10; do p="$p $(awk -v i="$impl" -v t="$t" -v c=$c '$1==i && $2==t {print $c}' "$res" | median)"; done
    printf '%-8s %d thread(s): %7.1f ms/step (median of the runs'"'"' medians), validation ~%6.1f s, peak %s MiB;' \
           "$impl" "$t" "$ms" "$v" "$m"
    echo "$p" | awk '{printf " hypernetwork %s | gauge %s | target %s | entropy %s | adam %s ms\n", $1, $2, $3, $4, $5}' 
  done
done
if [ "$comm" = 1 ]; then
  echo "== ranks against threads (default implementation)"
  bench/bench_comm.sh -p 2 -t 1 -s "$steps"
  bench/bench_comm.sh -p 1 -t 2 -s "$steps"
fi
