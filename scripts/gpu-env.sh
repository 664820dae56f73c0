#!/usr/bin/env bash
# gpu-env.sh (bin/ht-env in the GPU bundle): finds the NVIDIA libraries that the bundle does not
# carry (CUDA runtime, cuBLAS/cuBLASLt, NCCL; the driver's libcuda.so.1), prints where it found
# each, and runs a command with them on the library path. Nobody edits LD_LIBRARY_PATH by hand.
#   ht-env                 print what was found (exit 0), or ONE line naming what is missing (exit 127)
#   ht-env CMD [ARGS...]   the same lookup, then exec CMD with the found folders on LD_LIBRARY_PATH
#   ht-env --check         also ldd every binary of bin/: each library must resolve inside the
#                          bundle (lib/), to a found NVIDIA folder, or to glibc / the compiler
#                          runtime (libstdc++, libgcc_s); anything else fails (exit 1)
#   -q                     (first argument) print only errors
# Where it looks, for each library, in this order: $CUDA_HOME/{lib64,lib,targets/x86_64-linux/lib},
# $NCCL_HOME/{lib,lib64}, every folder of $LD_LIBRARY_PATH, the linker cache (ldconfig -p), the
# toolkit of nvcc on PATH, /usr/local/cuda*, /usr/local/nvidia (driver), then the nvidia/*/lib
# folders of Python environments ($VIRTUAL_ENV, $CONDA_PREFIX, every python3 on PATH, /opt/*/.venv,
# /usr/local/lib/python3*, ~/.local): pip's nvidia-nccl-cu13 brings only libnccl.so.2.
set -u
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
quiet=0
[ "${1:-}" = -q ] && { quiet=1; shift; }
say() { [ $quiet -eq 1 ] || echo "ht-env: $*" >&2; }

# The sonames to find: the bundle's list (written by scripts/make-bundle.sh), else the defaults.
NEEDS="libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libnccl.so.2"
[ -f "$ROOT/BUNDLE" ] && n=$(sed -n 's/^needs: //p' "$ROOT/BUNDLE") && [ -n "$n" ] && NEEDS=$n

cands=() labels=()
add() { [ -d "$1" ] && { cands+=("$1"); labels+=("$2"); }; }
for d in lib64 lib targets/x86_64-linux/lib; do [ -n "${CUDA_HOME:-}" ] && add "$CUDA_HOME/$d" CUDA_HOME; done
for d in lib lib64; do [ -n "${NCCL_HOME:-}" ] && add "$NCCL_HOME/$d" NCCL_HOME; done
IFS=: read -r -a llp <<<"${LD_LIBRARY_PATH:-}"
for d in "${llp[@]}"; do [ -n "$d" ] && add "$d" LD_LIBRARY_PATH; done
ldcache() { # folder of $1 in the linker cache
  [ "${HT_ENV_NO_SYSTEM:-0}" = 1 ] && return
  /sbin/ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n && /x86-64/ { sub(/.*=> /, ""); print; exit }' | xargs -r dirname
}
if [ "${HT_ENV_NO_SYSTEM:-0}" != 1 ]; then # (tests: only the variables above and Python envs)
  nv=$(command -v nvcc 2>/dev/null) && { add "$(dirname "$nv")/../lib64" "nvcc on PATH"; add "$(dirname "$nv")/../lib" "nvcc on PATH"; }
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda-*/lib64 /usr/local/cuda-*/targets/x86_64-linux/lib \
           /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu; do add "$d" system; done
fi
pysites=()
for v in "${VIRTUAL_ENV:-}" "${CONDA_PREFIX:-}"; do [ -n "$v" ] && pysites+=("$v"/lib/python3*/site-packages); done
if [ "${HT_ENV_NO_SYSTEM:-0}" != 1 ]; then
  for py in $(type -ap python3 2>/dev/null) /opt/*/.venv/bin/python3 /opt/conda/bin/python3; do
    [ -x "$py" ] || continue
    while IFS= read -r s; do pysites+=("$s"); done < <("$py" -c 'import site, sys
for p in site.getsitepackages() + [site.getusersitepackages()]: print(p)' 2>/dev/null)
  done
  pysites+=(/opt/*/.venv/lib/python3*/site-packages /opt/*/lib/python3*/site-packages /usr/local/lib/python3*/dist-packages
            /usr/lib/python3/dist-packages "$HOME"/.local/lib/python3*/site-packages)
fi
for s in "${pysites[@]}"; do for d in "$s"/nvidia/*/lib; do add "$d" "Python package $(basename "$(dirname "$d")")"; done; done

found_dirs=() missing=()
for lib in $NEEDS; do
  where="" how=""
  for i in "${!cands[@]}"; do
    if [ -e "${cands[$i]}/$lib" ]; then where=${cands[$i]}; how=${labels[$i]}; break; fi
  done
  if [ -z "$where" ]; then where=$(ldcache "$lib"); how="linker cache"; fi
  if [ -z "$where" ]; then missing+=("$lib"); continue; fi
  where=$(cd "$where" && pwd -P)
  say "$lib: $where ($how)"
  case " ${found_dirs[*]:-} " in *" $where "*) ;; *) found_dirs+=("$where");; esac
done
drv=$(ldcache libcuda.so.1)
[ -z "$drv" ] && for d in /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64; do [ -e "$d/libcuda.so.1" ] && drv=$d && break; done
if [ -n "$drv" ]; then say "libcuda.so.1 (driver): $drv"
else say "libcuda.so.1 (driver): not found: the programs will report SKIPPED (no GPU)"; fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "ht-env: error: ${missing[*]} not found (looked in CUDA_HOME, NCCL_HOME, LD_LIBRARY_PATH, the linker cache, /usr/local/cuda*, and the nvidia/*/lib folders of Python environments); set CUDA_HOME (cuBLAS, CUDA runtime) or NCCL_HOME (the folder above lib/libnccl.so.2)" >&2
  exit 127
fi
LDP=$(IFS=:; echo "${found_dirs[*]}")
export LD_LIBRARY_PATH="$LDP${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

if [ "${1:-}" = --check ]; then
  bad=0 libdir=$(cd "$ROOT/lib" 2>/dev/null && pwd -P)
  declare -A realdir=()
  for b in "$ROOT"/bin/*; do
    [ -f "$b" ] && [ "$(head -c 4 "$b" | tr -d '\177')" = ELF ] || continue
    problems=""
    while read -r name arrow path _; do
      [ "$arrow" = "=>" ] || continue # linux-vdso, the loader
      if [ "$path" = not ]; then problems="$problems $name(not found)"; continue; fi
      case "$name" in # glibc and the compiler runtime that cuBLAS and NCCL themselves need
        libc.so.6|libm.so.6|libpthread.so.0|libdl.so.2|librt.so.1|libresolv.so.2|libutil.so.1|libmvec.so.1|libanl.so.1|libstdc++.so.6|libgcc_s.so.1) continue;;
      esac
      d=${path%/*}
      [ -n "${realdir[$d]:-}" ] || realdir[$d]=$(cd "$d" && pwd -P)
      [ "${realdir[$d]}" = "$libdir" ] && continue
      case " ${found_dirs[*]} " in *" ${realdir[$d]} "*) continue;; esac
      problems="$problems $name($path)"
    done < <(ldd "$b" 2>&1)
    if [ -n "$problems" ]; then echo "ht-env: FAIL ${b##*/}: resolved outside the bundle, the NVIDIA folders and glibc:$problems"; bad=1
    else echo "ht-env: ok ${b##*/}: every library from the bundle, the NVIDIA folders or glibc"; fi
  done
  exit $bad
fi
[ $# -eq 0 ] && exit 0
exec "$@"
