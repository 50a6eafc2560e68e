#!/usr/bin/env bash
# Builds and runs the test suite. When nvcc is present it runs twice: once in build/ with the
# CUDA backend compiled (GPU tests skip themselves without a GPU) and once in build-cpu/ with
# -DWENSU_CUDA=OFF, so both configurations are known to build and pass.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

run_suite() {  # DIR [cmake args...]
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 600)
}

echo "== test: default configuration (build/) =="
run_suite build
if grep -q '^WENSU_CUDA:BOOL=ON' build/CMakeCache.txt; then
  echo "== test: CPU-only configuration (build-cpu/) =="
  run_suite build-cpu -DWENSU_CUDA=OFF
fi
