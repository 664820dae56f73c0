#!/bin/bash
# Submits a λ sweep: the job array (slurm/lambda-sweep.sbatch, one task per λ, sized from the sweep
# file) and a summary job that runs after it (slurm/sweep-summary.sbatch: summary.csv, summary.md
# and summary.png in <runs_dir>/<name>). Run from the repository root.
#
#   slurm/submit-sweep.sh [--no-summary] SWEEP.json [sbatch options...] [-- hypertrain options...]
#
#   slurm/submit-sweep.sh slurm/sweeps/lambda.json --cpus-per-task=16 --time=2:00:00
#   slurm/submit-sweep.sh slurm/sweeps/lambda.json -p gpu --gpus-per-node=1 -- --set steps=4000
#
# sbatch options apply to the array; the partition/account/QoS/reservation options are also given
# to the summary job (1 CPU, 15 minutes). HT_ARRAY_MAX=K runs at most K tasks at once (--array=...%K).
# Task logs: <runs_dir>/<name>/slurm-<array job>_<task>.out unless -o/--output is given.
set -euo pipefail
HT_ROOT=${HT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
python=${HT_PYTHON:-python3}
summary=1
if [ "${1:-}" = --no-summary ]; then summary=0; shift; fi
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2
fi
sweep=$1; shift
sb=() ht=() pass=() have_output=0
while [ $# -gt 0 ]; do
    case $1 in
        --) shift; ht=("$@"); break;;
        -o|--output) have_output=1; sb+=("$1" "$2"); shift 2;;
        --output=*) have_output=1; sb+=("$1"); shift;;
        -p|--partition|-A|--account|-q|--qos|--reservation|-M|--clusters)
            sb+=("$1" "$2"); pass+=("$1" "$2"); shift 2;;
        --partition=*|--account=*|--qos=*|--reservation=*|--clusters=*)
            sb+=("$1"); pass+=("$1"); shift;;
        *) sb+=("$1"); shift;;
    esac
done

"$python" "$HT_ROOT/slurm/sweep.py" check "$sweep"
n=$("$python" "$HT_ROOT/slurm/sweep.py" count "$sweep")
root=$("$python" "$HT_ROOT/slurm/sweep.py" root "$sweep")
mkdir -p "$root"
if [ $have_output = 0 ]; then sb=(--output="$root/slurm-%A_%a.out" "${sb[@]}"); fi
array=$(sbatch --parsable --array="0-$((n - 1))${HT_ARRAY_MAX:+%$HT_ARRAY_MAX}" "${sb[@]}" \
        "$HT_ROOT/slurm/lambda-sweep.sbatch" "$sweep" "${ht[@]}")
array=${array%%;*}
echo "submitted array job $array: $n tasks, run directories under $root/"
if [ $summary = 1 ]; then
    sum=$(sbatch --parsable --dependency="afterany:$array" --job-name=ht-sweep-summary --nodes=1 \
          --ntasks=1 --cpus-per-task=1 --time=00:15:00 --output="$root/summary-%j.out" "${pass[@]}" \
          "$HT_ROOT/slurm/sweep-summary.sbatch" "$sweep")
    sum=${sum%%;*}
    echo "submitted summary job $sum (after $array): $root/summary.csv, summary.md, summary.png"
fi
