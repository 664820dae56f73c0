#!/usr/bin/env bash
# gpu-carry.sh: prepares the one-command GPU verdict for an offline GPU node (docs/cuda.md).
#   scripts/gpu-carry.sh [MNIST_DIR]     (default: $HYPERTRAIN_DATA, else ../shared/data/mnist)
# Builds the bundle (make CUDA=1 MPI=0 bundle, incremental) and fills build-gpu-carry/ (ignored
# by git through /build-*/) with what the node needs, about 25 MB in all:
#   hypertrain-gpu.tar.xz   the bundle (programs, their libraries, jobs/, run-all.sh, ht-env)
#   mnist/                  the four MNIST files
#   verdict.sh              unpacks the bundle in /tmp and runs its tests/gpu/run-all.sh --out $OUT
# then prints the command. With the workplace's device tool: run(command="bash
# build-gpu-carry/verdict.sh", carry=["build-gpu-carry"], timeout_s=560); $OUT comes back with
# summary.txt, bench.json and logs.tar.gz. Elsewhere: copy build-gpu-carry/ to the node, run
# `OUT=DIR bash build-gpu-carry/verdict.sh` (add --quick for the 3-minute subset).
set -eu
cd "$(dirname "$0")/.."
DATA=${1:-${HYPERTRAIN_DATA:-../shared/data/mnist}}
ls "$DATA"/train-images-idx3-ubyte* >/dev/null 2>&1 || { echo "gpu-carry: error: no MNIST in $DATA (give its folder)" >&2; exit 1; }
make -s CUDA=1 MPI=0 -j"$(nproc)" bundle
C=build-gpu-carry
rm -rf "$C" && mkdir -p "$C/mnist"
cp build-cuda/hypertrain-gpu.tar.xz "$C/"
cp "$DATA"/*-ubyte* "$C/mnist/"
cat >"$C/verdict.sh" <<'SH'
#!/usr/bin/env bash
# verdict.sh (made by scripts/gpu-carry.sh): the whole GPU verdict in one command, on the node.
# OUT: the folder that receives summary.txt, bench.json and logs.tar.gz (default /tmp/ht-verdict).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
U=$(mktemp -d /tmp/ht_bundle_XXXXXX)
tar -xJf "$HERE/hypertrain-gpu.tar.xz" -C "$U" || { echo "verdict: error: cannot unpack $HERE/hypertrain-gpu.tar.xz"; exit 1; }
HYPERTRAIN_DATA=$HERE/mnist "$U/hypertrain-gpu/tests/gpu/run-all.sh" --out "${OUT:-/tmp/ht-verdict}" "$@"
rc=$?
rm -rf "$U"
exit $rc
SH
chmod +x "$C/verdict.sh"
echo "gpu-carry: $C/ ready ($(du -sh "$C" | cut -f1)): $(ls "$C" | tr '\n' ' ')"
echo "on the GPU node: OUT=<folder> bash $C/verdict.sh [--quick]"
echo "device tool:     run(command=\"bash $C/verdict.sh\", carry=[\"$C\"], timeout_s=560)"
