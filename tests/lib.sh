# tests/lib.sh: the preamble shared by the end-to-end tests of hypertrain sample and hyperanalyze
# (t_sample, t_analysis2, t_adversarial, t_uncert, t_fashion, t_provenance). A test sources it
# from the repository root and calls, in order, what it needs:
#   cd "$(dirname "$0")/.." && . tests/lib.sh
#   lib_init NAME THREADS   BIN, HA (HT_BIN / HA_BIN override), PY (/usr/bin/python3 when present),
#                           pass/fail counters, T = a fresh /tmp/ht_NAME_XXXXXX removed at exit,
#                           OMP_NUM_THREADS=THREADS; fails the test unless both binaries are built
#   lib_data                DATA: real MNIST ($HYPERTRAIN_TEST_DATA, default ../shared/data/mnist),
#                           or synthetic MNIST-format images (tests/synthetic_mnist.sh) with a
#                           SKIPPED line saying so; VERIFY (--set data.verify=false for synthetic
#                           images, else empty), KIND (mnist|synthetic), TINY (jobs/tiny.json, or a
#                           copy with data.verify false, for commands that take a job file)
#   lib_tiny_run [STEPS]    trains jobs/tiny.json for STEPS (default 3) steps into $T/run;
#                           CK = its last checkpoint; returns non-zero (train log in $T/train.log)
#                           when it wrote none
#   lib_sample COUNT OUT    hypertrain sample of COUNT networks of $CK into OUT (quiet)
#   lib_finish              prints "t_NAME: N passed, M failed"; its status is the test's (0 only
#                           when nothing failed and something passed)
# and the helpers pass MSG, fail MSG and run NAME CMD... (exit 0 expected; stdout and stderr kept
# in $T/NAME.out and $T/NAME.err, the last lines of stderr printed on failure).

pass() { passes=$((passes+1)); echo "  PASS $*"; }
fail() { fails=$((fails+1)); echo "  FAIL $*"; }
run() {
  local name=$1; shift
  if "$@" >"$T/$name.out" 2>"$T/$name.err"; then pass "$name runs"
  else fail "$name: exit $?"; sed 's/^/      /' "$T/$name.err" | tail -5; fi
}

lib_init() {
  LIB_NAME=$1
  BIN=${HT_BIN:-./hypertrain}
  HA=${HA_BIN:-./hyperanalyze}
  PY=/usr/bin/python3
  [ -x "$PY" ] || PY=python3
  fails=0; passes=0
  T=$(mktemp -d "/tmp/ht_${1}_XXXXXX")
  trap 'rm -rf "$T"' EXIT
  export OMP_NUM_THREADS=$2
  [ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }
  [ -x "$HA" ] || { echo "FAIL: $HA not built"; exit 1; }
}

lib_data() {
  DATA=${HYPERTRAIN_TEST_DATA:-../shared/data/mnist}
  VERIFY=()
  KIND=mnist
  if [ ! -d "$DATA" ]; then
    echo "  SKIPPED (no MNIST in $DATA): real MNIST; every check below runs on synthetic MNIST-format images (tests/synthetic_mnist.sh)"
    DATA=$T/synthetic-mnist
    bash tests/synthetic_mnist.sh "$DATA" || { echo "FAIL: tests/synthetic_mnist.sh"; exit 1; }
    VERIFY=(--set data.verify=false)
    KIND=synthetic
  fi
  DATA=$(cd "$DATA" && pwd)
  TINY=jobs/tiny.json
  if [ ${#VERIFY[@]} -gt 0 ]; then
    TINY=$T/tiny.json
    "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); j["data"]["verify"] = False; json.dump(j, open(sys.argv[2], "w"))' jobs/tiny.json "$TINY"
  fi
}

lib_tiny_run() {
  local steps=${1:-3}
  "$BIN" jobs/tiny.json --data "$DATA" "${VERIFY[@]}" --out "$T/run" --set steps="$steps" --quiet >"$T/train.log" 2>&1
  CK=$T/run/$(printf 'ckpt_%08d.h5' "$steps")
  [ -f "$CK" ]
}

lib_sample() {
  "$BIN" sample --checkpoint "$CK" --count "$1" --out "$2" --quiet >/dev/null 2>&1
}

lib_finish() {
  echo "t_$LIB_NAME: $passes passed, $fails failed"
  [ "$fails" -eq 0 ] && [ "$passes" -gt 0 ]
}
