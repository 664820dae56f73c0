# Bad run directories and resumes of ./hypertrain (sourced by tests/t_bad_inputs.sh). Each must
# fail with one line and leave every existing file as it was: job.json, metrics.jsonl and the
# checkpoints survive a refused or failed resume.
TOY="$ROOT/jobs/toy.json"
TS=(--set checkpoint_every=2 --set keep_checkpoints=5 --set val_every=3 --set log_every=1 --quiet)
# run/: a finished toy run with checkpoints at steps 2, 4 and 6 (no data needed).
"$HT" "$TOY" --out run --set steps=6 "${TS[@]}" >/dev/null 2>&1 || echo "  FAIL setting up the toy run directory"

bad resume_seed_mismatch 1 "ckpt_00000006.h5' was written with seed 1 but the job has seed 7" -- \
  "$HT" --out run --resume --set steps=8 --set seed=7 "${TS[@]}"
bad resume_other_architecture 1 "ckpt_00000006.h5'.*shape .* different architecture" -- \
  "$HT" --out run --resume --set steps=8 --set 'toy.hidden=[20,10,10]' "${TS[@]}"
bad resume_beyond_steps 1 "at step 6, beyond the job's steps = 4.*steps=N" -- \
  "$HT" --out run --resume --set steps=4 "${TS[@]}"
bad resume_not_latest 1 "ckpt_00000002.h5' is at step 2 but run directory 'run' holds 2 newer checkpoint\(s\) \(ckpt_00000004.h5, ckpt_00000006.h5\).*--branch" -- \
  "$HT" --out run --resume run/ckpt_00000002.h5 --set steps=8 "${TS[@]}"
bad resume_missing_path 1 "--resume: checkpoint 'run/ckpt_00000099.h5' does not exist" -- \
  "$HT" --out run --resume run/ckpt_00000099.h5 "${TS[@]}"
bad resume_directory 1 "--resume: 'run' is a directory, not a checkpoint file" -- \
  "$HT" --out run --resume run "${TS[@]}"
bad resume_not_a_checkpoint 1 "run/job.json' is not a readable HDF5 file" -- \
  "$HT" --out run --resume=run/job.json "${TS[@]}"
bad resume_empty_path 1 "--resume= needs a checkpoint path" -- "$HT" --out run --resume= "${TS[@]}"
bad branch_without_resume 1 "--branch applies only with --resume" -- "$HT" "$TOY" --out run2 --branch "${TS[@]}"
bad fresh_run_over_checkpoints 1 "run directory 'run' already holds checkpoints \(latest: run/ckpt_00000006.h5\)" -- \
  "$HT" "$TOY" --out run --set steps=8 "${TS[@]}"

# A diverging resume (its first step fails): no file changes, job.json included.
cp -r run diverge
bad resume_diverges 1 "training diverged at step 7" -- \
  "$HT" --out diverge --resume --set steps=8 --set lambda=1e39 "${TS[@]}"

# Another process holds the run directory's lock (as a running hypertrain would: pid and host in
# the lock file).
cp -r run locked
( exec 9>>locked/.lock; flock -n 9 && printf 'pid %d on host testhost since 2026-01-01T00:00:00Z\n' $BASHPID >&9 && sleep 30 ) &
holder=$!
for _ in $(seq 1 100); do [ -s locked/.lock ] && break; sleep 0.05; done
bad locked_run_directory 1 "run directory 'locked' is in use by another run \(pid $holder on host testhost .*lock file locked/.lock\)" -- \
  "$HT" --out locked --resume --set steps=8 "${TS[@]}"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null

LONG=$(printf 'd%.0s' $(seq 1 1000))
bad out_too_long 1 "--out 'd{20,}\.\.\.' is too long: 1000 bytes, run directory paths are limited to" -- \
  "$HT" "$TOY" --out "$LONG" "${TS[@]}"
bad out_is_a_file 1 "--out 'run/job.json' exists and is not a directory" -- "$HT" "$TOY" --out run/job.json "${TS[@]}"
bad out_under_a_file 1 "cannot create directory 'run/job.json/sub': Not a directory" -- \
  "$HT" "$TOY" --out run/job.json/sub "${TS[@]}"
if [ "$(id -u)" -ne 0 ]; then
  mkdir -p readonly && chmod a-w readonly
  bad out_not_writable 1 "run directory 'readonly' is not writable \(Permission denied\)" -- \
    "$HT" "$TOY" --out readonly "${TS[@]}"
  chmod u+w readonly
else   # root writes anywhere a mode allows: use a directory no one may create files in
  bad out_not_writable 1 "run directory '/sys/kernel' is not writable \(cannot create its lock file .lock: Permission denied\)" -- \
    "$HT" "$TOY" --out /sys/kernel "${TS[@]}"
fi

# A full disk while writing metrics.jsonl (a link to /dev/full): the error names the file. The run
# has started by then (it creates job.json and .lock, new files); the link is left alone.
mkdir -p full && ln -s /dev/full full/metrics.jsonl
bad metrics_disk_full 1 "cannot write 'full/metrics.jsonl': No space left on device" -- \
  "$HT" "$TOY" --out full --set steps=2 "${TS[@]}"

# A checkpoint of another task (needs MNIST for the tiny run directory).
if need_mnist "resume a tiny MNIST checkpoint with the toy job"; then
  make_ckpt tiny && bad resume_other_task 1 "tiny/ckpt_00000004.h5'.*(missing dataset|different architecture)" -- \
    "$HT" "$TOY" --out tiny --resume --set steps=8 --quiet
fi
