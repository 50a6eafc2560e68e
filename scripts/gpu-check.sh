#!/usr/bin/env bash
# The one GPU check: everything CUDA, built, tested and benchmarked in one call, with a short
# table printed last. Two halves, because the GPU machine has CUDA but none of our Debian
# libraries and no package access:
#
#   here (Debian, nvcc):   bash scripts/gpu-check.sh pack
#       builds build-gpu/ with -DWENSU_CUDA=ON and packs the binaries, the non-system shared
#       libraries they load (ldd) and the test data into
#       .gpu-pack/pack.tar.gz (git-ignored, ~30 MB: carry .gpu-pack to the GPU machine).
#   on the GPU machine:    bash scripts/gpu-check.sh run LOGDIR
#       runs the CUDA-labelled tests, then the whole suite, then the benchmarks, logging
#       everything to LOGDIR and printing a summary table.
set -uo pipefail
cd "$(dirname "$0")/.."
PACK=.gpu-pack

pack() {
  set -e
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DWENSU_CUDA=ON >/dev/null
  cmake --build build-gpu -j "$(nproc)" --target wensu wensu_tests
  rm -rf "$PACK" && mkdir -p "$PACK/bin" "$PACK/lib" "$PACK/data"
  cp build-gpu/wensu build-gpu/tests/wensu_tests "$PACK/bin/"
  # Shared libraries outside glibc and the CUDA driver/toolkit (the GPU machine has its own).
  ldd build-gpu/wensu build-gpu/tests/wensu_tests | awk '/=>/ {print $3}' |
    sort -u | grep -vE '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libcuda|libcudart|libcublas[^/]*|libnvidia[^/]*)\.so' |
    while read -r lib; do [ -f "$lib" ] && cp -L "$lib" "$PACK/lib/"; done
  cp -r tests/data/. "$PACK/data/"
  # The libraries alone exceed what may be carried; compressed they fit comfortably.
  tar -C "$PACK" -czf "$PACK.tar.gz" bin lib data && rm -rf "$PACK" && mkdir "$PACK" && mv "$PACK.tar.gz" "$PACK/pack.tar.gz"
  du -sh "$PACK"
  echo "gpu-check: packed; on the GPU machine run: bash scripts/gpu-check.sh run LOGDIR (carry $PACK)"
}

run() {
  local log=${1:?usage: gpu-check.sh run LOGDIR}
  mkdir -p "$log"
  [ -f "$PACK/pack.tar.gz" ] || { echo "gpu-check: $PACK/pack.tar.gz missing: run 'gpu-check.sh pack' first and carry $PACK" >&2; exit 2; }
  [ -d "$PACK/bin" ] || tar -C "$PACK" -xzf "$PACK/pack.tar.gz"
  export LD_LIBRARY_PATH="$PWD/$PACK/lib:${LD_LIBRARY_PATH:-}"
  export WENSU_TEST_DATA="$PWD/$PACK/data" WENSU_BINARY="$PWD/$PACK/bin/wensu"
  local rows=()
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$log/gpu.txt" 2>&1
  rows+=("gpu|$(head -1 "$log/gpu.txt")")
  "$PACK/bin/wensu_tests" --gtest_filter='Cuda*' >"$log/cuda-tests.txt" 2>&1
  rows+=("cuda tests (rc $?)|$(grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ test' "$log/cuda-tests.txt" | tr '\n' ' ')")
  "$PACK/bin/wensu_tests" --gtest_brief=1 >"$log/all-tests.txt" 2>&1
  rows+=("all tests (rc $?)|$(grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ test' "$log/all-tests.txt" | tr '\n' ' ')")
  "$PACK/bin/wensu" bench layer --threads "$(nproc)" --repeats 3 --torch-python "$(command -v python3 || true)" >"$log/bench-layer.jsonl" 2>"$log/bench-layer.err"
  rows+=("bench layer cpu (rc $?)|$(tail -1 "$log/bench-layer.jsonl")")
  echo
  echo "== gpu-check summary (logs in $log) =="
  for r in "${rows[@]}"; do printf '%-22s %s\n' "${r%%|*}" "${r#*|}"; done
}

case "${1:-}" in
  pack) pack ;;
  run) shift; run "$@" ;;
  *) echo "usage: gpu-check.sh pack | run LOGDIR" >&2; exit 2 ;;
esac
