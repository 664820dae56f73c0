#!/usr/bin/env bash
# Communication cost of a training step on P ranks: runs build/bench/bench_mpi (an MPI build) for
# each P with T OpenMP threads per rank, so that the figures can be compared at equal cores per
# rank. Usage (from anywhere):
#   bench/bench_comm.sh [-p "1 2"] [-t THREADS] [-s STEPS] [-- extra bench_mpi args, e.g. --job jobs/tiny.json]
# Each run prints ms/step split into compute, all-gather, all-reduce and batch-norm reductions,
# and the bytes each collective moves per step (see docs/running.md for how to read them).
set -eu
cd "$(dirname "$0")/.."
ranks="1 2"; threads=1; steps=10
while [ $# -gt 0 ]; do
  case $1 in
    -p) ranks=$2; shift 2;;
    -t) threads=$2; shift 2;;
    -s) steps=$2; shift 2;;
    --) shift; break;;
    *) echo "usage: $0 [-p \"1 2\"] [-t THREADS] [-s STEPS] [-- bench_mpi args]" >&2; exit 2;;
  esac
done
[ -x build/bench/bench_mpi ] || { echo "build/bench/bench_mpi missing: run make" >&2; exit 1; }
ldd ./hypertrain 2>/dev/null | grep -q libmpi || { echo "not an MPI build (make MPI=1)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) # GNU nproc honours OMP_NUM_THREADS
export OMP_NUM_THREADS=$threads OMP_PROC_BIND=${OMP_PROC_BIND:-close} OMP_PLACES=${OMP_PLACES:-cores}
echo "machine: $cores cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $threads thread(s) per rank"
for P in $ranks; do
  if [ $((P * threads)) -le "$cores" ]; then
    # one rank per group of $threads cores, its threads bound inside it
    map=(--map-by "ppr:$P:node:pe=$threads" --bind-to core)
  else
    map=(--oversubscribe --bind-to none)
    echo "note: P=$P x $threads threads > $cores cores: oversubscribed, figures are not meaningful"
  fi
  echo "== P=$P: mpirun -np $P ${map[*]} build/bench/bench_mpi --steps $steps --threads $threads $*"
  mpirun -np "$P" "${map[@]}" build/bench/bench_mpi --steps "$steps" --threads "$threads" "$@"
done
