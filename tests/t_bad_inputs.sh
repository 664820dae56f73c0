#!/usr/bin/env bash
# The catalogue of bad inputs (tests/bad_inputs/*.sh): every case runs one command that must fail
# with a given exit status and one clear message, and must change no file that existed before it.
#
# A case file defines cases with
#   bad NAME STATUS REGEX -- COMMAND...
# NAME: a short identifier; STATUS: the expected exit status (1 for errors); REGEX: an extended
# regular expression that the command's stderr must match (name the file, key or value and what
# was expected). Case files run in a scratch directory $W (cd'd into it), one after the other, so each uses
# names of its own there; they may prepare files there before calling bad. Available: $HT (./hypertrain), $HA (./hyperanalyze), $ROOT (the
# repository), $DATA (MNIST, may be absent: use need_mnist), make_ckpt DIR (a small valid run
# directory with checkpoints at steps 2 and 4 of the tiny job; needs MNIST).
#
# Rules checked for every case: exit status == STATUS; stderr matches REGEX; stderr holds exactly
# one non-empty line (the message alone: no MPI banner, no usage text unless the case says
# allow_multiline); no file that existed under $W before the command changed or disappeared.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HT="$ROOT/hypertrain"
HA="$ROOT/hyperanalyze"
DATA="${HYPERTRAIN_DATA:-$ROOT/../shared/data/mnist}"
[ -x "$HT" ] && [ -x "$HA" ] || { echo "FAIL: ./hypertrain and ./hyperanalyze must be built"; exit 1; }
W=$(mktemp -d /tmp/ht_bad_XXXXXX)
trap 'rm -rf "$W"' EXIT
passes=0; fails=0; skips=0; multiline_ok=0

snapshot() { (cd "$W" && find . -type f ! -path './.case/*' -print0 | sort -z | xargs -0 -r sha256sum); }
allow_multiline() { multiline_ok=1; }
need_mnist() {
  if [ -d "$DATA" ]; then return 0; fi
  echo "  SKIPPED (no MNIST at $DATA): $1"; skips=$((skips+1)); return 1
}

bad() {
  local name=$1 status=$2 regex=$3; shift 3
  [ "$1" = "--" ] && shift
  mkdir -p "$W/.case"
  local before; before=$(snapshot)
  "$@" >"$W/.case/out" 2>"$W/.case/err" </dev/null
  local rc=$? why=""
  local after; after=$(snapshot)
  local nlines; nlines=$(grep -c . "$W/.case/err")
  if [ "$rc" -ne "$status" ]; then why="exit status $rc, expected $status"
  elif ! grep -qE -- "$regex" "$W/.case/err"; then why="stderr does not match /$regex/"
  elif [ "$multiline_ok" -eq 0 ] && [ "$nlines" -ne 1 ]; then why="stderr has $nlines lines, expected the message alone"
  else
    # every file that existed before must still be there with the same content (new files are
    # allowed: e.g. a lock file, or a run directory a case creates on purpose)
    local lost; lost=$(comm -23 <(echo "$before" | sort) <(echo "$after" | sort) | awk '{print $2}' | tr '\n' ' ')
    [ -n "$lost" ] && why="files changed or removed: $lost"
  fi
  multiline_ok=0
  if [ -z "$why" ]; then passes=$((passes+1)); echo "  PASS $name: $(grep -m1 . "$W/.case/err" | cut -c1-160)"
  else fails=$((fails+1)); echo "  FAIL $name: $why"; sed 's/^/      /' "$W/.case/err" | head -8; fi
}

# A small valid run directory (tiny job, checkpoints at steps 2 and 4) for checkpoint cases.
make_ckpt() {
  local dir=$1
  "$HT" "$ROOT/jobs/tiny.json" --data "$DATA" --out "$dir" --set steps=4 --set checkpoint_every=2 \
     --set keep_checkpoints=5 --set val_every=0 --quiet >/dev/null 2>&1 || { echo "  FAIL make_ckpt $dir"; fails=$((fails+1)); return 1; }
}

for f in tests/bad_inputs/*.sh; do
  [ -f "$f" ] || continue
  echo "$(basename "$f" .sh):"
  (cd "$W" && source "$ROOT/$f"; echo "$passes $fails $skips" > "$W/.case/counts") || true
  read -r passes fails skips < "$W/.case/counts"
done
echo "t_bad_inputs: $passes passed, $fails failed, $skips skipped"
[ "$fails" -eq 0 ] && [ "$passes" -gt 0 ]
