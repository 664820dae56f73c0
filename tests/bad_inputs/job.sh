# Bad jobs and command lines of ./hypertrain (sourced by tests/t_bad_inputs.sh).
printf '{ "lr": 0.1, }' > malformed.json
bad malformed_json 1 "malformed.json" -- "$HT" malformed.json --print-job
printf '{ "learning_rate": 0.1 }' > unknown.json
bad unknown_key 1 "learning_rate" -- "$HT" unknown.json --print-job
bad missing_job_file 1 "nope.json" -- "$HT" nope.json --print-job
bad negative_lr 1 "lr" -- "$HT" --set lr=-1 --print-job
