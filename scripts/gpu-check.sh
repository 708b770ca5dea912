#!/usr/bin/env bash
# The GPU check: run on a machine with an NVIDIA GPU, CUDA and Python/PyTorch, with the addon built
# here (build/Release, dist/). A Node carried along as .gpu/node.xz (../shared/tools/pack-node.sh) is
# unpacked when the machine has no Node. Prints the checks and a timing table; record its output in
# bench/RESULTS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1 && [ -f .gpu/node.xz ]; then
  xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node && export PATH=/tmp:$PATH
fi
# On the device machine $OUT is the folder whose files come back: the whole output is kept there too.
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then exec > >(tee "$OUT/gpu-check.log") 2>&1; fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
# CBLOSS_CUDA_LOG=1: the backend prints which cluster sizes run on this GPU (else another kernel runs).
CBLOSS_CUDA_LOG=1 timeout 600 node scripts/gpu-check.js
