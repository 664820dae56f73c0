#!/usr/bin/env bash
# The Slurm scripts (slurm/), tested on a real one-node Slurm cluster that this test sets up:
#   1. without Slurm: syntax, the example sweep, and the scripts run by hand (HT_LAUNCHER=none):
#      a run, --resume on a second launch, USR1 forwarded (checkpoint, status 75), one sweep task;
#   2. with Debian's Slurm and MUNGE installed (scripts/setup.sh; this test installs nothing and
#      says SKIPPED without them), writes slurm.conf for this machine in a temporary directory,
#      starts munged, slurmctld and slurmd (stopped on exit);
#   3. a λ sweep through slurm/submit-sweep.sh: a 3-task job array of the tiny job on real MNIST
#      (6 steps each), then the summary job: checkpoints, metrics, summary.csv with all three;
#   4. requeue/resume with slurm/train.sbatch (2 MPI ranks through srun when possible):
#      USR1 to the batch shell (what --signal=B:USR1 does before the time limit) with HT_REQUEUE=1:
#      checkpoint, exit 75, the script requeues the job, which resumes; then `scontrol requeuehold`
#      (SIGTERM from the scheduler, as preemption): checkpoint, requeued, resumes, finishes; the
#      metrics continue step by step without a gap or a repeat;
#   5. the mpirun launcher inside an allocation (MPI build only).
# Parts that cannot run here print "SKIPPED (reason)". Without MNIST every training run uses
# synthetic MNIST-format images (tests/synthetic_mnist.sh). Every wait is bounded (timeout).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=$(cd "${HYPERTRAIN_TEST_DATA:-../shared/data/mnist}" 2>/dev/null && pwd)
export HT_PYTHON=python3; [ -x /usr/bin/python3 ] && export HT_PYTHON=/usr/bin/python3
NCPU=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
# Nothing of an enclosing Slurm job (CI inside Slurm) may leak into the test cluster.
for v in ${!SLURM_@}; do unset "$v"; done
export OMP_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none   # containers often forbid CMA
T=$(mktemp -d /tmp/ht_slurm_XXXXXX)
chmod 755 "$T"
fails=0; passes=0; skips=0
pass() { passes=$((passes+1)); echo "  PASS $*"; }
fail() { fails=$((fails+1)); echo "  FAIL $*"; }
skip() { skips=$((skips+1)); echo "  SKIPPED ($*)"; }
t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 ))s"; }

DAEMONS=()        # "name:pid" of what this test started
cleanup() {
  if [ -n "${SLURM_CONF:-}" ] && [ ${#DAEMONS[@]} -gt 0 ]; then
    if [ -n "$(timeout 5 squeue -h -o %i 2>/dev/null)" ]; then
      timeout 10 scancel --full $(timeout 5 squeue -h -o %i 2>/dev/null) 2>/dev/null
      for _ in $(seq 1 30); do [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.5; done
    fi
  fi
  if [ $fails -gt 0 ] && [ -d "$T/slurm" ]; then
    for f in "$T"/slurm/log/*.log; do [ -f "$f" ] && { echo "--- last lines of $f"; tail -n 15 "$f"; }; done
  fi
  local i
  for ((i=${#DAEMONS[@]}-1; i>=0; i--)); do kill -TERM "${DAEMONS[i]#*:}" 2>/dev/null; done
  for d in "${DAEMONS[@]}"; do
    local pid=${d#*:}
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then echo "  (${d%%:*} $pid did not stop; killing it)"; kill -KILL "$pid" 2>/dev/null; fi
  done
  if [ "${HT_KEEP_TMP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

# wait_for SECONDS CMD...: polls CMD every 0.5 s; returns 0 as soon as it succeeds, 1 on timeout.
wait_for() {
  local until=$(( $(date +%s) + $1 )); shift
  while :; do "$@" && return 0; [ "$(date +%s)" -ge $until ] && return 1; sleep 0.5; done
}
# logtail FILE...: the last lines of those FILEs that exist, on one line.
logtail() { local f; for f in "$@"; do [ -f "$f" ] && tail -n 3 "$f"; done | tr '\n' ' '; }
has_ckpt() { compgen -G "$1/ckpt_*.h5" >/dev/null; }
latest_ckpt_step() { ls "$1" 2>/dev/null | sed -n 's/^ckpt_0*\([0-9][0-9]*\)\.h5$/\1/p' | sort -n | tail -1; }
last_train_step() { grep '"type":"train"' "$1/metrics.jsonl" 2>/dev/null | tail -1 | sed 's/.*"step":\([0-9]*\).*/\1/'; }
# train_steps_contiguous DIR N: the train lines of metrics.jsonl are steps 1..N, each once.
train_steps_contiguous() {
  [ "$(grep '"type":"train"' "$1/metrics.jsonl" | sed 's/.*"step":\([0-9]*\).*/\1/' | tr '\n' ' ')" = "$(seq -s ' ' 1 "$2") " ]
}

for b in hypertrain hyperanalyze; do [ -x "./$b" ] || { echo "FAIL: ./$b not built"; exit 1; }; done
MPI_BUILD=0; ldd ./hypertrain 2>/dev/null | grep -q libmpi && MPI_BUILD=1

echo "1. the scripts without Slurm ($(elapsed))"
for f in slurm/*.sbatch slurm/*.sh; do
  if bash -n "$f" 2>"$T/err"; then pass "bash -n $f"; else fail "bash -n $f: $(cat "$T/err")"; fi
done
$HT_PYTHON slurm/sweep.py check slurm/sweeps/lambda.json >/dev/null 2>"$T/err" && pass "slurm/sweeps/lambda.json is a valid sweep" || fail "example sweep: $(cat "$T/err")"
# Without MNIST every training run uses synthetic MNIST-format images (tests/synthetic_mnist.sh).
VERIFY=(); VERIFY_SET=""
if [ -z "$DATA" ]; then
  skip "no MNIST in ${HYPERTRAIN_TEST_DATA:-../shared/data/mnist}: real MNIST; every training run below uses synthetic MNIST-format images"
  DATA=$T/synthetic-mnist
  bash tests/synthetic_mnist.sh "$DATA" || { echo "FAIL: tests/synthetic_mnist.sh"; exit 1; }
  VERIFY=(--set data.verify=false); VERIFY_SET=', "data.verify": false'
fi
L=$T/local
HT_LAUNCHER=none timeout 60 bash slurm/train.sbatch jobs/tiny.json --data "$DATA" "${VERIFY[@]}" --out "$L/a" --quiet >"$T/l1.log" 2>&1
rc=$?
[ $rc -eq 0 ] && [ -f "$L/a/ckpt_00000006.h5" ] && grep -q "status=0 (finished)" "$L/a/slurm_launches.log" \
  && pass "train.sbatch by hand: 6 steps, checkpoint, launch recorded in slurm_launches.log" || { fail "train.sbatch by hand (status $rc):"; tail -5 "$T/l1.log"; }
HT_LAUNCHER=none timeout 60 bash slurm/train.sbatch jobs/tiny.json --data "$DATA" "${VERIFY[@]}" --out "$L/a" --set steps=9 --quiet >"$T/l2.log" 2>&1
grep -q "resumed from .*ckpt_00000006.h5 at step 6" "$T/l2.log" && [ -f "$L/a/ckpt_00000009.h5" ] \
  && pass "second launch on the same run directory resumes at step 6 (always --resume)" || { fail "second launch:"; tail -5 "$T/l2.log"; }
HT_LAUNCHER=none bash slurm/train.sbatch jobs/tiny.json --set steps=1000000 --set val_every=0 --set checkpoint_every=0 \
  --data "$DATA" "${VERIFY[@]}" --out "$L/b" --quiet >"$T/l3.log" 2>&1 &
spid=$!
# stop_script PID: USR1, 30 s to exit, then KILL for it and its children (hypertrain).
stop_script() {
  kill -USR1 "$1" 2>/dev/null; timeout 30 tail --pid="$1" -f /dev/null
  if kill -0 "$1" 2>/dev/null; then
    local f st
    for f in /proc/[0-9]*/stat; do   # its children, by parent pid (no procps needed)
      st=$(cat "$f" 2>/dev/null) || continue; st=${st##*) }
      [ "$(echo "$st" | cut -d' ' -f2)" = "$1" ] && kill -KILL "$(basename "$(dirname "$f")")" 2>/dev/null
    done
    kill -KILL "$1" 2>/dev/null
  fi
}
if wait_for 30 grep -q '"step":3,' "$L/b/metrics.jsonl" 2>/dev/null; then
  stop_script $spid; wait $spid; rc=$?
  if [ $rc -eq 75 ] && grep -q "received signal 10: checkpoint written at step" "$T/l3.log" && has_ckpt "$L/b" \
     && grep -q "status=75 (stopped at a checkpoint (SIGUSR1))" "$L/b/slurm_launches.log"; then
    pass "USR1 to the script is forwarded: hypertrain checkpoints at step $(latest_ckpt_step "$L/b"), status 75"
  else fail "USR1 forwarding (status $rc):"; tail -5 "$T/l3.log"; fi
else stop_script $spid; fail "the long run did not start: $(tail -3 "$T/l3.log")"; fi
cat > "$T/local-sweep.json" <<EOF
{"name": "s", "job": "jobs/tiny.json", "lambda": [10, 1e3], "set": {"steps": 3, "data.dir": "$DATA"$VERIFY_SET}, "runs_dir": "$L"}
EOF
SLURM_ARRAY_TASK_ID=1 HT_LAUNCHER=none timeout 60 bash slurm/lambda-sweep.sbatch "$T/local-sweep.json" --quiet >"$T/l4.log" 2>&1
[ -f "$L/s/1-lambda1000/ckpt_00000003.h5" ] && grep -q '"lambda": 1000,' "$L/s/1-lambda1000/job.json" \
  && pass "lambda-sweep.sbatch task 1 by hand: $L/s/1-lambda1000 with lambda 1000" || { fail "sweep task by hand:"; tail -5 "$T/l4.log"; }
HT_LAUNCHER=none timeout 30 bash slurm/lambda-sweep.sbatch "$T/local-sweep.json" >"$T/l5.log" 2>&1
[ $? -ne 0 ] && grep -q "not an array task" "$T/l5.log" && pass "not an array task: clear error" || fail "no array task: $(cat "$T/l5.log")"

# srun's side, faked: PMI type picked from `srun --mpi=list`; a launch that "succeeds" without
# running hypertrain (seen with Slurm 22.05 after a requeue) is caught and retried.
mkdir -p "$T/fakebin"
cat > "$T/fakebin/srun" <<'EOF'
#!/bin/bash
if [ "$1" = --mpi=list ]; then printf 'MPI plugin types are...\n\tnone\n\tpmi2\n\tpmix\nspecific pmix plugin versions available: pmix_v4\n'; exit 0; fi
echo "srun $*" >> "$FAKE_SRUN_LOG"
if [ "$(wc -l < "$FAKE_SRUN_LOG")" -eq 1 ]; then echo "srun: error: task 0 launch failed: Unspecified error" >&2; exit 0; fi
while [ $# -gt 0 ] && [[ $1 == --* ]]; do shift; done
exec "$@"
EOF
chmod +x "$T/fakebin/srun"
FAKE_SRUN_LOG=$T/fake-srun.log PATH=$T/fakebin:$PATH SLURM_JOB_ID=999 SLURM_CPUS_PER_TASK=1 HT_ROOT=$ROOT \
  timeout 60 bash slurm/train.sbatch jobs/tiny.json --data "$DATA" "${VERIFY[@]}" --out "$L/c" --quiet >"$T/l6.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "launcher reported success, but hypertrain did not start" "$T/l6.log" \
   && grep -q "retrying in 5 s" "$T/l6.log" && [ -f "$L/c/ckpt_00000006.h5" ] \
   && [ "$(sed -n 2p "$T/fake-srun.log" | cut -d' ' -f1-5)" = "srun --mpi=pmix --kill-on-bad-exit=1 --ntasks=1 --cpus-per-task=1" ]; then
  pass "srun launch: --mpi=pmix picked; a false success is caught and the launch retried"
else fail "fake srun (status $rc): $(tail -5 "$T/l6.log"; cat "$T/fake-srun.log")"; fi

echo "2. a one-node Slurm cluster on this machine ($(elapsed))"
need=(slurmctld slurmd sbatch srun squeue scontrol sinfo scancel munged munge unmunge)
missing() { local m=(); for c in "${need[@]}"; do command -v "$c" >/dev/null 2>&1 || m+=("$c"); done; echo "${m[*]}"; }
slurm_ok=1
if [ -n "$(missing)" ]; then
  # make test installs nothing: scripts/setup.sh installs these (CI runs it first)
  skip "Slurm is not installed ($(missing) missing): sudo scripts/setup.sh installs slurmctld slurmd slurm-client munge"
  slurm_ok=0
fi

start_cluster() {
  local S=$T/slurm H port p
  mkdir -p "$S/munge" "$S/state" "$S/spool" "$S/log"
  chmod 711 "$S/munge"
  H=$(hostname -s 2>/dev/null || hostname)
  # Two free TCP ports (not Slurm's defaults, so a real Slurm on this machine is not disturbed).
  port=""
  for p in $(seq 16817 2 16899); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$((p+1))") 2>/dev/null; then port=$p; break; fi
  done
  [ -n "$port" ] || { REASON="no free TCP port pair in 16817-16900"; return 1; }
  head -c 1024 /dev/urandom > "$S/munge/munge.key"; chmod 400 "$S/munge/munge.key"
  munged -F -f --socket="$S/munge/munge.socket" --key-file="$S/munge/munge.key" --pid-file="$S/munge/munged.pid" \
    --log-file="$S/log/munged.log" --seed-file="$S/munge/munged.seed" --num-threads=4 >"$S/log/munged.out" 2>&1 &
  DAEMONS+=("munged:$!")
  if ! wait_for 10 test -S "$S/munge/munge.socket" || ! timeout 5 munge -n -S "$S/munge/munge.socket" | timeout 5 unmunge -S "$S/munge/munge.socket" >/dev/null 2>&1; then
    REASON="munged did not start: $(logtail "$S/log/munged.out" "$S/log/munged.log")"; return 1
  fi
  cat > "$S/slurm.conf" <<EOF
# One-node test cluster written by tests/t_slurm.sh
ClusterName=httest
SlurmctldHost=$H(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge/munge.socket
SlurmctldPort=$port
SlurmdPort=$((port+1))
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerParameters=sched_interval=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=600
KillWait=10
NodeName=$H NodeAddr=127.0.0.1 NodeHostname=$H CPUs=$NCPU State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$S/slurm.conf
  slurmctld -D -f "$SLURM_CONF" >"$S/log/slurmctld.out" 2>&1 &
  DAEMONS+=("slurmctld:$!")
  wait_for 15 timeout 5 scontrol ping >/dev/null 2>&1 \
    || { REASON="slurmctld did not answer: $(logtail "$S/log/slurmctld.out" "$S/log/slurmctld.log")"; return 1; }
  slurmd -D -f "$SLURM_CONF" >"$S/log/slurmd.out" 2>&1 &
  DAEMONS+=("slurmd:$!")
  node_idle() { [ "$(timeout 5 sinfo -h -n "$H" -o %t 2>/dev/null)" = idle ]; }
  wait_for 30 node_idle || { REASON="node $H not idle after 30 s (sinfo: $(timeout 5 sinfo -h 2>&1 | tr '\n' ' ')); slurmd: $(logtail "$S/log/slurmd.out" "$S/log/slurmd.log")"; return 1; }
  NODE=$H
  return 0
}

REASON=""
if [ $slurm_ok = 1 ]; then
  if start_cluster; then
    pass "munged, slurmctld and slurmd started; node $NODE idle with $NCPU CPUs ($(elapsed)); srun --mpi=list: $(timeout 10 srun --mpi=list 2>&1 | grep -oE '^[[:space:]]*(pmix|pmi2)[a-z0-9_]*' | tr -d ' \t' | tr '\n' ' ')"
  else
    skip "Slurm cannot run here: $REASON"
    slurm_ok=0
  fi
fi
if [ $slurm_ok = 0 ]; then
  skip "parts 3-5 (sweep as a job array, requeue/resume, mpirun under Slurm) need a running Slurm; the scripts were checked by bash -n and run by hand above"
  echo "t_slurm: $passes passed, $fails failed, $skips skipped ($(elapsed))"
  [ $fails -eq 0 ] && [ $passes -gt 0 ]; exit $?
fi
sbatch_test=$(timeout 20 sbatch --test-only --cpus-per-task=1 slurm/train.sbatch jobs/tiny.json 2>&1)
echo "$sbatch_test" | grep -q "to start at" && pass "sbatch --test-only accepts train.sbatch's #SBATCH lines" || fail "sbatch --test-only: $sbatch_test"

echo "3. a λ sweep as a job array, then its summary job ($(elapsed))"
R=$T/runs
cat > "$T/sweep.json" <<EOF
{"name": "lam", "job": "jobs/tiny.json", "lambda": [1e5, 10, 1000],
 "set": {"steps": 6, "data": {"dir": "$DATA"}$VERIFY_SET}, "runs_dir": "$R"}
EOF
if timeout 30 slurm/submit-sweep.sh "$T/sweep.json" --cpus-per-task=1 --time=5 -- --quiet >"$T/submit.log" 2>&1; then
  array=$(sed -n 's/^submitted array job \([0-9]*\).*/\1/p' "$T/submit.log")
  summary=$(sed -n 's/^submitted summary job \([0-9]*\).*/\1/p' "$T/submit.log")
  pass "submit-sweep.sh: array job $array (3 tasks), summary job $summary"
  queue_empty() { [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ]; }
  if wait_for 150 queue_empty; then pass "array and summary finished ($(elapsed))"
  else fail "still queued after 150 s: $(timeout 5 squeue 2>&1 | tr '\n' ' ')"; fi
  for i in 0 1 2; do
    info=$(timeout 5 scontrol show job -o "${array}_$i" 2>/dev/null)
    st="$(echo "$info" | grep -o 'JobState=[A-Z_]*') $(echo "$info" | grep -o ' ExitCode=[0-9:]*' | tr -d ' ')"
    [ "$st" = "JobState=COMPLETED ExitCode=0:0" ] && pass "array task $i: $st" || fail "array task $i: ${st:-unknown}: $(tail -3 "$R/lam/slurm-${array}_$i.out" 2>/dev/null)"
  done
  for d in "0-lambda100000:100000" "1-lambda10:10" "2-lambda1000:1000"; do
    dir=$R/lam/${d%%:*}
    if [ -f "$dir/ckpt_00000006.h5" ] && grep -q '"type":"val","step":6,' "$dir/metrics.jsonl" 2>/dev/null \
       && grep -q "\"lambda\": ${d#*:}," "$dir/job.json"; then
      pass "$(basename "$dir"): ckpt_00000006.h5, validation at step 6, lambda ${d#*:} in job.json"
    else fail "$dir: $(ls "$dir" 2>&1 | tr '\n' ' ')"; fi
  done
  if [ "$(tail -n +2 "$R/lam/summary.csv" 2>/dev/null | cut -d, -f1,2,4 | tr '\n' ' ')" = "$R/lam/1-lambda10,10,6 $R/lam/2-lambda1000,1000,6 $R/lam/0-lambda100000,100000,6 " ]; then
    pass "summary job: summary.csv lists the 3 runs sorted by lambda, each at step 6"
  else fail "summary.csv: $(cat "$R/lam/summary.csv" 2>&1) $(cat "$R"/lam/summary-*.out 2>&1 | tail -5)"; fi
  [ "$(grep -c '^| ' "$R/lam/summary.md" 2>/dev/null)" = 4 ] && pass "summary.md: header + 3 rows" || fail "summary.md"
  if $HT_PYTHON -c 'import matplotlib' 2>/dev/null; then
    [ -s "$R/lam/summary.png" ] && pass "summary.png plotted" || fail "no summary.png: $(cat "$R"/lam/summary-*.out 2>&1 | tail -3)"
  fi
else fail "submit-sweep.sh: $(cat "$T/submit.log")"; fi

echo "4. requeue and resume: time-limit signal, then preemption ($(elapsed))"
NT=1; [ $MPI_BUILD = 1 ] && [ "$NCPU" -ge 2 ] && NT=2
RUN=$T/runs/req
JOB=$T/req.json
# The job file is re-read at each launch: the last launch gets a reachable number of steps.
write_job() { printf '{"steps": %s, "checkpoint_every": 25, "val_every": 0, "log_every": 1, "keep_checkpoints": 2}\n' "$1" > "$T/overrides.json"
  $HT_PYTHON - "$ROOT/jobs/tiny.json" "$T/overrides.json" "$JOB" <<'PY'
import json, sys
job = json.load(open(sys.argv[1])); job.update(json.load(open(sys.argv[2])))
json.dump(job, open(sys.argv[3], "w"), indent=1)
PY
}
write_job 1000000
jid=$(HT_REQUEUE=1 timeout 20 sbatch --parsable --ntasks=$NT --cpus-per-task=1 --time=10 -o "$T/req-%j.out" \
      slurm/train.sbatch "$JOB" --data "$DATA" "${VERIFY[@]}" --out "$RUN" --quiet 2>"$T/err")
jid=${jid%%;*}
OUT=$T/req-$jid.out
state() { timeout 5 squeue -h -j "$jid" -o %T 2>/dev/null; }
launches() { [ -f "$RUN/slurm_launches.log" ] && wc -l < "$RUN/slurm_launches.log" || echo 0; }
no_stale_step() { ! compgen -G "$T/slurm/spool/stepd.slurm.pmix.$jid.*" >/dev/null; }
requeued() { [ "$(launches)" -ge "$1" ] && [ "$(state)" = PENDING ]; }
if [ -z "$jid" ]; then fail "sbatch train.sbatch: $(cat "$T/err")"
elif ! wait_for 60 has_ckpt "$RUN"; then fail "no checkpoint in $RUN after 60 s: $(tail -5 "$OUT" 2>&1)"
else
  grep -q "$NT rank(s) x 1 thread(s)" "$OUT" && pass "job $jid runs $NT rank(s) x 1 thread through $(grep -o 'command: srun --mpi=[a-z0-9_]*' "$OUT" | head -1 | sed 's/command: //'); first checkpoint at step $(latest_ckpt_step "$RUN")" \
    || fail "ranks/threads line: $(grep -m1 'rank(s)' "$OUT")"
  # (a) --signal=B:USR1@120 signals the batch shell; scancel --batch sends the same signal now.
  timeout 10 scancel --batch --signal=USR1 "$jid"
  if wait_for 40 requeued 1; then
    n1=$(sed -n 's/.*received signal [0-9]*: checkpoint written at step \([0-9]*\).*/\1/p' "$OUT" | tail -1)
    grep -q "status=75 (stopped at a checkpoint (SIGUSR1))" "$RUN/slurm_launches.log" && grep -q "requeueing job $jid" "$OUT" \
      && pass "USR1: checkpoint at step $n1, status 75, the script requeued job $jid" || fail "USR1 path: $(tail -5 "$OUT")"
    # Skip Slurm's requeue delay, once the old job step is gone (its PMIx socket is removed last).
    wait_for 30 no_stale_step
    timeout 10 scontrol update JobId="$jid" StartTime=now
    if wait_for 60 grep -q "resumed from .*ckpt_0*$n1.h5 at step $n1" "$OUT"; then
      pass "restart 1 resumed from ckpt at step $n1 ($(elapsed))"
      # (b) preemption / scontrol requeue: SIGTERM to the job; requeuehold keeps it until released.
      ahead() { [ "$(latest_ckpt_step "$RUN")" -gt "$n1" ] 2>/dev/null; }
      wait_for 60 ahead
      timeout 10 scontrol requeuehold "$jid"
      if wait_for 40 requeued 2; then
        n2=$(sed -n 's/.*received signal [0-9]*: checkpoint written at step \([0-9]*\).*/\1/p' "$OUT" | tail -1)
        grep -q "status=75 (stopped at a checkpoint (SIGTERM))" "$RUN/slurm_launches.log" \
          && pass "scontrol requeuehold: SIGTERM, checkpoint at step $n2, status 75, job requeued by Slurm" || fail "requeue path: $(tail -5 "$RUN/slurm_launches.log")"
        final=$((n2 + 20))
        write_job $final
        wait_for 30 no_stale_step
        timeout 10 scontrol release "$jid"; timeout 10 scontrol update JobId="$jid" StartTime=now
        gone() { case $(state) in ""|COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) return 0;; esac; return 1; }
        if wait_for 90 gone; then
          grep -q "resumed from .*ckpt_0*$n2.h5 at step $n2" "$OUT" && grep -q "^done: $((final - n2)) steps" "$OUT" \
            && pass "restart 2 resumed from ckpt at step $n2 and finished at step $final" || fail "last launch: $(tail -5 "$OUT")"
          [ -f "$RUN/ckpt_$(printf %08d $final).h5" ] && grep -q '"type":"val","step":'$final, "$RUN/metrics.jsonl" \
            && pass "final checkpoint and validation at step $final" || fail "final outputs: $(ls "$RUN" | tr '\n' ' ')"
          train_steps_contiguous "$RUN" $final && pass "metrics.jsonl: train steps 1..$final, each exactly once across 3 launches" \
            || fail "metrics steps not 1..$final: $(grep -c '"type":"train"' "$RUN/metrics.jsonl") train lines"
          [ "$(cut -d' ' -f4 "$RUN/slurm_launches.log" | tr '\n' ' ')" = "restart=0 restart=1 restart=2 " ] \
            && [ "$(grep -o 'status=[0-9]*' "$RUN/slurm_launches.log" | tr '\n' ' ')" = "status=75 status=75 status=0 " ] \
            && pass "slurm_launches.log: restarts 0, 1, 2 with status 75, 75, 0" || fail "launches: $(cat "$RUN/slurm_launches.log")"
        else fail "job $jid not done 90 s after release: $(state); $(tail -5 "$OUT")"; fi
      else fail "not requeued after requeuehold: $(state); $(tail -5 "$OUT")"; fi
    else fail "restart 1 did not resume from step $n1: $(tail -8 "$OUT")"; fi
  else fail "not requeued after USR1: state $(state); $(tail -8 "$OUT")"; fi
fi

[ -n "$jid" ] && timeout 10 scancel "$jid" 2>/dev/null   # (after a failure: free the CPUs)

echo "5. the mpirun launcher inside an allocation ($(elapsed))"
if [ $MPI_BUILD = 0 ]; then skip "hypertrain is not an MPI build: the mpirun launcher"
elif ! command -v mpirun >/dev/null; then skip "no mpirun on PATH"
else
  NP=2; [ "$NCPU" -lt 2 ] && NP=1
  jid=$(HT_LAUNCHER=mpirun HT_MPIRUN_ARGS="--oversubscribe --bind-to none" timeout 20 sbatch --parsable --ntasks=$NP --cpus-per-task=1 --time=5 \
        -o "$T/mpirun-%j.out" slurm/train.sbatch jobs/tiny.json --data "$DATA" "${VERIFY[@]}" --out "$T/runs/mpirun" --set steps=3 --quiet 2>"$T/err")
  jid=${jid%%;*}
  done_mpirun() { [ -z "$(timeout 5 squeue -h -j "$jid" -o %i 2>/dev/null)" ]; }
  if [ -n "$jid" ] && wait_for 60 done_mpirun && grep -q "$NP rank(s) x 1 thread(s)" "$T/mpirun-$jid.out" && [ -f "$T/runs/mpirun/ckpt_00000003.h5" ]; then
    pass "HT_LAUNCHER=mpirun: $NP ranks, 3 steps, checkpoint"
  else fail "mpirun launcher (job ${jid:-?}): $(cat "$T/err" "$T/mpirun-$jid.out" 2>&1 | tail -8)"; fi
fi

echo "t_slurm: $passes passed, $fails failed, $skips skipped ($(elapsed))"
[ $fails -eq 0 ] && [ $passes -gt 0 ]
