#!/usr/bin/env bash
# Command-line tests of ./hypertrain: a smoke run on real MNIST, resume through the CLI (bit for
# bit), and bad input: each must exit non-zero with a clear message and change nothing.
set -u
cd "$(dirname "$0")/.."
BIN=./hypertrain
DATA=../shared/data/mnist
T=$(mktemp -d /tmp/ht_cli_XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0; passes=0
pass() { passes=$((passes+1)); echo "  PASS $*"; }
fail() { fails=$((fails+1)); echo "  FAIL $*"; }
# expect_fail NAME PATTERN CMD...: non-zero exit and stderr matching PATTERN
expect_fail() {
  local name=$1 pat=$2; shift 2
  if "$@" >"$T/out" 2>"$T/err"; then fail "$name: exited 0"; return; fi
  if grep -qE -- "$pat" "$T/err"; then pass "$name: $(grep -m1 -E 'error' "$T/err" | cut -c1-150)"
  else fail "$name: message does not match /$pat/:"; sed 's/^/      /' "$T/err" | head -5; fi
}
same_file() { cmp -s "$1" "$2"; }

[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }

echo "help and job printing"
$BIN --help | grep -q -- "--resume" && pass "--help documents --resume" || fail "--help"
$BIN --print-job | grep -q "633640 trainable" && pass "--print-job: 633,640 parameters" || fail "--print-job counts"
$BIN --print-job | grep -q "20018 weights" && pass "--print-job: 20,018 target weights" || fail "--print-job target"

echo "job input errors"
printf '{ "lr": 0.1, }' > "$T/malformed.json"
expect_fail "malformed JSON" "malformed.json" $BIN "$T/malformed.json" --print-job
printf '{ "learning_rate": 0.1 }' > "$T/unknown.json"
expect_fail "unknown key" "learning_rate" $BIN "$T/unknown.json" --print-job
printf '{ "steps": "many" }' > "$T/type.json"
expect_fail "wrong type" "steps" $BIN "$T/type.json" --print-job
expect_fail "out-of-range value" "lr" $BIN --set lr=-1 --print-job
expect_fail "missing job file" "nope.json" $BIN "$T/nope.json" --print-job
expect_fail "unknown option" "--frobnicate" $BIN --frobnicate
# cuda_math=tf32 is GPU math: a CPU run refuses it (no silent fp32), and writes no run files
expect_fail "cuda_math=tf32 on the CPU" 'cuda_math: "tf32".*trains on the CPU' $BIN jobs/toy.json --set cuda_math=tf32 --device cpu --out "$T/tf32" --quiet
[ -z "$(ls -A "$T/tf32" 2>/dev/null)" ] && pass "cuda_math=tf32 on the CPU: no file written" || fail "cuda_math=tf32 on the CPU wrote $(ls "$T/tf32")"

# ---- run directories and resume on the toy job (no data needed) ----
TOY=jobs/toy.json
TS="--set checkpoint_every=2 --set keep_checkpoints=5 --set val_every=3 --set log_every=1 --quiet"
strip() { sed 's/,"steps_per_s".*//; s/,"seconds".*//' "$1"; }   # the run-dependent fields
same_state() {   # parameters, Adam state and running stats identical (h5diff, exact)
  for g in params adam bn_running; do h5diff "$1" "$2" /$g /$g >/dev/null 2>&1 || return 1; done
}
echo "toy resume through the CLI: 6 steps == 4 + resume + 2 (killed after step 5), bit for bit"
$BIN $TOY --out "$T/ta" --set steps=6 $TS >/dev/null 2>&1 || fail "toy reference run"
mkdir -p "$T/tb"; cp "$T/ta/job.json" "$T/ta/ckpt_00000002.h5" "$T/ta/ckpt_00000004.h5" "$T/tb/"  # killed after step 5:
grep -v '"step":6,' "$T/ta/metrics.jsonl" > "$T/tb/metrics.jsonl"      # step 5 logged after checkpoint 4,
printf '{"type":"train","step":6,"lo' >> "$T/tb/metrics.jsonl"         # step 6's line cut short by the kill
: > "$T/tb/ckpt_00000006.h5.tmp.999999"                                # a checkpoint being written when killed
$BIN $TOY --out "$T/tb" --resume --set steps=6 $TS >"$T/tb.log" 2>&1
same_state "$T/ta/ckpt_00000006.h5" "$T/tb/ckpt_00000006.h5" && pass "toy: state identical after resume" || fail "toy: resumed state differs"
diff <(strip "$T/ta/metrics.jsonl") <(strip "$T/tb/metrics.jsonl") >/dev/null \
  && pass "toy: metrics truncated to the checkpoint, each step once, identical losses" || fail "toy: metrics differ: $(diff <(strip "$T/ta/metrics.jsonl") <(strip "$T/tb/metrics.jsonl") | head -3)"
[ ! -e "$T/tb/ckpt_00000006.h5.tmp.999999" ] && [ ! -e "$T/tb/.lock" ] && pass "toy: stale temporary file removed, lock file gone at the end" || fail "toy: left: $(ls -a "$T/tb")"
[ "$(ls "$T/ta" | grep -c '^ckpt_')" -eq 3 ] && pass "toy: checkpoints 2, 4, 6 kept (keep_checkpoints=5)" || fail "toy: checkpoints $(ls "$T/ta")"
$BIN $TOY --out "$T/tp" --set steps=6 --set keep_checkpoints=2 $(echo $TS | sed 's/--set keep_checkpoints=5//') >/dev/null 2>&1
[ "$(ls "$T/tp" | grep '^ckpt_' | tr '\n' ' ')" = "ckpt_00000004.h5 ckpt_00000006.h5 " ] && pass "toy: pruning keeps the 2 latest" || fail "toy: pruning: $(ls "$T/tp")"

echo "toy: a finished run resumed again changes nothing"
cp -r "$T/ta" "$T/ta.orig"
$BIN $TOY --out "$T/ta" --resume --set steps=6 $TS >"$T/fin.log" 2>&1 && grep -q "nothing to do" "$T/fin.log" \
  && diff -r "$T/ta" "$T/ta.orig" >/dev/null && pass "toy: finished run: 'nothing to do', no duplicate validation line" || fail "toy: finished run resumed: $(diff -r "$T/ta" "$T/ta.orig" | head -3)"
grep -v '"type":"val","step":6' "$T/ta/metrics.jsonl" > "$T/m" && cp "$T/m" "$T/ta/metrics.jsonl"
$BIN $TOY --out "$T/ta" --resume --set steps=6 $TS >/dev/null 2>&1
diff <(strip "$T/ta/metrics.jsonl") <(strip "$T/ta.orig/metrics.jsonl") >/dev/null && cmp -s "$T/ta/ckpt_00000006.h5" "$T/ta.orig/ckpt_00000006.h5" \
  && pass "toy: a missing final validation is done once, the checkpoint is not rewritten" || fail "toy: final validation"

echo "toy: failed resumes leave the run directory as it was"
cp -r "$T/tb" "$T/tb.orig"
expect_fail "toy: seed mismatch" "seed 1 but the job has seed 7" $BIN $TOY --out "$T/tb" --resume --set steps=8 --set seed=7 $TS
expect_fail "toy: another architecture" "shape|architecture" $BIN $TOY --out "$T/tb" --resume --set steps=8 --set 'toy.hidden=[20,10,10]' $TS
expect_fail "toy: diverging run" "diverged at step 7" $BIN $TOY --out "$T/tb" --resume --set steps=8 --set lambda=1e39 $TS
expect_fail "toy: step beyond the job's steps" "at step 6, beyond the job's steps = 4" $BIN $TOY --out "$T/tb" --resume --set steps=4 $TS
expect_fail "toy: existing run without --resume" "already holds checkpoints" $BIN $TOY --out "$T/tb" --set steps=8 $TS
diff -r "$T/tb" "$T/tb.orig" >/dev/null && pass "toy: job.json, metrics.jsonl and checkpoints unchanged" || fail "toy: files changed: $(diff -r "$T/tb" "$T/tb.orig" | head -3)"
head -c 3000 "$T/tb/ckpt_00000006.h5" > "$T/tcorrupt.h5"
expect_fail "toy: corrupt checkpoint on --resume" "tcorrupt.h5" $BIN $TOY --out "$T/tb" --resume "$T/tcorrupt.h5" --set steps=8 $TS

echo "toy: resuming an older checkpoint: refused, or --branch"
expect_fail "toy: non-latest checkpoint without --branch" "ckpt_00000002.h5' is at step 2 .*newer checkpoint.*ckpt_00000004.h5, ckpt_00000006.h5.*--branch" \
  $BIN $TOY --out "$T/tb" --resume "$T/tb/ckpt_00000002.h5" --set steps=6 $TS
diff -r "$T/tb" "$T/tb.orig" >/dev/null && pass "toy: refused branch changed nothing" || fail "toy: files changed after refusal"
$BIN --out "$T/tb" --resume "$T/tb/ckpt_00000002.h5" --branch --set steps=6 $TS >"$T/br.log" 2>&1 || fail "toy: --branch run failed: $(tail -1 "$T/br.log")"
ab=$(ls -d "$T/tb"/abandoned-2-* 2>/dev/null | head -1)
[ -n "$ab" ] && [ -f "$ab/ckpt_00000004.h5" ] && [ -f "$ab/ckpt_00000006.h5" ] && [ -f "$ab/job.json" ] && cmp -s "$ab/metrics.jsonl" "$T/tb.orig/metrics.jsonl" \
  && pass "toy: --branch moved ckpt 4 and 6 with copies of job.json and metrics.jsonl to $(basename "$ab")" || fail "toy: abandoned folder: $(ls "$T/tb" "$ab" 2>&1 | tr '\n' ' ')"
same_state "$T/ta/ckpt_00000006.h5" "$T/tb/ckpt_00000006.h5" && diff <(strip "$T/ta.orig/metrics.jsonl") <(strip "$T/tb/metrics.jsonl") >/dev/null \
  && pass "toy: the branched run equals an uninterrupted one (state and metrics)" || fail "toy: branched run differs"

echo "toy: --resume arguments and the lock"
$BIN $TOY --out "$T/tc" --set steps=2 $TS >/dev/null 2>&1
$BIN --out "$T/tc" --resume --set steps=4 $TS >"$T/r1.log" 2>&1 && grep -q "resumed from .*tc/ckpt_00000002.h5 at step 2" "$T/r1.log" \
  && pass "--resume followed by an option: the latest checkpoint" || fail "--resume then option"
cp "$T/tc/ckpt_00000004.h5" "$T/tc-4.ckpt"
$BIN --out "$T/tc" --resume "$T/tc-4.ckpt" --set steps=6 $TS >"$T/r2.log" 2>&1 && grep -q "resumed from .*tc-4.ckpt at step 4" "$T/r2.log" \
  && pass "--resume PATH of any name (not only *.h5)" || fail "--resume PATH: $(tail -1 "$T/r2.log")"
$BIN --out "$T/tc" --resume="$T/tc-4.ckpt" --branch --set steps=6 $TS >"$T/r3.log" 2>&1 && grep -q "resumed from .*tc-4.ckpt at step 4" "$T/r3.log" \
  && pass "--resume=PATH" || fail "--resume=PATH: $(tail -1 "$T/r3.log")"
$BIN --out "$T/tc" --resume $TOY --set steps=8 $TS >"$T/r4.log" 2>&1 && grep -q "resumed from .*tc/ckpt_00000006.h5 at step 6" "$T/r4.log" \
  && pass "--resume JOB.json: the job file, and the latest checkpoint" || fail "--resume JOB.json: $(tail -1 "$T/r4.log")"
expect_fail "--resume of a missing path" "checkpoint '.*nope.h5' does not exist" $BIN --out "$T/tc" --resume "$T/nope.h5" $TS
( exec 9>>"$T/tc/.lock"; flock -n 9 && printf 'pid %d on host test since now\n' $BASHPID >&9 && sleep 10 ) & holder=$!
for _ in $(seq 1 50); do [ -s "$T/tc/.lock" ] && break; sleep 0.1; done
expect_fail "locked run directory" "in use by another run \(pid [0-9]+ on host test" $BIN --out "$T/tc" --resume --set steps=10 $TS
kill $holder 2>/dev/null; wait $holder 2>/dev/null
expect_fail "--out too long" "too long" $BIN $TOY --out "$T/$(printf 'd%.0s' $(seq 1 1000))" $TS
mkdir -p "$T/full"; ln -s /dev/full "$T/full/metrics.jsonl"
expect_fail "metrics write error (disk full)" "cannot write '.*full/metrics.jsonl': No space left" $BIN $TOY --out "$T/full" --set steps=2 $TS
touch "$T/afile"
expect_fail "toy: --out under a file" "afile" $BIN $TOY --out "$T/afile/run" $TS
expect_fail "toy: --out is a file" "afile' exists and is not a directory" $BIN $TOY --out "$T/afile" $TS

echo "toy: SIGUSR1 checkpoints after the current step and exits 75; --resume continues"
$BIN $TOY --out "$T/ts" $TS --set steps=10000000 --set val_every=0 --set checkpoint_every=0 >"$T/ts.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q '"step":2,' "$T/ts/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
kill -USR1 $pid; wait $pid; rc=$?
[ $rc -eq 75 ] && pass "toy: exit status 75 after SIGUSR1" || fail "toy: exit status $rc after SIGUSR1"
ck=$(ls "$T/ts" | grep '^ckpt_' | head -1)
[ -n "$ck" ] && [ ! -e "$T/ts/.lock" ] && pass "toy: $ck written on the signal, lock released" || fail "toy: after the signal: $(ls -a "$T/ts")"
n=$((10#$(echo "$ck" | sed "s/ckpt_\([0-9]*\)\.h5/\1/")))
$BIN --out "$T/ts" --resume --set steps=$((n + 2)) >"$T/ts2.log" 2>&1 && grep -q "resumed from .*$ck at step $n" "$T/ts2.log" \
  && [ "$(grep -c "\"step\":$n," "$T/ts/metrics.jsonl")" -le 1 ] && pass "toy: resumed at step $n and finished" || fail "toy: resume after signal"

if [ ! -d "$DATA" ]; then
  echo "  SKIPPED (no $DATA): runs on real MNIST"
  echo "t_cli: $passes passed, $fails failed"; [ $fails -eq 0 ] && [ $passes -gt 0 ]; exit $?
fi

echo "smoke run on real MNIST"
if $BIN jobs/smoke.json --data "$DATA" --out "$T/a" --quiet >"$T/a.log" 2>&1; then pass "smoke run exits 0"
else fail "smoke run"; tail -5 "$T/a.log"; fi
[ -f "$T/a/ckpt_00000004.h5" ] && [ -f "$T/a/ckpt_00000002.h5" ] && pass "checkpoints at steps 2 and 4" || fail "checkpoints missing: $(ls "$T/a")"
[ "$(grep -c '"type":"train"' "$T/a/metrics.jsonl")" -eq 4 ] && pass "4 train lines in metrics.jsonl" || fail "train lines"
[ "$(grep -c '"type":"val"' "$T/a/metrics.jsonl")" -eq 2 ] && pass "2 validation lines" || fail "val lines"
grep -q '"batch": 4' "$T/a/job.json" && pass "resolved job stored in job.json" || fail "job.json"
python3 - "$T/a/metrics.jsonl" <<'PY' && pass "metrics.jsonl is valid JSON Lines" || fail "metrics.jsonl not JSON"
import json, sys
for line in open(sys.argv[1]): json.loads(line)
PY

echo "resume through the CLI: 4 steps == 2 + resume + 2, bit for bit"
$BIN jobs/smoke.json --data "$DATA" --out "$T/b" --set steps=2 --quiet >/dev/null 2>&1
$BIN jobs/smoke.json --data "$DATA" --out "$T/b" --resume --quiet >"$T/b.log" 2>&1
if h5diff "$T/a/ckpt_00000004.h5" "$T/b/ckpt_00000004.h5" /params /params >/dev/null 2>&1 &&
   h5diff "$T/a/ckpt_00000004.h5" "$T/b/ckpt_00000004.h5" /adam /adam >/dev/null 2>&1 &&
   h5diff "$T/a/ckpt_00000004.h5" "$T/b/ckpt_00000004.h5" /bn_running /bn_running >/dev/null 2>&1; then
  pass "parameters, Adam state and running stats identical (h5diff, exact)"
else fail "resumed run differs"; fi
if diff <(grep '"type":"train"' "$T/a/metrics.jsonl" | sed 's/,"steps_per_s".*//') \
        <(grep '"type":"train"' "$T/b/metrics.jsonl" | sed 's/,"steps_per_s".*//') >/dev/null; then
  pass "logged losses identical, no duplicated lines"
else fail "metrics differ after resume"; fi
grep -q "resumed from .*ckpt_00000002.h5 at step 2" "$T/b.log" && pass "resume message" || fail "resume message"

echo "run-directory and checkpoint errors (nothing overwritten)"
cp "$T/a/ckpt_00000004.h5" "$T/keep.h5"
expect_fail "existing run without --resume" "already holds checkpoints" $BIN jobs/smoke.json --data "$DATA" --out "$T/a" --quiet
same_file "$T/a/ckpt_00000004.h5" "$T/keep.h5" && pass "checkpoint untouched" || fail "checkpoint changed"
mkdir -p "$T/c"; cp "$T/a/ckpt_00000004.h5" "$T/c/ckpt_00000004.h5"; cp "$T/a/job.json" "$T/c/job.json"
head -c 3000 "$T/keep.h5" > "$T/c/ckpt_00000004.h5"; cp "$T/c/ckpt_00000004.h5" "$T/corrupt.h5"
expect_fail "corrupt checkpoint on --resume" "ckpt_00000004.h5" $BIN jobs/smoke.json --data "$DATA" --out "$T/c" --resume --quiet
same_file "$T/c/ckpt_00000004.h5" "$T/corrupt.h5" && [ "$(ls "$T/c" | grep -c ckpt_)" -eq 1 ] && pass "no checkpoint written or replaced" || fail "files changed: $(ls "$T/c")"
expect_fail "checkpoint of another architecture" "shape|architecture" $BIN jobs/smoke.json --data "$DATA" --out "$T/a" --resume --set extractor_hidden=[300,200] --quiet
same_file "$T/a/ckpt_00000004.h5" "$T/keep.h5" && pass "checkpoint untouched" || fail "checkpoint changed"
touch "$T/file"
expect_fail "output directory not writable" "file" $BIN jobs/smoke.json --data "$DATA" --out "$T/file/run" --quiet

echo "data errors"
expect_fail "missing data directory" "does not exist" $BIN jobs/smoke.json --data "$T/nodata" --out "$T/d1" --quiet
mkdir -p "$T/bad"; for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do zcat "$DATA/$f.gz" > "$T/bad/$f"; done
printf '\x07' | dd of="$T/bad/t10k-labels-idx1-ubyte" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_fail "wrong checksum" "t10k-labels.*(checksum|SHA-256)|(checksum|SHA-256).*t10k-labels" $BIN jobs/smoke.json --data "$T/bad" --out "$T/d2" --quiet
zcat "$DATA/t10k-labels-idx1-ubyte.gz" > "$T/bad/t10k-labels-idx1-ubyte"
head -c 100000 "$DATA/t10k-images-idx3-ubyte.gz" > "$T/bad/t10k-images-idx3-ubyte.gz"
expect_fail "truncated .gz" "t10k-images.*(truncated|corrupt)|(truncated|corrupt).*t10k-images" $BIN jobs/smoke.json --data "$T/bad" --out "$T/d3" --quiet
rm "$T/bad/t10k-images-idx3-ubyte.gz"
printf '\x00\x00\x08\x01' | dd of="$T/bad/t10k-images-idx3-ubyte" bs=1 seek=0 conv=notrunc 2>/dev/null
expect_fail "wrong IDX magic" "t10k-images.*magic|magic.*t10k-images" $BIN jobs/smoke.json --data "$T/bad" --out "$T/d4" --quiet --set data.verify=false

echo "divergence: a NaN/Inf step stops the run and keeps the last good checkpoint"
$BIN jobs/smoke.json --data "$DATA" --out "$T/e" --set steps=2 --quiet >/dev/null 2>&1
cp "$T/e/ckpt_00000002.h5" "$T/e2.h5"
expect_fail "diverging run" "diverged at step 3" $BIN jobs/smoke.json --data "$DATA" --out "$T/e" --resume --set lambda=1e39 --quiet
same_file "$T/e/ckpt_00000002.h5" "$T/e2.h5" && [ ! -f "$T/e/ckpt_00000004.h5" ] && [ ! -f "$T/e/ckpt_00000003.h5" ] \
  && pass "ckpt_00000002.h5 kept unchanged, no later checkpoint" || fail "checkpoints after divergence: $(ls "$T/e")"

echo "signals: SIGUSR1 checkpoints after the current step and exits 75; --resume continues"
$BIN jobs/smoke.json --data "$DATA" --out "$T/s" --set steps=100000 --set val_every=0 --set checkpoint_every=0 --quiet >"$T/s.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q '"step":2,' "$T/s/metrics.jsonl" 2>/dev/null && break; sleep 0.2; done
kill -USR1 $pid; wait $pid; rc=$?
[ $rc -eq 75 ] && pass "exit status 75 after SIGUSR1" || fail "exit status $rc after SIGUSR1"
ck=$(ls "$T/s" | grep ckpt_ | head -1)
[ -n "$ck" ] && grep -q "received signal 10: checkpoint written" "$T/s.log" && pass "checkpoint $ck written on the signal" || fail "no checkpoint after signal: $(ls "$T/s")"
n=$((10#$(echo "$ck" | sed "s/ckpt_\([0-9]*\)\.h5/\1/")))
$BIN jobs/smoke.json --data "$DATA" --out "$T/s" --resume --set steps=$((n + 2)) --set val_every=0 --set checkpoint_every=0 --quiet >"$T/s2.log" 2>&1 \
  && grep -q "resumed from .*$ck at step $n" "$T/s2.log" && pass "resumed at step $n and finished" || fail "resume after signal"

echo "t_cli: $passes passed, $fails failed"
[ $fails -eq 0 ] && [ $passes -gt 0 ]
