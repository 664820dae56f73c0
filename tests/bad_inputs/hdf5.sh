# Bad HDF5 inputs: crafted checkpoints, sample sets and result files (sourced by
# tests/t_bad_inputs.sh; the crafting is tests/craft_h5.py, with h5py). Each must end with exit
# status 1 and one line naming the file, the object and what was expected.
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
if ! "$PY" -c "import h5py, numpy" 2>/dev/null; then
  echo "  SKIPPED (no h5py): the HDF5 cases"; skips=$((skips+1)); return 0
fi
need_mnist "the HDF5 cases (a valid checkpoint is trained first)" || return 0
make_ckpt h5run || return 0
CK=h5run/ckpt_00000004.h5
craft() { "$PY" "$ROOT/tests/craft_h5.py" "$1" "$2" "$3"; }

# Checkpoints, read by --resume (the job attribute) and by `hypertrain sample` (the job, then the
# datasets and the other attributes; --resume creates the run directory before it reads them).
craft format_vlen64 "$CK" c_format64.h5
bad ckpt_format_array 1 "checkpoint 'c_format64.h5': attribute \"format\" must be a single string, got a 64-element array" \
  -- "$HT" --resume c_format64.h5 --out r1 --quiet
craft job_vlen4 "$CK" c_job4.h5
bad ckpt_job_array 1 "checkpoint 'c_job4.h5': attribute \"job\" must be a single string, got a 4-element array" \
  -- "$HT" --resume c_job4.h5 --out r2 --quiet
craft version_string "$CK" c_version.h5
bad ckpt_version_string 1 "checkpoint 'c_version.h5': attribute \"format_version\" must be a single integer, got a scalar of type string" \
  -- "$HT" --resume c_version.h5 --out r3 --quiet
craft job_not_json "$CK" c_json.h5
bad ckpt_job_not_json 1 "c_json.h5.*invalid JSON" -- "$HT" --resume c_json.h5 --out r4 --quiet
craft param_shape "$CK" c_shape.h5
bad ckpt_param_shape 1 "checkpoint 'c_shape.h5': /params/[a-z0-9_/]+ has shape \([0-9, ]+\) but this job's architecture expects" \
  -- "$HT" sample --checkpoint c_shape.h5 --count 1 --out s_r5.h5 --quiet
craft param_strings "$CK" c_strings.h5
bad ckpt_param_strings 1 "checkpoint 'c_strings.h5': /params/[a-z0-9_/]+ has type variable-length string, but checkpoints store float32" \
  -- "$HT" sample --checkpoint c_strings.h5 --count 1 --out s_r6.h5 --quiet
craft param_huge "$CK" c_huge.h5
bad ckpt_param_huge_dims 1 "checkpoint 'c_huge.h5': /params/[a-z0-9_/]+ has shape \(1099511627776, 1048576\)" \
  -- "$HT" sample --checkpoint c_huge.h5 --count 1 --out s_r7.h5 --quiet
craft lr_nan "$CK" c_lr.h5
bad ckpt_lr_nan 1 "checkpoint 'c_lr.h5': attribute \"lr\" must be a finite number, got nan" \
  -- "$HT" sample --checkpoint c_lr.h5 --count 1 --out s_r8.h5 --quiet
craft world_size_zero "$CK" c_ws.h5
bad ckpt_world_size_zero 1 "checkpoint 'c_ws.h5': attribute \"world_size\" must be >= 1, got 0" \
  -- "$HT" sample --checkpoint c_ws.h5 --count 1 --out s_ws.h5 --quiet
head -c 3000 "$CK" > c_cut.h5
bad ckpt_truncated 1 "'c_cut.h5' is not a readable HDF5 file" -- "$HT" --resume c_cut.h5 --out r9 --quiet

# Sample sets, read by the analyses.
"$HT" sample --checkpoint "$CK" --count 3 --batch 32 --out set.h5 --quiet >/dev/null 2>&1 || { echo "  FAIL: sample"; fails=$((fails+1)); return 0; }
craft format_s21x2000 set.h5 s_format.h5
bad set_format_fixed_array 1 "sample set 's_format.h5': attribute \"format\" must be a single string, got a 2000-element array" \
  -- "$HA" accuracy s_format.h5 --out a1.h5
craft weights_shape set.h5 s_wshape.h5
bad set_weights_shape 1 "sample set 's_wshape.h5': /weights/layer1/kernel has shape \(3, 5, 5, 1, 7\) but its target architecture needs \(3, 5, 5, 1, 4\)" \
  -- "$HA" pca s_wshape.h5 --what all --out a2.h5
craft z_huge set.h5 s_zhuge.h5
bad set_z_huge_dims 1 "sample set 's_zhuge.h5': /z declares shape \(8589934592, 8\) but not all of its data is stored in the file" \
  -- "$HA" ensemble s_zhuge.h5 --out a3.h5
craft metrics_split_bad set.h5 s_split.h5
bad set_metrics_split 1 "sample set 's_split.h5': attribute \"metrics_split\" must be \"val\", \"test\" or \"none\", got \"train\"" \
  -- "$HA" accuracy s_split.h5 --out a4.h5
craft target_arch_int set.h5 s_arch.h5
bad set_target_arch_type 1 "sample set 's_arch.h5': attribute \"target_architecture\" must be a single string, got a scalar of type integer" \
  -- "$HA" filters s_arch.h5 --out a5.h5

# Result files, read by the plot scripts through analysis/resultfile.py.
"$HT" sample --checkpoint "$CK" --count 2 --batch 32 --metrics val --images 10 --data "$DATA" --out setm.h5 --quiet >/dev/null 2>&1 &&
  "$HA" accuracy setm.h5 --out acc.h5 >/dev/null 2>&1 || { echo "  FAIL: accuracy result"; fails=$((fails+1)); return 0; }
craft result_accuracy_strings acc.h5 r_strings.h5
bad result_wrong_type 1 "result file 'r_strings.h5': dataset /accuracy must be a 1-D float array, got a 2-element array of variable-length string" \
  -- "$PY" "$ROOT/analysis/resultfile.py" accuracy r_strings.h5
craft result_step_array acc.h5 r_step.h5
bad result_attr_array 1 "result file 'r_step.h5': attribute \"step\" must be a single integer, got a 2-element array" \
  -- "$PY" "$ROOT/analysis/resultfile.py" accuracy r_step.h5
bad result_wrong_kind 1 "result file 'acc.h5': it is a result of 'hyperanalyze accuracy', not of hyperanalyze pca" \
  -- "$PY" "$ROOT/analysis/resultfile.py" pca acc.h5
