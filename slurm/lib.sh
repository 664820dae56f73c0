# slurm/lib.sh: what train.sbatch and lambda-sweep.sbatch share. Sourced (not executed) by the
# batch script, so that the signal traps below belong to the batch shell itself: that is the
# process `#SBATCH --signal=B:USR1@120` signals before the time limit.
#
# Entry point: ht_launch RUN_DIR HYPERTRAIN_ARGS...
#   Starts hypertrain in RUN_DIR (always with --resume, so a requeued or preempted job continues
#   from its latest checkpoint), forwards USR1/TERM to it, and on exit status 75 (checkpointed
#   after a signal) optionally requeues the job. Returns hypertrain's exit status.
#
# Environment (all optional; see docs/slurm.md):
#   HT_ROOT          repository root (set by the batch script before sourcing this file)
#   HT_BIN           the hypertrain binary (default $HT_ROOT/hypertrain; $HT_ROOT/build-cuda/hypertrain
#                    in a job with GPUs when that CUDA build exists)
#   HT_LAUNCHER      srun | mpirun | none (default: srun inside a Slurm job, none outside)
#   HT_MPI           srun --mpi type: auto (default: pmix if `srun --mpi=list` has it, else pmi2,
#                    else none) or any name `srun --mpi=list` prints
#   HT_SRUN_ARGS     extra srun arguments (e.g. "--cpu-bind=cores")
#   HT_MPIRUN_ARGS   extra mpirun arguments
#   HT_REQUEUE       1: requeue the job when it stopped at a checkpoint because of USR1 (the
#                    --signal warning before the time limit); 0 (default): exit 75
#   HT_MAX_RESTARTS  no self-requeue once the job has been restarted this often (default 50)
#   HT_LAUNCH_RETRIES  how often a srun launch that fails within 30 s is retried (default 1)
#   HT_STDBUF        1 (default): run hypertrain under `stdbuf -oL` (line-buffered output); 0: not

ht_log() { echo "[$(date '+%F %T')] ${HT_SCRIPT:-hypertrain-slurm}: $*"; }
ht_die() { echo "[$(date '+%F %T')] ${HT_SCRIPT:-hypertrain-slurm}: error: $*" >&2; exit 1; }

# ht_pick_mpi: prints the srun --mpi type to use.
ht_pick_mpi() {
    local want=${HT_MPI:-auto} list
    if [ "$want" != auto ]; then echo "$want"; return; fi
    list=$(srun --mpi=list 2>&1 | sed -n 's/^[[:space:]]*\(srun: \)\{0,1\}\([a-z0-9_]*\)[[:space:]]*$/\2/p')
    # Debian's (and most sites') Open MPI speaks PMIx; Slurm's own PMI2 library is the fallback.
    for t in pmix pmix_v5 pmix_v4 pmix_v3 pmix_v2 pmi2; do
        if printf '%s\n' "$list" | grep -qx "$t"; then echo "$t"; return; fi
    done
    echo none
}

# ht_built_with_mpi: whether HT_BIN is an MPI build (several ranks of a non-MPI build would each
# train alone and overwrite each other's run directory).
ht_built_with_mpi() {
    command -v ldd >/dev/null 2>&1 || return 0
    ldd "$HT_BIN" 2>/dev/null | grep -q 'libmpi'
}

HT_GOT_SIGNAL=""
HT_CHILD=""
ht_on_signal() {
    local sig=$1
    # USR1 is the time-limit warning; a TERM (scancel, preemption, scontrol requeue) wins over it.
    if [ "$HT_GOT_SIGNAL" != TERM ]; then HT_GOT_SIGNAL=$sig; fi
    ht_log "received SIG$sig: asking hypertrain to checkpoint after the current step"
    # hypertrain treats USR1 and TERM alike; srun and mpirun forward USR1 to every rank.
    if [ -n "$HT_CHILD" ]; then kill -USR1 "$HT_CHILD" 2>/dev/null; fi
}

# ht_resume_args RUN_DIR ARGS...: prints ARGS one per line, with --resume added. An explicit
# "--resume CKPT.h5" is kept only while RUN_DIR holds no checkpoint: after a requeue the run
# continues from its own latest checkpoint, not from CKPT again.
ht_resume_args() {
    local dir=$1; shift
    local have_ckpt=0 explicit=0 out=()
    if compgen -G "$dir/ckpt_*.h5" >/dev/null; then have_ckpt=1; fi
    while [ $# -gt 0 ]; do
        if [ "$1" = --resume ]; then
            shift
            if [ $# -gt 0 ] && [[ "$1" == *.h5 ]]; then
                if [ $have_ckpt = 0 ]; then out+=(--resume "$1"); explicit=1
                else ht_log "the run directory holds checkpoints: ignoring --resume $1" >&2; fi
                shift
            fi
            continue
        fi
        out+=("$1"); shift
    done
    if [ $explicit = 0 ]; then out+=(--resume); fi
    printf '%s\n' "${out[@]}"
}

# ht_run_child CMD...: runs CMD in the background (so that the traps run while it works) and
# returns its exit status.
ht_run_child() {
    "$@" &
    HT_CHILD=$!
    # A signal that came before the launch still counts.
    if [ -n "$HT_GOT_SIGNAL" ]; then kill -USR1 "$HT_CHILD" 2>/dev/null; fi
    local rc
    wait "$HT_CHILD"; rc=$?
    # wait returns early (status > 128) when a trapped signal arrives; keep waiting for the exit.
    while [ $rc -gt 128 ] && kill -0 "$HT_CHILD" 2>/dev/null; do wait "$HT_CHILD"; rc=$?; done
    if [ $rc -gt 128 ]; then wait "$HT_CHILD" 2>/dev/null; rc=$?; fi
    HT_CHILD=""
    return $rc
}

# ht_check_finished RUN_DIR START: after status 0, hypertrain must have run (it writes job.json
# when it starts, here at or after START, in seconds since the epoch) and reached its last step
# (it always checkpoints at the end). Some srun versions exit 0 when a step fails to launch.
ht_check_finished() {
    local dir=$1 start=$2 want have mtime
    mtime=$(stat -c %Y "$dir/job.json" 2>/dev/null || echo 0)
    if [ "$mtime" -lt "$start" ]; then
        ht_log "error: the launcher reported success, but hypertrain did not start (no new $dir/job.json; see the launcher's messages above)" >&2
        return 1
    fi
    want=$(sed -n 's/^  "steps": \([0-9][0-9]*\),\{0,1\}$/\1/p' "$dir/job.json" 2>/dev/null | head -1)
    have=$(ls "$dir" 2>/dev/null | sed -n 's/^ckpt_0*\([0-9][0-9]*\)\.h5$/\1/p' | sort -n | tail -1)
    if [ -n "$want" ] && { [ -z "$have" ] || [ "$have" -lt "$want" ]; }; then
        ht_log "error: the launcher reported success, but the latest checkpoint in $dir is at step ${have:-(none)} of $want: hypertrain did not run (see the launcher's messages above)" >&2
        return 1
    fi
    return 0
}

ht_launch() {
    local run_dir=$1; shift
    # From here on a signal is remembered (and forwarded once hypertrain runs), never fatal.
    trap 'ht_on_signal USR1' USR1
    trap 'ht_on_signal TERM' TERM
    trap 'ht_on_signal INT' INT
    if [ -z "${HT_BIN:-}" ]; then
        HT_BIN=$HT_ROOT/hypertrain
        # A job with GPUs runs the CUDA build (make CUDA=1 puts it in build-cuda/) when there is one.
        if { [ -n "${SLURM_JOB_GPUS:-}" ] || [ "${SLURM_GPUS_ON_NODE:-0}" != 0 ]; } && [ -x "$HT_ROOT/build-cuda/hypertrain" ]; then
            HT_BIN=$HT_ROOT/build-cuda/hypertrain
        fi
    fi
    [ -x "$HT_BIN" ] || ht_die "hypertrain binary '$HT_BIN' not found or not executable (run make in $HT_ROOT, or set HT_BIN)"
    mkdir -p "$run_dir" || ht_die "cannot create run directory '$run_dir'"

    local ntasks=${SLURM_NTASKS:-1} cpus=${SLURM_CPUS_PER_TASK:-}
    export OMP_NUM_THREADS=${cpus:-${OMP_NUM_THREADS:-1}}
    local launcher=${HT_LAUNCHER:-}
    if [ -z "$launcher" ]; then
        if [ -n "${SLURM_JOB_ID:-}" ] && command -v srun >/dev/null 2>&1; then launcher=srun; else launcher=none; fi
    fi
    if [ "$ntasks" -gt 1 ] && ! ht_built_with_mpi; then
        ht_die "the job has $ntasks tasks but '$HT_BIN' was built without MPI (rebuild with make MPI=1, or use --ntasks=1)"
    fi

    local cmd=()
    case $launcher in
        srun)
            local mpi; mpi=$(ht_pick_mpi)
            # Since Slurm 22.05 srun no longer inherits --cpus-per-task from the allocation.
            # shellcheck disable=SC2206
            cmd=(srun --mpi="$mpi" --kill-on-bad-exit=1 --ntasks="$ntasks" ${cpus:+--cpus-per-task="$cpus"} ${HT_SRUN_ARGS:-});;
        mpirun)
            local extra=()
            if [ "$(id -u)" = 0 ]; then extra=(--allow-run-as-root); fi
            # shellcheck disable=SC2206
            # On SIGTERM mpirun kills the ranks after odls_base_sigkill_timeout (default 1 s): give
            # them time to finish the step and write the checkpoint.
            cmd=(mpirun -np "$ntasks" "${extra[@]}" --mca odls_base_sigkill_timeout 30 -x OMP_NUM_THREADS ${HT_MPIRUN_ARGS:-});;
        none)
            [ "$ntasks" -eq 1 ] || ht_die "HT_LAUNCHER=none starts one process, but the job has $ntasks tasks";;
        *) ht_die "HT_LAUNCHER must be srun, mpirun or none (got '$launcher')";;
    esac
    # Line-buffered stdout, so that the job's output file follows the run (through a pipe, C stdio
    # would hold the lines back until a buffer fills or the run ends).
    if [ "${HT_STDBUF:-1}" = 1 ] && command -v stdbuf >/dev/null 2>&1; then cmd+=(stdbuf -oL -eL); fi
    local args=()
    mapfile -t args < <(ht_resume_args "$run_dir" "$@")
    cmd+=("$HT_BIN" "${args[@]}" --out "$run_dir")

    local restarts=${SLURM_RESTART_COUNT:-0}
    ht_log "job ${SLURM_JOB_ID:-(not in Slurm)} restart $restarts on $(hostname -s): $ntasks rank(s) x $OMP_NUM_THREADS thread(s), run directory $run_dir"
    ht_log "command: ${cmd[*]}"
    local rc tries=0 t_start
    while :; do
        t_start=$SECONDS
        local epoch; epoch=$(date +%s)
        ht_run_child "${cmd[@]}"; rc=$?
        if [ $rc -eq 0 ]; then ht_check_finished "$run_dir" $((epoch - 1)) || rc=1; fi
        # srun can fail to start a step, e.g. on a node where a killed step of the same job id
        # (before a requeue) left its PMIx socket behind; a new step (new step id) then works.
        if [ $rc -ne 0 ] && [ $rc -ne 75 ] && [ "$launcher" = srun ] && [ -z "$HT_GOT_SIGNAL" ] \
           && [ $((SECONDS - t_start)) -lt 30 ] && [ $tries -lt "${HT_LAUNCH_RETRIES:-1}" ]; then
            tries=$((tries + 1))
            ht_log "the launch failed after $((SECONDS - t_start)) s with status $rc; retrying in 5 s (attempt $((tries + 1)); HT_LAUNCH_RETRIES=0 turns this off)"
            sleep 5
            continue
        fi
        break
    done
    trap - USR1 TERM INT

    local what="finished"
    if [ $rc -eq 75 ]; then what="stopped at a checkpoint (SIG${HT_GOT_SIGNAL:-?})"
    elif [ $rc -ne 0 ]; then what="failed"; fi
    printf '%s job=%s restart=%s host=%s launcher=%s ranks=%s threads=%s status=%s (%s)\n' \
        "$(date '+%F %T')" "${SLURM_JOB_ID:-none}" "$restarts" "$(hostname -s)" "$launcher" \
        "$ntasks" "$OMP_NUM_THREADS" "$rc" "$what" >> "$run_dir/slurm_launches.log"
    ht_log "hypertrain exited with status $rc: $what"

    if [ $rc -eq 75 ]; then
        if [ "$HT_GOT_SIGNAL" = USR1 ] && [ "${HT_REQUEUE:-0}" = 1 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
            if [ "$restarts" -ge "${HT_MAX_RESTARTS:-50}" ]; then
                ht_log "not requeueing: already restarted $restarts times (HT_MAX_RESTARTS=${HT_MAX_RESTARTS:-50})"
            else
                # logged first: a successful requeue ends this script (Slurm kills the old batch
                # step), so nothing after scontrol may run
                ht_log "requeueing job $SLURM_JOB_ID: it will continue from the latest checkpoint in $run_dir"
                scontrol requeue "$SLURM_JOB_ID" ||
                ht_log "scontrol requeue $SLURM_JOB_ID failed; continue by hand (same arguments, or --out $run_dir)"
            fi
        elif [ "$HT_GOT_SIGNAL" = TERM ]; then
            ht_log "terminated by Slurm (cancel, preemption or requeue); a requeued job continues from the latest checkpoint"
        else
            ht_log "continue with the same arguments (or --out $run_dir): the run resumes from its latest checkpoint"
        fi
    fi
    return $rc
}
