#!/usr/bin/env bash
# The memory traffic of the loss kernels as Nsight Compute counts it on a GPU (issue 21), for the
# shapes of `npm run gpu:model`: DRAM bytes read and written (caches flushed before each kernel, ncu's
# default), L2 and L1 sectors of the global loads and stores, registers, launch shape and theoretical
# occupancy, kernel time. One process a call (scripts/gpu-traffic.js), so each block of the CSV is one
# call's kernels. Writes $OUT/traffic.csv (or ./traffic.csv); run after scripts/gpu-check.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -n 1)
if [ -z "$ncu" ]; then echo "ncu not found: no traffic measured"; exit 1; fi
out=${OUT:-.}/traffic.csv
: > "$out"
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_sectors_srcunit_tex_op_write.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum,l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_st.sum,l1tex__t_requests_pipe_lsu_mem_global_op_st.sum,launch__registers_per_thread,launch__grid_size,launch__block_size,launch__cluster_dim_x,sm__maximum_warps_per_active_cycle_pct,sm__warps_active.avg.pct_of_peak_sustained_active
one() { # ENV... -- LOSS N C DTYPE
  local env=()
  while [ "$1" != -- ]; do env+=("$1"); shift; done
  shift
  echo "# $* ${env[*]}" >> "$out"
  env "${env[@]}" timeout 60 "$ncu" --clock-control none --csv --page raw --print-units base --metrics "$metrics" \
    node scripts/gpu-traffic.js "$@" 2>&1 | grep -v '^==PROF==' >> "$out"
  echo "$* ${env[*]}: $(tail -n 1 "$out" | cut -c1-120)"
}
for dtype in float32 bfloat16; do
  for shape in "1048576 128" "65536 1000" "8192 131072" "4096 10" "1048576 2" "16384 32000" "4096 262208"; do
    one -- ce $shape $dtype
  done
  one CBLOSS_CUDA_REGISTER_CLUSTERS=1 -- ce 8192 131072 $dtype
  one CBLOSS_CUDA_SHARED_ROWS=1 -- ce 8192 131072 $dtype
  one CBLOSS_CUDA_CLUSTERS=0 -- ce 8192 131072 $dtype
  one CBLOSS_CUDA_CLUSTERS=0 CBLOSS_CUDA_SHARED_ROWS=0 -- ce 8192 131072 $dtype
  one CBLOSS_CUDA_SMALL_GROUPS=0 -- ce 1048576 128 $dtype
done
for loss in focal cb-focal ldam bce; do one -- $loss 65536 1000 float32; done
one -- bce 1048576 128 float32
echo "traffic: $(grep -c '^"' "$out") ncu rows in $out"
