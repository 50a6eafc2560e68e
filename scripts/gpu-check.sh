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
  # The architectures are passed explicitly: an older build-gpu/ cache may hold nvcc's default.
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DWENSU_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="90-real;90-virtual" >/dev/null
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
  # Minus what needs this machine's Debian setup rather than the GPU: mpirun (Open MPI) and
  # PLplot's run-time drivers are not on the GPU machine.
  "$PACK/bin/wensu_tests" --gtest_brief=1 --gtest_filter='-Pretrain.TwoRanks*:Plot*:PlotCli*' >"$log/all-tests.txt" 2>&1
  rows+=("all tests (rc $?)|$(grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ test' "$log/all-tests.txt" | tr '\n' ' ')")
  local py
  py=$(command -v python3 || true)
  # Block-sparse attention on the GPU (BigBird layout of the CPU figures) against PyTorch's dense
  # SDPA on the same GPU: forward+backward at 8k and 32k, float32 and bfloat16.
  for seq in 8192 32768; do
    for dt in f32 bf16; do
      "$PACK/bin/wensu" bench attention --device cuda --dtype "$dt" --seq "$seq" --layout bigbird --block 64 \
        --heads 8 --head-dim 64 --window 512 --global 2 --random 3 --backward --repeats 5 \
        --torch-python "$py" --torch-script scripts/bench/torch_attention.py \
        >>"$log/bench-attention.jsonl" 2>>"$log/bench-attention.err"
      rows+=("attention $seq $dt (rc $?)|$(tail -1 "$log/bench-attention.jsonl" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("%.2f ms, %.1f TFLOP/s, torch dense %s ms, x%s" % (d["ms"], d["gflops"]/1e3, d["torch_dense_ms"], d["speedup_vs_torch_dense"]))' 2>/dev/null)")
    done
  done
  "$PACK/bin/wensu" bench layer --threads "$(nproc)" --repeats 3 --torch-python "$py" >"$log/bench-layer.jsonl" 2>"$log/bench-layer.err"
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
