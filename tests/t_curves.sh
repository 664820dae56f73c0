#!/usr/bin/env bash
# analysis/plot_curves.py (training curves from metrics.jsonl) on two short runs of the tiny job
# (seeds 1 and 2) on synthetic MNIST-format images (tests/synthetic_mnist.sh): it needs no data,
# so every check runs anywhere.
#   1. two runs on one figure: exit 0; a PNG of the documented size with both runs' colours drawn
#      (not a blank figure); default legend labels from job.json (name, seed, λ), never a path;
#      RUN_DIR:LABEL labels; --smooth;
#   2. bad input, each exit 1 with one line naming the problem: a missing run, a run without
#      metrics.jsonl, a line that is not JSON, a train line without "ce", a non-finite value, a run
#      without training lines, a toy-task run, an output that is not .png, an output that cannot be
#      written; no PNG is left behind by a failed call.
# Prints PASS/FAIL lines; exits non-zero on any failure. Binary: ./hypertrain (HT_BIN).
set -u
cd "$(dirname "$0")/.."
BIN=${HT_BIN:-./hypertrain}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
PLOT=analysis/plot_curves.py
fails=0; passes=0
pass() { passes=$((passes+1)); echo "  PASS $*"; }
fail() { fails=$((fails+1)); echo "  FAIL $*"; }
T=$(mktemp -d /tmp/ht_curves_XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1

[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }
"$PY" -c 'import matplotlib' 2>/dev/null || { echo "FAIL: $PY has no matplotlib (scripts/setup.sh installs python3-matplotlib)"; exit 1; }
bash tests/synthetic_mnist.sh "$T/data" || { echo "FAIL: tests/synthetic_mnist.sh"; exit 1; }

echo "two short runs of jobs/tiny.json on synthetic images"
for s in 1 2; do
  if "$BIN" jobs/tiny.json --out "$T/run$s" --quiet --data "$T/data" --set data.verify=false \
       --set seed=$s --set steps=12 --set log_every=2 --set val_every=4 >"$T/train$s.log" 2>&1; then
    pass "run seed $s: $(grep -c '"type":"train"' "$T/run$s/metrics.jsonl") train and $(grep -c '"type":"val"' "$T/run$s/metrics.jsonl") val lines"
  else
    fail "run seed $s:"; tail -5 "$T/train$s.log" | sed 's/^/      /'
  fi
done

echo "the figure"
out=$("$PY" "$PLOT" "$T/run1" "$T/run2" -o "$T/both.png" --title "two seeds" 2>&1); rc=$?
[ $rc -eq 0 ] && pass "two runs: exit 0: $out" || fail "two runs: exit $rc: $out"
# PNG signature, 1980 x 880 pixels (18 x 8 in at 110 dpi), and both runs' colours (C0, C1) drawn
# on a figure that is not mostly blank.
chk=$("$PY" - "$T/both.png" <<'EOF' 2>&1
import struct, sys
import matplotlib.image as mpimg
p = sys.argv[1]
head = open(p, "rb").read(24)
if head[:8] != b"\x89PNG\r\n\x1a\n":
    print("not a PNG"); sys.exit(1)
w, h = struct.unpack(">II", head[16:24])
img = mpimg.imread(p)[..., :3]
nonwhite = float((img.min(axis=2) < 0.95).mean())
def has(rgb):
    c = [v / 255 for v in rgb]
    return int((abs(img - c).max(axis=2) < 0.02).sum())
c0, c1 = has((31, 119, 180)), has((255, 127, 14))
print(f"{w}x{h}, {100 * nonwhite:.1f}% non-white, {c0} px of run 1's colour, {c1} px of run 2's")
sys.exit(0 if (w, h) == (1980, 880) and nonwhite > 0.03 and c0 > 500 and c1 > 500 else 1)
EOF
)
[ $? -eq 0 ] && pass "PNG: $chk" || fail "PNG: $chk"
case $out in
  *"tiny seed 1 λ=1e3"*"tiny seed 2 λ=1e3"*) pass "default labels from job.json: tiny seed 1/2 λ=1e3" ;;
  *) fail "default labels: $out" ;;
esac
labels=${out#*run(s): }; labels=${labels%%;*}   # the legend's labels, as printed
case $labels in *"$T"*|*/*) fail "a label holds a path: $labels" ;; *) pass "no path in the labels: $labels" ;; esac
out=$("$PY" "$PLOT" "$T/run1:λ=1e3: first" "$T/run2:second" --smooth 3 -o "$T/labels.png" 2>&1)
case $out in
  *"wrote $T/labels.png"*"λ=1e3: first, second;"*) [ -s "$T/labels.png" ] && pass "RUN_DIR:LABEL (a label may hold ':'), --smooth 3: $out" || fail "no PNG: $out" ;;
  *) fail "RUN_DIR:LABEL: $out" ;;
esac

echo "bad input (exit 1, one line, no PNG written)"
# expect_fail NAME PATTERN ARGS...
expect_fail() {
  local name=$1 pat=$2; shift 2
  rm -f "$T/bad.png"
  "$PY" "$PLOT" "$@" >"$T/out" 2>"$T/err"; local rc=$?
  local lines; lines=$(wc -l <"$T/err")
  if [ $rc -ne 1 ]; then fail "$name: exit $rc (expected 1): $(head -3 "$T/err")"
  elif ! grep -qE -- "$pat" "$T/err"; then fail "$name: message does not match /$pat/: $(head -3 "$T/err")"
  elif [ "$lines" -ne 1 ]; then fail "$name: $lines lines on stderr: $(head -3 "$T/err")"
  elif [ -e "$T/bad.png" ]; then fail "$name: a PNG was written"
  else pass "$name: $(cat "$T/err")"; fi
}
mkbad() { # mkbad NAME: a run directory with run1's job.json and the metrics given on stdin
  mkdir -p "$T/$1"; cp "$T/run1/job.json" "$T/$1/"; cat >"$T/$1/metrics.jsonl"
}
expect_fail "missing run" "no such run directory" "$T/run1" "$T/nope" -o "$T/bad.png"
mkdir -p "$T/empty-dir"
expect_fail "no metrics.jsonl" "empty-dir/metrics.jsonl: cannot read" "$T/empty-dir" -o "$T/bad.png"
{ head -2 "$T/run1/metrics.jsonl"; echo '{"type":"train","step":'; } | mkbad not-json
expect_fail "line not JSON" "not-json/metrics.jsonl:3: not JSON" "$T/not-json" -o "$T/bad.png"
echo '{"type":"train","step":2,"loss":1.5,"entropy":2,"acc":0.1}' | mkbad no-ce
expect_fail "train line without ce" "no-ce/metrics.jsonl:1: train line without \"ce\"" "$T/no-ce" -o "$T/bad.png"
echo '{"type":"train","step":2,"loss":NaN,"ce":2,"entropy":2,"acc":0.1}' | mkbad nan
expect_fail "non-finite value" "nan/metrics.jsonl:1: \"loss\" is NaN, expected a finite number" "$T/nan" -o "$T/bad.png"
grep '"type":"val"' "$T/run1/metrics.jsonl" | mkbad val-only
expect_fail "no training lines" "val-only/metrics.jsonl: no training lines" "$T/val-only" -o "$T/bad.png"
echo '{"type":"val","step":10,"points":200,"mean_nll":1.2,"mean_density":0.3,"entropy":1.1,"seconds":0.1}' | mkbad toy
expect_fail "toy-task run" "toy-task run" "$T/toy" -o "$T/bad.png"
mkdir -p "$T/no-job"; cp "$T/run1/metrics.jsonl" "$T/no-job/"
expect_fail "no job.json and no label" "no-job/job.json: cannot read.*RUN_DIR:LABEL" "$T/no-job" -o "$T/bad.png"
expect_fail "output not .png" "expected a .png file name" "$T/run1" -o "$T/bad.pdf"
expect_fail "output not writable" "cannot write $T/no/such/dir/x.png" "$T/run1" -o "$T/no/such/dir/x.png"
expect_fail "empty label" "empty label" "$T/run1:" -o "$T/bad.png"

echo "t_curves: $passes passed, $fails failed"
[ $fails -eq 0 ]
