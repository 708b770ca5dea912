#!/usr/bin/env bash
# The one pass on a GPU (issue 21), after scripts/gpu-check.sh: which kernel each call runs, timings and
# checks against CBLOSS_CUDA_ONE_PASS=0 (scripts/gpu-one-pass.js), compute-sanitizer's memcheck, racecheck
# and synccheck on small one-pass calls, and Nsight Compute's DRAM bytes and kernel times of short-row
# calls with and without it (one process a call, scripts/gpu-traffic.js), each with its CBLOSS_CUDA_LOG
# line (the path it took: the one pass, or why not) in the CSV and the log. Writes $OUT/one-pass.log and
# $OUT/one-pass.csv; exits 1 when a check failed (gpu-one-pass.js, or a profiled call on the wrong path).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-.}
exec > >(tee "$out/one-pass.log") 2>&1
timeout 300 node scripts/gpu-one-pass.js
status=$?
cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -n 1)
for tool in memcheck racecheck synccheck; do
  if [ -n "$cs" ]; then
    echo "compute-sanitizer --tool $tool: $(timeout 300 "$cs" --tool "$tool" node scripts/gpu-one-pass.js --small 2>&1 | tail -n 2 | tr '\n' ' ')"
  fi
done
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -n 1)
[ -n "$ncu" ] || { echo "ncu not found"; exit "$status"; }
csv="$out/one-pass.csv"
: > "$csv"
for shape in "1048576 2" "4096 10" "1048576 10" "1048576 128"; do
  for dtype in float32 bfloat16; do
    for pass in 1 0; do
      echo "# ce $shape $dtype CBLOSS_CUDA_ONE_PASS=$pass" >> "$csv"
      before=$(wc -l < "$csv")
      CBLOSS_CUDA_LOG=1 CBLOSS_CUDA_ONE_PASS=$pass timeout 60 "$ncu" --clock-control none --csv --page raw --print-units base \
        --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,launch__grid_size,launch__registers_per_thread \
        node scripts/gpu-traffic.js ce $shape $dtype 2>&1 | grep -v '^==PROF==' >> "$csv"
      # (the call's path; with the switch on, the one pass unless the rows are more than it holds)
      line=$(tail -n +$((before + 1)) "$csv" | grep -m 1 'rows of .* columns: ')
      echo "ncu ce $shape $dtype CBLOSS_CUDA_ONE_PASS=$pass: ${line:-no CBLOSS_CUDA_LOG line}"
      case "$pass:$line" in
        "1:"*"(the one pass: "* | "1:"*"more rows than its blocks hold"* | "0:"*"switched off (CBLOSS_CUDA_ONE_PASS=0)"*) ;;
        *) echo "FAIL ncu ce $shape $dtype CBLOSS_CUDA_ONE_PASS=$pass: not the expected path"; status=1 ;;
      esac
    done
  done
done
echo "ncu: $(grep -c '^"' "$csv") rows in $csv"
exit "$status"
