#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for Wensu and builds it into build/.
# Idempotent: installs only missing packages, reconfigures and rebuilds incrementally.
# As root it installs with apt-get; otherwise it lists what is missing and how to install it.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libdnnl-dev libeigen3-dev libsleef-dev liblbfgspp-dev
  libboost-dev libboost-program-options-dev
  libhdf5-dev nlohmann-json3-dev zlib1g-dev
  gemmi-dev tao-pegtl-dev libstb-dev libssl-dev
  libgtest-dev
  libopenmpi-dev openmpi-bin
  libplplot-dev plplot-driver-cairo
  libpcre2-dev libsentencepiece-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# CUDA is optional: CMake enables it when /usr/local/cuda/bin/nvcc (or nvcc on PATH) exists.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build --target wensu
echo "setup: built $(pwd)/build/wensu"
