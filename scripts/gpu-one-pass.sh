#!/usr/bin/env bash
# The one pass on a GPU (issue 21), after scripts/gpu-check.sh: timings and checks against
# CBLOSS_CUDA_ONE_PASS=0 (scripts/gpu-one-pass.js), compute-sanitizer's memcheck, racecheck and synccheck
# on small one-pass calls, and Nsight Compute's DRAM bytes and kernel times of short-row calls with and
# without it (one process a call, scripts/gpu-traffic.js). Writes $OUT/one-pass.log and $OUT/one-pass.csv.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-.}
exec > >(tee "$out/one-pass.log") 2>&1
timeout 300 node scripts/gpu-one-pass.js
cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -n 1)
for tool in memcheck racecheck synccheck; do
  if [ -n "$cs" ]; then
    echo "compute-sanitizer --tool $tool: $(timeout 300 "$cs" --tool "$tool" node scripts/gpu-one-pass.js --small 2>&1 | tail -n 2 | tr '\n' ' ')"
  fi
done
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -n 1)
[ -n "$ncu" ] || { echo "ncu not found"; exit 0; }
csv="$out/one-pass.csv"
: > "$csv"
for shape in "1048576 2" "4096 10" "1048576 10" "1048576 128"; do
  for dtype in float32 bfloat16; do
    for pass in 1 0; do
      echo "# ce $shape $dtype CBLOSS_CUDA_ONE_PASS=$pass" >> "$csv"
      CBLOSS_CUDA_ONE_PASS=$pass timeout 60 "$ncu" --clock-control none --csv --page raw --print-units base \
        --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,launch__grid_size,launch__registers_per_thread \
        node scripts/gpu-traffic.js ce $shape $dtype 2>&1 | grep -v '^==PROF==' >> "$csv"
    done
  done
done
echo "ncu: $(grep -c '^"' "$csv") rows in $csv"
