#!/usr/bin/env bash
# The CUDA kernels keep their values in registers: compiles native/cuda/launch.cu (the file that
# instantiates every kernel) for every real architecture the build targets, with ptxas told to fail on
# a spill or any local memory (an array that ptxas could not keep in registers). Needs nvcc; no GPU. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for arch in 80 90; do
  nvcc -std=c++17 -O3 -arch="sm_$arch" -Xptxas=-warn-spills,-warn-lmem-usage,-Werror \
    -c native/cuda/launch.cu -o "$out/launch_$arch.o"
  echo "sm_$arch: no spills, no local memory"
done
