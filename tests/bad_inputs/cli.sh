# Bad command lines of ./hypertrain (sourced by tests/t_bad_inputs.sh).
bad set_missing_value 1 '^hypertrain: error: --set needs KEY=VALUE$' -- "$HT" --print-job --set
bad data_missing_value 1 '^hypertrain: error: --data needs a directory$' -- "$HT" --print-job --data
bad device_missing_value 1 '^hypertrain: error: --device needs cpu, cuda or auto$' -- "$HT" --print-job --device
bad threads_not_a_number 1 'key "threads": expected an integer in \[0, 4096\], got "abc"' -- "$HT" --print-job --threads abc
bad threads_too_many 1 'key "threads": expected an integer in \[0, 4096\], got 99999' -- "$HT" --print-job --threads 99999
bad threads_negative 1 'key "threads": expected an integer in \[0, 4096\], got -3' -- "$HT" --print-job --threads -3
bad two_job_files 1 "more than one job file given \('a.json' and 'b.json'\)" -- "$HT" a.json b.json --print-job
# --device is checked when the run starts (the toy task needs no data); the job is printed first
# and the run directory created (outside $W)
RUNS=$(mktemp -d /tmp/ht_bad_runs_XXXXXX)
bad device_unknown 1 "^hypertrain: error: --device must be cpu, cuda or auto \(got 'gpu'\)$" -- \
  "$HT" --device gpu --set task=toy --set steps=1 --out "$RUNS/dev" --quiet
rm -rf "$RUNS"
# an unknown option prints the usage before the message (several lines: main.c's choice)
allow_multiline
bad unknown_option 1 "^hypertrain: error: unknown option '--frob' \(see --help\)$" -- "$HT" --frob
