# Bad jobs and command lines of ./hypertrain (sourced by tests/t_bad_inputs.sh).
printf '{ "lr": 0.1, }' > malformed.json
bad malformed_json 1 "malformed.json" -- "$HT" malformed.json --print-job
printf '{ "learning_rate": 0.1 }' > unknown.json
bad unknown_key 1 "learning_rate" -- "$HT" unknown.json --print-job
bad missing_job_file 1 "nope.json" -- "$HT" nope.json --print-job
bad negative_lr 1 "lr" -- "$HT" --set lr=-1 --print-job
# numbers that do not fit a double: named by key and literal, not "got null"
bad lr_1e400 1 '^hypertrain: error: --set: key "lr": the number 1e400 is out of range' -- "$HT" --set lr=1e400 --print-job
printf '{ "toy": { "means": [[1, 2], [3, -5e500]] } }' > huge.json
bad file_1e400 1 'huge.json: key "toy.means\[1\]\[1\]": the number -5e500 is out of range' -- "$HT" huge.json --print-job
# wrong types and ranges
printf '{ "steps": "100" }' > type.json
bad string_for_int 1 'type.json: key "steps": expected an integer >= 1, got "100"' -- "$HT" type.json --print-job
bad batch_1 1 'key "batch": expected an integer >= 2, got 1' -- "$HT" --set batch=1 --print-job
bad int_above_int_max 1 'key "steps": expected an integer >= 1 and <= 2147483647, got 3000000000' -- "$HT" --set steps=3000000000 --print-job
bad width_above_cap 1 'key "target.layers\[0\].filters": expected an integer in \[1, 1048576\], got 2000000' -- \
  "$HT" --set 'target.layers[0].filters=2000000' --print-job
printf '{ "lr": 0.1, "lr": 0.2 }' > dup.json
bad duplicate_key 1 'dup.json: key "lr" appears more than once' -- "$HT" dup.json --print-job
# widths whose products overflow or exceed the limits (--print-job used to print wrapped counts)
bad conv_fan_in_overflow 1 'target.layers\[3\] \(conv\): kernel 1023 x 1023 x 1048576 input channels = [0-9]+ weights per filter exceed the limit' -- \
  "$HT" --set 'target.layers[0].filters=1048576' --set 'target.layers[3].kernel=1023' --print-job
bad layer_weights_limit 1 'target.layers\[6\] \(fc\): 1048576 units x 51380225 weights each .* exceed the limit of 2147483647 per layer' -- \
  "$HT" --set 'target.layers[3].filters=1048576' --set 'target.layers[6].units=1048576' --print-job
bad extractor_too_wide 1 'the extractor would output 4121 codes x "code_size" 1048576 = [0-9]+ values per sample' -- \
  "$HT" --set code_size=1048576 --set 'target.layers[0].filters=4096' --print-job
# layers
bad unknown_layer_type 1 'key "target.layers\[1\].type": expected one of "conv", "fc", "relu" or "maxpool", got "pool"' -- \
  "$HT" --set 'target.layers[1].type=pool' --print-job
bad even_kernel 1 'key "target.layers\[0\].kernel": expected an odd integer' -- "$HT" --set 'target.layers[0].kernel=4' --print-job
# --set syntax
bad set_without_equals 1 '^hypertrain: error: --set "lambda": expected key=value' -- "$HT" --set lambda --print-job
bad set_empty_key 1 "--set \"=3\": the key before '=' is empty" -- "$HT" --set =3 --print-job
bad set_typo 1 'unknown key "lamda" \(did you mean "lambda"\?\)' -- "$HT" --set lamda=1 --print-job
# a parameter count that cannot fit in memory: refused before allocating (needs MNIST: the run loads data first)
if need_mnist "hypernetwork larger than memory"; then
  RUNS=$(mktemp -d /tmp/ht_bad_runs_XXXXXX) # the run directory is created before the check: keep it out of $W
  bad params_exceed_memory 1 'job: the hypernetwork \([0-9]+ parameters, with gradients and Adam state\) needs [0-9.]+ GiB, more than the [0-9.]+ GiB of memory' -- \
    "$HT" "$ROOT/jobs/tiny.json" --data "$DATA" --out "$RUNS/params" --quiet --set code_size=1048576 --set 'extractor_hidden=[1048576]'
  bad batch_exceeds_memory 1 'job: training with "batch" 100000000, "val_samples" 8 .* needs [0-9.]+ GiB, more than' -- \
    "$HT" "$ROOT/jobs/tiny.json" --data "$DATA" --out "$RUNS/batch" --quiet --set batch=100000000
  bad generator_rows_limit 1 'generator 1: 2000000000 samples per rank x 4 codes \(filters\) = 8000000000 rows exceed the limit' -- \
    "$HT" "$ROOT/jobs/tiny.json" --data "$DATA" --out "$RUNS/rows" --quiet --set batch=2000000000
  rm -rf "$RUNS"
fi
