# Bad command lines and inputs of ./hyperanalyze (sourced by tests/t_bad_inputs.sh). Errors are one
# line "hyperanalyze CMD: error: ..."; usage errors exit 2 and end with "(see hyperanalyze CMD --help)".
bad unknown_command 2 "^hyperanalyze: error: unknown command 'frobnicate' \(commands: sweep, accuracy, .*\) \(see hyperanalyze --help\)$" -- \
  "$HA" frobnicate
bad missing_sample_set 2 '^hyperanalyze accuracy: error: a sample set is required: hyperanalyze accuracy SAMPLES.h5 \(see hyperanalyze accuracy --help\)$' -- \
  "$HA" accuracy
bad nonexistent_sample_set 1 "^hyperanalyze accuracy: error: cannot open sample set '.*/nope.h5': No such file or directory$" -- \
  "$HA" accuracy "$W/nope.h5"
printf 'not hdf5\n' > garbage.h5
bad sample_set_not_hdf5 1 "^hyperanalyze ensemble: error: '.*/garbage.h5' is not a readable HDF5 file" -- "$HA" ensemble "$W/garbage.h5"
bad option_not_a_number 2 "^hyperanalyze ensemble: error: --k: expected an integer in \[1, 1048576\], got 'abc' \(see hyperanalyze ensemble --help\)$" -- \
  "$HA" ensemble "$W/garbage.h5" --k abc
bad option_out_of_range 2 "^hyperanalyze pca: error: --n: expected an integer in \[2, 1048576\], got '1'" -- \
  "$HA" pca "$W/garbage.h5" --what all --n 1
bad option_missing_value 2 "^hyperanalyze accuracy: error: --n needs a value \(see hyperanalyze accuracy --help\)$" -- \
  "$HA" accuracy "$W/garbage.h5" --n
bad unknown_option 2 "^hyperanalyze filters: error: unknown option '--frob'" -- "$HA" filters "$W/garbage.h5" --frob 1
bad unknown_option_last 2 "^hyperanalyze filters: error: unknown option '--frob' \(see hyperanalyze filters --help\)$" -- \
  "$HA" filters "$W/garbage.h5" --frob
bad bad_split 2 "^hyperanalyze accuracy: error: --split: expected val or test, got 'train'" -- "$HA" accuracy "$W/garbage.h5" --split train
bad pca_without_what 2 "^hyperanalyze pca: error: --what filter:L:I \| layer:L \| all is required" -- "$HA" pca "$W/garbage.h5"
bad two_sample_sets 2 "one sample set expected, got '.*garbage.h5' and 'other.h5'" -- "$HA" accuracy "$W/garbage.h5" other.h5
bad baseline_bad_init 2 "^hyperanalyze baseline: error: --init: expected he or glorot, got 'xavier'" -- "$HA" baseline --out "$W/b.h5" --init xavier
printf '{"lr": 1e999}' > huge_lr.json
bad baseline_bad_job 1 "^hyperanalyze baseline: error: huge_lr.json: key \"lr\": the number 1e999 is out of range" -- \
  "$HA" baseline --job huge_lr.json --out "$W/b.h5"
bad sweep_missing_run 1 "^hyperanalyze sweep: error: run directory '.*/norun': does not exist$" -- "$HA" sweep "$W/norun"
mkdir -p badrun && printf '{ "lambda": ' > badrun/job.json
bad sweep_invalid_job 1 "^hyperanalyze sweep: error: .*badrun/job.json is not a JSON object \(invalid JSON\)$" -- "$HA" sweep "$W/badrun"
