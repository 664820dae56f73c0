#!/usr/bin/env bash
# Sweep summaries without Slurm: `hyperanalyze sweep` on fake run directories (job.json +
# metrics.jsonl) including every error case, analysis/plot_sweep.py on its CSV, and the sweep
# description reader slurm/sweep.py (valid and invalid sweeps).
set -u
cd "$(dirname "$0")/.."
BIN=./hyperanalyze
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
T=$(mktemp -d /tmp/ht_sweep_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0; passes=0
pass() { passes=$((passes+1)); echo "  PASS $*"; }
fail() { fails=$((fails+1)); echo "  FAIL $*"; }
# expect_fail NAME STATUS PATTERN CMD...: exit status STATUS and stderr matching PATTERN
expect_fail() {
  local name=$1 want=$2 pat=$3; shift 3
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -ne "$want" ]; then fail "$name: exit status $rc, expected $want"; sed 's/^/      /' "$T/err" | head -3; return; fi
  if grep -qE -- "$pat" "$T/err"; then pass "$name: $(grep -m1 -E 'error' "$T/err" | cut -c1-160)"
  else fail "$name: message does not match /$pat/:"; sed 's/^/      /' "$T/err" | head -5; fi
}
[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }

# mkrun DIR LAMBDA: a run directory as hypertrain leaves it (two validations; the last one counts)
mkrun() {
  mkdir -p "$1"
  printf '{\n  "name": "fake",\n  "steps": 30,\n  "lambda": %s,\n  "target": {"classes": 10}\n}\n' "$2" > "$1/job.json"
  local a=$3
  cat > "$1/metrics.jsonl" <<EOF
{"type":"train","step":1,"loss":1,"ce":2.3,"entropy":5,"acc":0.1,"grad_norm":1,"lr":0.0003,"lambda":$2,"steps_per_s":10}
{"type":"val","step":10,"networks":8,"images":100,"mean_acc":0.111,"std_acc":0.01,"min_acc":0.1,"max_acc":0.12,"majority_acc":0.2,"mean_prob_acc":0.21,"mean_nll":2.2,"entropy":3.5,"hist":[1,2],"seconds":0.1}
{"type":"train","step":20,"loss":1,"ce":2.3,"entropy":5,"acc":0.1,"grad_norm":1,"lr":0.0003,"lambda":$2,"steps_per_s":10}
{"type":"val","step":20,"networks":8,"images":100,"mean_acc":$a,"std_acc":0.05,"min_acc":0.1,"max_acc":0.9,"majority_acc":0.$((${a#0.} + 1)),"mean_prob_acc":0.66,"mean_nll":1.25,"entropy":-42.5,"hist":[1,2],"seconds":0.1}
{"type":"train","step":25,"loss":1,"ce":2.3,"entropy":5,"acc":0.1,"grad_norm":1,"lr":0.0003,"lambda":$2,"steps_per_s":10}
EOF
}

echo "summary of three runs (given out of order)"
mkrun "$T/s/0-lambda100000" 1e5 0.5
mkrun "$T/s/1-lambda10" 10 0.7
mkrun "$T/s/2-lambda1000" 1000.0 0.6
if $BIN sweep --csv "$T/sum.csv" --md "$T/sum.md" "$T/s/0-lambda100000" "$T/s/1-lambda10/" "$T/s/2-lambda1000" >"$T/table" 2>"$T/err"; then
  pass "exit 0"; else fail "exit status $?: $(cat "$T/err")"; fi
[ "$(head -1 "$T/sum.csv")" = "run,lambda,job_steps,step,val_step,mean_acc,std_acc,majority_acc,mean_prob_acc,mean_nll,entropy" ] \
  && pass "CSV header" || fail "CSV header: $(head -1 "$T/sum.csv")"
[ "$(tail -n +2 "$T/sum.csv" | cut -d, -f2 | tr '\n' ' ')" = "10 1000 100000 " ] && pass "rows sorted by lambda (10 1000 100000)" \
  || fail "order: $(tail -n +2 "$T/sum.csv" | cut -d, -f2 | tr '\n' ' ')"
grep -qx "$T/s/1-lambda10,10,30,25,20,0.7,0.05,0.8,0.66,1.25,-42.5" "$T/sum.csv" \
  && pass "last validation line and last train step reported (trailing / dropped)" || fail "row: $(grep lambda10, "$T/sum.csv")"
[ "$(grep -c '^| ' "$T/sum.md")" -eq 4 ] && grep -q '^|---|---:' "$T/sum.md" && grep -q "| $T/s/2-lambda1000 | 1000 | 30 | 25 | 20 | 0.6000 |" "$T/sum.md" \
  && pass "Markdown table: header, rule, 3 rows" || { fail "Markdown table:"; cat "$T/sum.md"; }
[ "$(wc -l < "$T/table")" -eq 4 ] && grep -q "mean_acc" "$T/table" && pass "text table on stdout" || fail "stdout table: $(cat "$T/table")"
$BIN sweep --csv - "$T/s"/* > "$T/stdout.csv" 2>/dev/null && cmp -s "$T/stdout.csv" "$T/sum.csv" \
  && pass "--csv - writes the same CSV to stdout (and no text table)" || fail "--csv -"

echo "a partial last line (run killed while writing) is ignored with a warning"
cp -r "$T/s/1-lambda10" "$T/partial"
printf '{"type":"val","step":30,"mean_a' >> "$T/partial/metrics.jsonl"
$BIN sweep --csv - "$T/partial" >"$T/out" 2>"$T/err" && grep -q ",0.7,0.05," "$T/out" && grep -q "incomplete last line" "$T/err" \
  && pass "$(head -1 "$T/err" | cut -c1-120)" || fail "partial last line: $(cat "$T/err")"

echo "errors: exit status and a message naming the file"
mkdir -p "$T/nojob" "$T/badjob" "$T/nolambda" "$T/nometrics" "$T/noval" "$T/badline" "$T/toy"
cp "$T/s/1-lambda10/metrics.jsonl" "$T/nojob/"
printf '{"lambda": 10,' > "$T/badjob/job.json"; cp "$T/s/1-lambda10/metrics.jsonl" "$T/badjob/"
printf '{"steps": 10}\n' > "$T/nolambda/job.json"; cp "$T/s/1-lambda10/metrics.jsonl" "$T/nolambda/"
cp "$T/s/1-lambda10/job.json" "$T/nometrics/"
cp "$T/s/1-lambda10/job.json" "$T/noval/"; grep '"train"' "$T/s/1-lambda10/metrics.jsonl" > "$T/noval/metrics.jsonl"
cp "$T/s/1-lambda10/job.json" "$T/badline/"; { head -2 "$T/s/1-lambda10/metrics.jsonl"; echo '{"type":"train",'; tail -1 "$T/s/1-lambda10/metrics.jsonl"; } > "$T/badline/metrics.jsonl"
cp "$T/s/1-lambda10/job.json" "$T/toy/"
echo '{"type":"val","step":5,"points":200,"mean_nll":1.5,"mean_density":0.2,"entropy":1.1,"seconds":0.01}' > "$T/toy/metrics.jsonl"
touch "$T/file"
expect_fail "missing run directory" 1 "run directory '$T/missing': does not exist" $BIN sweep "$T/s/1-lambda10" "$T/missing"
expect_fail "a file, not a directory" 1 "'$T/file' is not a directory" $BIN sweep "$T/file"
expect_fail "no job.json" 1 "$T/nojob/job.json does not exist" $BIN sweep "$T/nojob"
expect_fail "invalid job.json" 1 "$T/badjob/job.json .*invalid JSON" $BIN sweep "$T/badjob"
expect_fail "job.json without lambda" 1 "$T/nolambda/job.json has no numeric \"lambda\"" $BIN sweep "$T/nolambda"
expect_fail "no metrics.jsonl" 1 "$T/nometrics/metrics.jsonl does not exist" $BIN sweep "$T/nometrics"
expect_fail "no validation line" 1 "$T/noval/metrics.jsonl has no validation line" $BIN sweep "$T/noval"
expect_fail "invalid line in the middle" 1 "$T/badline/metrics.jsonl:3: invalid JSON" $BIN sweep "$T/badline"
expect_fail "toy run (no mean_acc)" 1 "$T/toy/metrics.jsonl:1: .*mean_acc" $BIN sweep "$T/toy"
expect_fail "no run directories" 2 "no run directories" $BIN sweep --csv "$T/x.csv"
expect_fail "unknown option" 2 "unknown option '--frobnicate'" $BIN sweep --frobnicate "$T/s"
expect_fail "--csv without a file" 2 "--csv needs a file" $BIN sweep "$T/s/1-lambda10" --csv
expect_fail "unknown command" 2 "unknown command 'frobnicate'" $BIN frobnicate
rm -f "$T/err.csv"
$BIN sweep --csv "$T/err.csv" "$T/s/1-lambda10" "$T/noval" >/dev/null 2>&1
[ ! -e "$T/err.csv" ] && pass "nothing written when a run fails" || fail "CSV written despite an error"
expect_fail "--keep-going: reports, leaves out, exit 1" 1 "noval/metrics.jsonl has no validation line.*left out" \
  $BIN sweep --keep-going --csv "$T/kg.csv" "$T/s/1-lambda10" "$T/noval" "$T/s/2-lambda1000"
[ "$(wc -l < "$T/kg.csv")" -eq 3 ] && pass "--keep-going: the 2 good runs written" || fail "--keep-going CSV: $(cat "$T/kg.csv")"
$BIN sweep --help | grep -q -- "--keep-going" && $BIN --help | grep -q "sweep" && pass "--help lists the command and its options" || fail "--help"

echo "plot_sweep.py"
if $PY -c 'import matplotlib' 2>/dev/null; then
  if $PY analysis/plot_sweep.py "$T/sum.csv" -o "$T/sum.png" >"$T/out" 2>&1 && [ "$(head -c 8 "$T/sum.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
    pass "PNG written: $(cat "$T/out")"; else fail "plot: $(cat "$T/out")"; fi
  expect_fail "plot: not a summary CSV" 1 "no column" $PY analysis/plot_sweep.py "$T/s/1-lambda10/job.json"
else
  echo "  SKIPPED (no matplotlib in $PY): plot_sweep.py"
fi

echo "slurm/sweep.py: the sweep description"
$PY slurm/sweep.py check slurm/sweeps/lambda.json >"$T/out" 2>&1 && pass "slurm/sweeps/lambda.json is valid: $(head -1 "$T/out")" || fail "example sweep: $(cat "$T/out")"
cat > "$T/sw.json" <<'EOF'
{"name": "t", "job": "jobs/tiny.json", "lambda": [10, 1e3, 2.5e-5, 1e6],
 "set": {"steps": 6, "data": {"train": 1000}, "data.dir": "/x y"}, "runs_dir": "/tmp/r"}
EOF
[ "$($PY slurm/sweep.py count "$T/sw.json")" = 4 ] && pass "count" || fail "count"
[ "$($PY slurm/sweep.py dirs "$T/sw.json" | tr '\n' ' ')" = "/tmp/r/t/0-lambda10 /tmp/r/t/1-lambda1000 /tmp/r/t/2-lambda2.5e-5 /tmp/r/t/3-lambda1e6 " ] \
  && pass "run directories <runs_dir>/<name>/<task>-lambda<value>" || fail "dirs: $($PY slurm/sweep.py dirs "$T/sw.json" | tr '\n' ' ')"
mapfile -t task < <($PY slurm/sweep.py task "$T/sw.json" 2)
[ "${task[*]}" = "/tmp/r/t/2-lambda2.5e-5 jobs/tiny.json --set steps=6 --set data.train=1000 --set data.dir=/x y --set lambda=2.5e-05" ] \
  && pass "task 2: run directory, job file, flattened --set, lambda last" || fail "task 2: ${task[*]}"
expect_fail "task index past the end" 1 "task 4 does not exist.*--array=0-3" $PY slurm/sweep.py task "$T/sw.json" 4
printf '{"job": "jobs/tiny.json", "lambda": [1, -2]}' > "$T/neg.json"
expect_fail "negative lambda" 1 'neg.json: key "lambda"\[1\]: expected a number > 0' $PY slurm/sweep.py count "$T/neg.json"
printf '{"job": "jobs/tiny.json", "lamda": [1]}' > "$T/typo.json"
expect_fail "unknown key" 1 'typo.json: unknown key "lamda"' $PY slurm/sweep.py count "$T/typo.json"
printf '{"job": "jobs/tiny.json", "lambda": [1], "set": {"lambda": 3}}' > "$T/dup.json"
expect_fail "lambda in set" 1 '"lambda" is the swept key' $PY slurm/sweep.py count "$T/dup.json"
printf '{"job": "jobs/tiny.json", "lambda": [1],}' > "$T/bad.json"
expect_fail "invalid JSON" 1 'bad.json: invalid JSON at line 1' $PY slurm/sweep.py count "$T/bad.json"
printf '{"job": "jobs/nope.json", "lambda": [1]}' > "$T/nojob.json"
expect_fail "missing job file (check)" 1 'job file "jobs/nope.json" not found' $PY slurm/sweep.py check "$T/nojob.json"
expect_fail "missing sweep file" 1 'nope.json: cannot read' $PY slurm/sweep.py count "$T/nope.json"

echo "t_sweep: $passes passed, $fails failed"
[ $fails -eq 0 ] && [ $passes -gt 0 ]
