#!/usr/bin/env bash
# Installs the Debian packages hypertrain needs (Debian 12). Run as root or with sudo available.
#   scripts/setup.sh            build + test dependencies (CPU build, MPI, HDF5 tools, Python readers,
#                               Slurm + MUNGE for tests/t_slurm.sh)
#   scripts/setup.sh --fetch    also download MNIST into data/mnist if no copy is found
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: run as root or install sudo" >&2; exit 1; }
  SUDO=sudo
fi
PACKAGES=(
  build-essential pkg-config ca-certificates curl
  libhdf5-dev hdf5-tools            # checkpoints and sample sets; h5dump/h5diff used by tests
  libcjson-dev                      # job files
  zlib1g-dev                        # reading MNIST .gz files
  libopenblas-openmp-dev            # sgemm for the CPU path (OpenMP build: no oversubscription)
  libopenmpi-dev openmpi-bin        # multi-rank training (optional for the CPU build)
  python3 python3-h5py python3-numpy python3-matplotlib   # tests that read our HDF5 files; plots
  dataset-fashion-mnist             # outlier set of hyperanalyze ood (/usr/share/datasets/fashion-mnist)
  clang libclang-rt-14-dev libomp-14-dev   # make fuzz: clang, libFuzzer (libclang_rt.fuzzer), OpenMP for clang
)
# Test-only: Slurm and MUNGE for tests/t_slurm.sh, which starts its own one-node cluster in a
# temporary directory (make test installs nothing; without these it says SKIPPED). The packages'
# own services are kept from starting while they install (policy-rc.d).
SLURM_PACKAGES=(slurmctld slurmd slurm-client munge)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${SLURM_PACKAGES[@]}"
echo "setup.sh: packages installed"
if [ "${1:-}" = "--fetch" ]; then
  if [ -d data/mnist ] || [ -n "${HYPERTRAIN_DATA:-}" ] || [ -d ../shared/data/mnist ]; then
    echo "setup.sh: MNIST already available"
  else
    scripts/fetch-mnist.sh data/mnist
  fi
fi
