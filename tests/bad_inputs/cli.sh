# Bad command lines of ./hypertrain (sourced by tests/t_bad_inputs.sh).
bad set_missing_value 1 '^hypertrain: error: --set needs KEY=VALUE$' -- "$HT" --print-job --set
bad data_missing_value 1 '^hypertrain: error: --data needs a directory$' -- "$HT" --print-job --data
bad device_missing_value 1 '^hypertrain: error: --device needs cpu, cuda or auto$' -- "$HT" --print-job --device
bad threads_not_a_number 1 'key "threads": expected an integer in \[0, 4096\], got "abc"' -- "$HT" --print-job --threads abc
bad threads_too_many 1 'key "threads": expected an integer in \[0, 4096\], got 99999' -- "$HT" --print-job --threads 99999
bad threads_negative 1 'key "threads": expected an integer in \[0, 4096\], got -3' -- "$HT" --print-job --threads -3
bad two_job_files 1 "more than one job file given \('a.json' and 'b.json'\)" -- "$HT" a.json b.json --print-job
# --device is checked with the other options, before anything is printed or created
bad device_unknown 1 "^hypertrain: error: --device must be cpu, cuda or auto \(got 'gpu'\)$" -- \
  "$HT" --device gpu --print-job
bad unknown_option 1 "^hypertrain: error: unknown option '--frob' \(see --help\)$" -- "$HT" --frob
# an option in place of a value: "--out --print-job" once trained into a directory "--print-job"
bad out_value_is_option 1 "^hypertrain: error: --out needs a directory, got the option '--print-job'" -- \
  "$HT" --out --print-job
bad set_value_is_option 1 "^hypertrain: error: --set needs KEY=VALUE, got the option '--quiet'" -- \
  "$HT" --set --quiet --print-job
