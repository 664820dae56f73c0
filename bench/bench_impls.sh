#!/usr/bin/env bash
# The figures of docs/performance.md ("AVX-512"), in one run: the target network's implementations
# compared on this machine, interleaved, so that a drift of the machine's speed hits both alike.
#   bench/bench_impls.sh [-r ROUNDS] [-i "avx2 avx512"] [-t "1 2"] [-s STEPS] [-e EVAL_IMAGES] [-k] [-c]
#     -r  rounds (default 3): each round runs bench_step once per implementation and thread count
#     -i  implementations (HT_TARGET_IMPL values)     -t  thread counts
#     -s  steps per bench_step run (default 20)       -e  --eval-images of bench_step (default 200)
#     -k  skip bench_target (FMA peaks, conv kernels against them, target network alone)
#     -c  also bench/bench_comm.sh: 2 ranks x 1 thread and 1 rank x 2 threads (an MPI build)
# Prints every run's ms/step (mean and median), the full-validation seconds bench_step extrapolates
# and its peak memory, then per implementation and thread count the median over the rounds.
# OMP_WAIT_POLICY=passive throughout (docs/performance.md, "How to measure").
set -eu
cd "$(dirname "$0")/.."
rounds=3; impls="avx2 avx512"; threads="1 2"; steps=20; eval_images=200; kernels=1; comm=0
while [ $# -gt 0 ]; do
  case $1 in
    -r) rounds=$2; shift 2;;
    -i) impls=$2; shift 2;;
    -t) threads=$2; shift 2;;
    -s) steps=$2; shift 2;;
    -e) eval_images=$2; shift 2;;
    -k) kernels=0; shift;;
    -c) comm=1; shift;;
    *) echo "usage: $0 [-r ROUNDS] [-i IMPLS] [-t THREADS] [-s STEPS] [-e EVAL_IMAGES] [-k] [-c]" >&2; exit 2;;
  esac
done
for b in bench_step bench_target; do
  [ -x build/bench/$b ] || { echo "build/bench/$b missing: run make" >&2; exit 1; }
done
export OMP_WAIT_POLICY=passive
echo "bench_impls: $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
if [ "$kernels" = 1 ]; then
  echo "== build/bench/bench_target --threads 1,2 --impl fast --reps 5 --eval-images 100 --sgemm 2048 --kernel-reps 5"
  build/bench/bench_target --threads 1,2 --impl fast --reps 5 --eval-images 100 --sgemm 2048 --kernel-reps 5
fi
res=$(mktemp)
trap 'rm -f "$res"' EXIT
for r in $(seq "$rounds"); do
  for t in $threads; do
    for impl in $impls; do
      out=$(HT_TARGET_IMPL=$impl build/bench/bench_step --threads "$t" --steps "$steps" --eval-images "$eval_images")
      mean=$(printf '%s\n' "$out" | sed -n 's/^training step: \([0-9.]*\) ms\/step mean, \([0-9.]*\) median.*/\1/p')
      med=$(printf '%s\n' "$out" | sed -n 's/^training step: \([0-9.]*\) ms\/step mean, \([0-9.]*\) median.*/\2/p')
      val=$(printf '%s\n' "$out" | sed -n 's/.*full validation set (5,000 images) ~ \([0-9.]*\) s.*/\1/p')
      mem=$(printf '%s\n' "$out" | sed -n 's/.* \([0-9.]*\) MiB after validation.*/\1/p')
      echo "round $r: HT_TARGET_IMPL=$impl bench_step --threads $t --steps $steps --eval-images $eval_images:" \
           "$mean ms/step mean, $med median; validation ~$val s; peak $mem MiB (load $(cut -d' ' -f1 /proc/loadavg))"
      echo "$impl $t $med $val $mem" >> "$res"
    done
  done
done
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
echo "== medians over $rounds round(s)"
for t in $threads; do
  for impl in $impls; do
    ms=$(awk -v i="$impl" -v t="$t" '$1==i && $2==t {print $3}' "$res" | median)
    v=$(awk -v i="$impl" -v t="$t" '$1==i && $2==t {print $4}' "$res" | median)
    m=$(awk -v i="$impl" -v t="$t" '$1==i && $2==t {print $5}' "$res" | sort -n | tail -1)
    printf '%-7s %d thread(s): %7.1f ms/step (median of the runs'"'"' medians), validation ~%6.1f s, peak %s MiB\n' \
           "$impl" "$t" "$ms" "$v" "$m"
  done
done
if [ "$comm" = 1 ]; then
  echo "== ranks against threads (default implementation)"
  bench/bench_comm.sh -p 2 -t 1 -s "$steps"
  bench/bench_comm.sh -p 1 -t 2 -s "$steps"
fi
