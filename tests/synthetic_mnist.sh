#!/usr/bin/env bash
# Writes MNIST-format IDX files with synthetic images into DIR (uncompressed):
#   tests/synthetic_mnist.sh DIR [N_TRAIN_FILE [N_TEST]]     (default 2500 and 1000)
# Image i has label (7i + 3) mod 10 and shows a bright bar whose row depends on the label, over
# deterministic noise: learnable, but not MNIST. For tests of everything that needs data in the
# MNIST layout but not MNIST itself (file formats, determinism, analyses, launchers), so that they
# still run where MNIST is absent. The checksums are not MNIST's: run with --set data.verify=false.
# jobs/tiny.json (2,000 + 500 training-file images) fits the default sizes. Needs only awk.
set -eu
dir=$1; ntr=${2:-2500}; nte=${3:-1000}
mkdir -p "$dir"
gen() { # gen FILE KIND(images|labels) N SEED
  LC_ALL=C awk -v kind="$2" -v n="$3" -v x="$4" '
    function be32(v) { printf "%c%c%c%c", int(v / 16777216) % 256, int(v / 65536) % 256, int(v / 256) % 256, v % 256 }
    BEGIN {
      if (kind == "labels") { be32(2049); be32(n); for (i = 0; i < n; i++) printf "%c", (7 * i + 3) % 10; exit }
      be32(2051); be32(n); be32(28); be32(28)
      for (i = 0; i < n; i++) {
        lab = (7 * i + 3) % 10
        for (p = 0; p < 784; p++) {
          x = (x * 16807) % 2147483647
          r = int(p / 28); c = p % 28
          v = (r >= 3 + 2 * lab && r < 6 + 2 * lab && c >= 5 && c < 23) ? 160 + x % 96 : (x % 8 == 0 ? x % 64 : 0)
          printf "%c", v
        }
      }
    }' > "$1"
}
gen "$dir/train-images-idx3-ubyte" images "$ntr" 12345
gen "$dir/train-labels-idx1-ubyte" labels "$ntr" 0
gen "$dir/t10k-images-idx3-ubyte" images "$nte" 54321
gen "$dir/t10k-labels-idx1-ubyte" labels "$nte" 0
