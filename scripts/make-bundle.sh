#!/usr/bin/env bash
# make-bundle.sh STAGE_BIN_DIR OUT.tar.xz (called by make CUDA=1 MPI=0 bundle; see the Makefile's
# bundle block and docs/cuda.md): assembles the relocatable GPU bundle
#   hypertrain-gpu/bin/        hypertrain, hyperanalyze, the GPU tests and benchmark (DT_RPATH
#                              $ORIGIN/../lib, debug sections stripped), ht-env (scripts/gpu-env.sh)
#   hypertrain-gpu/lib/        every shared library they need, found with ldd, EXCEPT the NVIDIA
#                              ones (driver, CUDA runtime, cuBLAS/cuBLASLt, NCCL: the node's own, found
#                              by ht-env), glibc, and the compiler runtime libstdc++/libgcc_s (which
#                              the node's cuBLAS and NCCL load too: an older copy here would break them)
#   hypertrain-gpu/jobs/, tests/gpu/run-all.sh and tf32-compare.sh, scripts/gpu-scaling-model.py,
#   docs/cuda.md, BUNDLE (what, from which commit, needs)
#   hypertrain-gpu/data/mnist  only with BUNDLE_DATA=DIR
# and packs it into one tar.xz; fails when it exceeds BUNDLE_MAX_MB (default 30).
set -eu
STAGE=$1 OUT=$2
cd "$(dirname "$0")/.."
MAX_MB=${BUNDLE_MAX_MB:-30}
WORK=$(dirname "$OUT")/bundle-tree
R=$WORK/hypertrain-gpu
rm -rf "$WORK" && mkdir -p "$R/bin" "$R/lib" "$R/tests/gpu" "$R/docs"
for b in "$STAGE"/*; do
  objcopy --strip-debug "$b" "$R/bin/$(basename "$b")"
done
cp scripts/gpu-env.sh "$R/bin/ht-env"
cp -r jobs "$R/"
cp tests/gpu/run-all.sh tests/gpu/tf32-compare.sh "$R/tests/gpu/"
mkdir -p "$R/scripts"
cp scripts/gpu-scaling-model.py "$R/scripts/"
cp docs/cuda.md "$R/docs/"
if [ -n "${BUNDLE_DATA:-}" ]; then
  mkdir -p "$R/data/mnist"
  cp "$BUNDLE_DATA"/*-ubyte* "$R/data/mnist/"
fi

# The closure of shared libraries, minus what the node provides.
nvidia_re='^(libcuda\.so|libcudart\.so|libcublas\.so|libcublasLt\.so|libnccl\.so|libnvidia-)'
system_re='^(linux-vdso\.so|ld-linux-x86-64\.so|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so|libutil\.so|libmvec\.so|libanl\.so|libstdc\+\+\.so|libgcc_s\.so)'
needs=""
for b in "$R"/bin/*; do
  head -c 4 "$b" | grep -q ELF || continue
  while read -r name arrow path _; do
    [ "$arrow" = "=>" ] || continue
    if [[ $name =~ $nvidia_re ]]; then needs="$needs $name"; continue; fi
    [[ $name =~ $system_re ]] && continue
    if [ "$path" = "not" ]; then echo "make-bundle: error: $(basename "$b") needs $name, which is not found here" >&2; exit 1; fi
    [ -f "$R/lib/$name" ] || cp -L "$path" "$R/lib/$name"
  done < <(ldd "$b")
done
needs=$(echo $needs | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/ $//')
strip --strip-unneeded "$R"/lib/*.so* 2>/dev/null || true
glibc=$(for f in "$R"/bin/* "$R"/lib/*; do objdump -T "$f" 2>/dev/null; done | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
cat >"$R/BUNDLE" <<INFO
hypertrain GPU bundle
commit: $commit$dirty
built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
nvcc: $("$NVCC" --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
cuda_arch: $CUDA_ARCH
needs: $needs
glibc: $glibc or newer
carried: $(cd "$R/lib" && ls | tr '\n' ' ')
run: tests/gpu/run-all.sh --out DIR   (bin/ht-env shows where the NVIDIA libraries were found)
INFO
rm -f "$OUT"
tar -C "$WORK" -cf - hypertrain-gpu | xz -6 -T2 >"$OUT"
size=$(stat -c %s "$OUT")
echo "bundle: $OUT ($((size / 1048576)) MiB; $(ls "$R/bin" | wc -l) programs, $(ls "$R/lib" | wc -l) libraries; needs from the node: $needs; $glibc)"
if [ "$size" -gt $((MAX_MB * 1048576)) ]; then
  echo "make-bundle: error: $OUT is $((size / 1048576)) MiB, over the limit of $MAX_MB MiB" >&2; exit 1
fi
