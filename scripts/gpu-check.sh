#!/usr/bin/env bash
# The GPU check: run on a machine with an NVIDIA GPU, CUDA and Python/PyTorch, with the addon built
# here (build/Release, dist/). A Node carried along as .gpu/node.xz (../shared/tools/pack-node.sh) is
# unpacked when the machine has no Node; where Node does not start, the native check runs instead.
# Prints the checks and a timing table; record its output in bench/RESULTS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1 && [ -f .gpu/node.xz ]; then
  xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node && export PATH=/tmp:$PATH
fi
# On the device machine $OUT is the folder whose files come back: the whole output is kept there too.
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then exec > >(tee "$OUT/gpu-check.log") 2>&1; fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
# CBLOSS_CUDA_LOG=1: the backend prints which cluster sizes run on this GPU (else another kernel runs),
# and the kernels of each call when they differ from the last call's (the one pass or why not).
export CBLOSS_CUDA_LOG=1
if node_error=$(node -e 0 2>&1); then
  timeout 600 node scripts/gpu-check.js
  exit
fi
# No Node that starts here (the carried one may need a newer C library): the native check, when it was
# carried too (build-tools/cbloss_gpu_check, bench/RESULTS.md), so that one run on the device suffices.
echo "node does not start here: $(head -n 1 <<<"$node_error")"
if [ -x build-tools/cbloss_gpu_check ]; then
  echo "running the native check (build-tools/cbloss_gpu_check) instead"
  timeout 600 build-tools/cbloss_gpu_check
else
  echo "no build-tools/cbloss_gpu_check carried either: nothing to run"
  exit 1
fi
