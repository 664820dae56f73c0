#!/usr/bin/env bash
# The job key data.dataset and Fashion-MNIST (docs/data.md):
#   1. without any data (synthetic MNIST-format images, tests/synthetic_mnist.sh): --print-job of
#      jobs/fashion-mnist.json shows "dataset": "fashion-mnist"; a bad value is one line naming the
#      key and the allowed values; the Fashion-MNIST job on files that are not Fashion-MNIST fails
#      with its checksum error and writes no job.json or checkpoint; a checkpoint and job.json
#      written before the key existed (the "dataset" line removed) resume bit for bit, as MNIST,
#      without the "job differs" note;
#   2. with Fashion-MNIST (Debian's dataset-fashion-mnist, in $HYPERTRAIN_TEST_FASHION or
#      /usr/share/datasets/fashion-mnist; scripts/setup.sh and CI install it): 100 steps of
#      jobs/fashion-mnist.json (the paper's model) train well above chance (validation accuracy of
#      single networks and of the ensemble); `hypertrain sample` and `hyperanalyze accuracy`
#      evaluate on Fashion-MNIST's test split because the checkpoint's job names it.
# Prints PASS/FAIL lines; exits non-zero on any failure. Binaries: ./hypertrain, ./hyperanalyze.
set -u
cd "$(dirname "$0")/.."
FASHION=${HYPERTRAIN_TEST_FASHION:-/usr/share/datasets/fashion-mnist}
. tests/lib.sh
lib_init fashion 1
bash tests/synthetic_mnist.sh "$T/synth" || { echo "FAIL: tests/synthetic_mnist.sh"; exit 1; }

# expect_fail NAME PATTERN CMD...: exit 1 and one stderr line matching PATTERN
expect_fail() {
  local name=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -ne 1 ]; then fail "$name: exit $rc (expected 1): $(head -3 "$T/err")"
  elif ! grep -qE -- "$pat" "$T/err"; then fail "$name: message does not match /$pat/: $(head -3 "$T/err")"
  elif [ "$(wc -l <"$T/err")" -ne 1 ]; then fail "$name: $(wc -l <"$T/err") lines on stderr: $(head -3 "$T/err")"
  else pass "$name: $(cut -c1-220 "$T/err")"; fi
}

echo "the job key (no data needed)"
if "$BIN" jobs/fashion-mnist.json --print-job >"$T/print" 2>&1 && grep -q '"dataset": "fashion-mnist"' "$T/print"; then
  pass "--print-job jobs/fashion-mnist.json shows \"dataset\": \"fashion-mnist\""
else fail "--print-job: $(grep -m3 -E 'dataset|error' "$T/print")"; fi
"$BIN" --print-job >"$T/print" 2>&1 && grep -q '"dataset": "mnist"' "$T/print" && pass "the default job shows \"dataset\": \"mnist\"" || fail "default job: no \"dataset\": \"mnist\""
expect_fail "bad data set" '--set: key "data.dataset": expected one of "mnist" or "fashion-mnist", got "cifar10"' \
  "$BIN" --print-job --set data.dataset=cifar10
expect_fail "Fashion-MNIST job on other files" "synth/train-images-idx3-ubyte': SHA-256 .* expected c59f468a.*not the original Fashion-MNIST" \
  "$BIN" jobs/fashion-mnist.json --data "$T/synth" --out "$T/wrong" --quiet
[ ! -e "$T/wrong/job.json" ] && [ -z "$(ls "$T/wrong" 2>/dev/null | grep ckpt_)" ] && pass "nothing written in the run directory" || fail "files written: $(ls "$T/wrong")"

echo "a checkpoint from before data.dataset resumes bit for bit (synthetic images)"
TINY=(jobs/tiny.json --data "$T/synth" --set data.verify=false --set steps=4 --set checkpoint_every=2 --set keep_checkpoints=4 --quiet)
"$BIN" "${TINY[@]}" --out "$T/a" >"$T/a.log" 2>&1 || { fail "4-step run: $(tail -3 "$T/a.log")"; }
mkdir -p "$T/old"
cp "$T/a/ckpt_00000002.h5" "$T/old/"
grep -v '"dataset": "mnist",' "$T/a/job.json" >"$T/old/job.json"
"$PY" - "$T/old/ckpt_00000002.h5" <<'EOF' >"$T/strip.log" 2>&1
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    job = f.attrs["job"]
    lines = [l for l in job.split("\n") if l.strip() != '"dataset": "mnist",']
    assert len(lines) == len(job.split("\n")) - 1, "no dataset line in the stored job"
    f.attrs["job"] = "\n".join(lines)
    print("stripped")
EOF
if grep -q stripped "$T/strip.log" && ! grep -q dataset "$T/old/job.json"; then
  pass "checkpoint's stored job and job.json without the dataset line (as written before the key)"
else fail "could not make the old checkpoint: $(cat "$T/strip.log")"; fi
# --resume without a job file takes the job from the run directory's job.json (the old one)
"$BIN" --data "$T/synth" --set data.verify=false --out "$T/old" --resume --quiet >"$T/old.log" 2>&1
if [ -f "$T/old/ckpt_00000004.h5" ] &&
   h5diff "$T/a/ckpt_00000004.h5" "$T/old/ckpt_00000004.h5" /params /params >/dev/null 2>&1 &&
   h5diff "$T/a/ckpt_00000004.h5" "$T/old/ckpt_00000004.h5" /adam /adam >/dev/null 2>&1 &&
   h5diff "$T/a/ckpt_00000004.h5" "$T/old/ckpt_00000004.h5" /bn_running /bn_running >/dev/null 2>&1; then
  pass "resumed from the old checkpoint: step 4 parameters, Adam state and running stats identical (h5diff, exact)"
else fail "old checkpoint resume differs or failed: $(tail -3 "$T/old.log")"; fi
grep -q "resumed from .*ckpt_00000002.h5 at step 2" "$T/old.log" && ! grep -q "job differs" "$T/old.log" \
  && pass "resumed at step 2 with no \"job differs\" note (a missing key means its default)" || fail "resume log: $(cat "$T/old.log" | head -5)"
grep -q '"dataset": "mnist"' "$T/old/job.json" && pass "job.json rewritten with \"dataset\": \"mnist\"" || fail "job.json lacks the key"

echo "Fashion-MNIST"
if [ ! -d "$FASHION" ]; then
  echo "  SKIPPED (no Fashion-MNIST in $FASHION: apt-get install dataset-fashion-mnist): 100 training steps on Fashion-MNIST and its analyses"
else
  "$BIN" jobs/fashion-mnist.json --data "$FASHION" --out "$T/f" --quiet --set steps=100 --set val_every=100 \
    --set val_samples=50 --set val_images=1000 --set log_every=10 >"$T/f.log" 2>&1 || fail "training: $(tail -3 "$T/f.log")"
  grep -q "^data: Fashion-MNIST from $FASHION (55000 train, 5000 validation, 10000 test)" "$T/f.log" \
    && pass "$(grep -m1 '^data:' "$T/f.log")" || fail "data line: $(grep -m1 -E '^data|error' "$T/f.log")"
  grep -q '"dataset": "fashion-mnist"' "$T/f/job.json" && pass "job.json names the data set" || fail "job.json"
  val=$("$PY" - "$T/f/metrics.jsonl" <<'EOF'
import json, sys
v = [json.loads(l) for l in open(sys.argv[1]) if '"type":"val"' in l][-1]
t = [json.loads(l) for l in open(sys.argv[1]) if '"type":"train"' in l][-1]
print(f"step {v['step']}: validation mean {v['mean_acc']:.3f} (std {v['std_acc']:.3f}), majority {v['majority_acc']:.3f}, "
      f"mean-prob {v['mean_prob_acc']:.3f}; training acc {t['acc']:.3f}, ce {t['ce']:.3f} (chance 0.1, ln 10 = 2.303)")
sys.exit(0 if v["step"] == 100 and v["mean_acc"] > 0.25 and v["mean_prob_acc"] > 0.3 and t["ce"] < 2.0 else 1)
EOF
)
  [ $? -eq 0 ] && pass "trains well above chance: $val" || fail "does not train: $val"
  # The analyses load the data set the checkpoint's job names (no --data: the job's default
  # directory, Fashion-MNIST's); the test split of Fashion-MNIST, not MNIST's.
  if "$BIN" sample --checkpoint "$T/f/ckpt_00000100.h5" --count 32 --out "$T/s.h5" --quiet >"$T/s.log" 2>&1 &&
     "$HA" accuracy "$T/s.h5" --split test --images 1000 --out "$T/acc.h5" >"$T/acc.log" 2>&1; then
    mean=$("$PY" -c 'import h5py,sys; a = h5py.File(sys.argv[1], "r")["accuracy"][:]; print("%.3f" % a.mean())' "$T/acc.h5" 2>&1)
    "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0.25 else 1)' "$mean" 2>/dev/null \
      && pass "hyperanalyze accuracy of 32 sampled networks on Fashion-MNIST's test split (from the job): mean $mean" \
      || fail "accuracy on the test split: mean $mean (MNIST loaded instead?): $(head -3 "$T/acc.log")"
  else fail "sample/accuracy: $(tail -n 2 "$T/s.log" "$T/acc.log" 2>&1)"; fi
  # ood on a Fashion-MNIST set: in-distribution Fashion-MNIST's test images, default outliers
  # MNIST's (the other data set), named in the result file
  if [ -f "$T/s.h5" ] && "$HA" ood "$T/s.h5" --members 4 --images 200 --out "$T/ood.h5" >"$T/ood.log" 2>&1; then
    got=$("$PY" - "$T/ood.h5" <<'EOF'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
ind, out = f.attrs["in_distribution"], f.attrs["outliers"]
ind = ind.decode() if isinstance(ind, bytes) else ind
out = out.decode() if isinstance(out, bytes) else out
print(f"in_distribution '{ind}', outliers '{out}'")
sys.exit(0 if ind == "Fashion-MNIST test" and "fashion" not in out.lower() and "t10k-images" in out else 1)
EOF
)
    [ $? -eq 0 ] && pass "ood of a Fashion-MNIST set: $got" || fail "ood of a Fashion-MNIST set: $got"
  else fail "ood of a Fashion-MNIST set: $(tail -n 2 "$T/ood.log")"; fi
fi

lib_finish
