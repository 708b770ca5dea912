// Longer rows on sm_90: a cluster of blocks per row, held in registers.
// (Part of kernels.cuh, whose header comment has the overview.)
#pragma once

#include "held_rows.cuh"

namespace cbloss {
namespace cuda {

// Grid (K, rows), clusters of K blocks of B threads along x: block `rank` of a row's cluster holds
// columns [rank slice, (rank + 1) slice) in registers as above (B = 512 for 16-bit logits, which hold
// 16 a thread: 8192 a block, as float32 blocks of 256 holding 32; twice those B, one block an SM, for
// rows longer than 16 such blocks). The blocks exchange their max, then their
// sums around the row max, through distributed shared memory (each block's `exchange`, read by all),
// with a cluster barrier after each: one read and one write per element for rows of up to
// kMaxClusterBlocks kMaxHeldValues B columns (262144 in runs of 4 or more). One `exchange` serves
// every row: a block writes row i + 1's max after passing row i's second barrier, which every block
// reaches only after reading row i's maxima, and row i + 1's sums after row i + 1's first barrier,
// reached only after reading row i's sums.
constexpr int kMaxClusterBlocks = 16;  // non-portable beyond 8: H100 and H200 run 16

#if defined(CBLOSS_CLUSTERS)
// The row's max from its blocks' maxima (every thread of the cluster calls it: a cluster barrier).
__device__ __forceinline__ float cluster_max(RowStats* exchange, float block_m) {
  if (threadIdx.x == 0) exchange->m = block_m;
  cluster_sync();
  float m = -INFINITY;
  for (unsigned b = 0; b < gridDim.x; ++b) m = max_ignoring_nan(m, cluster_peer(exchange, b, 1)->m);
  return m;
}

// The row's sums from its blocks' sums, all taken around the row max (a cluster barrier too).
__device__ __forceinline__ RowSums cluster_sum(RowStats* exchange, const RowSums& block_sums) {
  if (threadIdx.x == 0) exchange->sums = block_sums;
  cluster_sync();
  RowSums sums = kNoSums;
  for (unsigned b = 0; b < gridDim.x; ++b) add_sums(sums, cluster_peer(exchange, b, 1)->sums);
  return sums;
}
#endif

// The columns [begin, stop) of a row that block `rank` of its cluster holds (slices of `slice` columns).
struct SliceColumns {
  int begin;
  int stop;
};
__device__ __forceinline__ SliceColumns slice_columns(unsigned rank, int64_t slice, int64_t C) {
  const int64_t begin = rank * slice;
  return {static_cast<int>(begin), static_cast<int>(begin + slice < C ? begin + slice : C)};
}

// Blocks of 256 take held_min_blocks' budget; larger blocks, one an SM: 65536 / B registers a thread
// (128 for 512, 64 for 1024).
template <class T, int V, int R, int B>
__global__ void __launch_bounds__(B, B == kBlock ? held_min_blocks(V, R) : 1) cluster_rows_kernel(KernelArgs a,
                                                                                                 int64_t slice) {
#if defined(CBLOSS_CLUSTERS)
  if (skip_launch(a)) return;  // (every block of the grid alike: no barrier is left waiting)
  CBLOSS_CLUSTER_SHARED(RowStats, exchange, 1);
  const unsigned rank = cluster_rank();  // the cluster spans the grid's x
  const int lane = static_cast<int>(threadIdx.x);
  const RowShape r = row_shape(a);
  const int64_t C = a.classes;
  const auto [begin, stop] = slice_columns(rank, slice, C);
  for (int64_t n = blockIdx.y; n < a.rows; n += gridDim.y) {
    const RowStart row = row_start(a, n);
    const int end = row.ignored ? begin : stop;
    float v[R][V];
    load_held<T, V, R, B>(v, a.logits, n * C, begin, end, lane);
    map_held<V, R, B>(v, a, row.y, begin, end, lane);
    RowStats st{cluster_max(exchange, group_max<B>(held_max<V, R, B>(v, begin, end, lane))), kNoSums};
    st.sums = cluster_sum(exchange, group_sum<B>(held_sums<V, R, B>(v, a, r, n, row.y, st.m, begin, end, lane)));
    RowGradient g{};
    if (row.ignored) {
      if (rank == 0 && lane == 0) write_at(a.row_loss, n, 0.0f);
    } else {
      g = finish_row(a, r, n, row.y, st, rank == 0 && lane == 0);
    }
    if (a.grad) store_held_gradient<T, V, R, B>(v, a, r, g, n, row.y, row.ignored, begin, stop, lane);
  }
  cluster_sync();  // no block may exit while another still reads its shared memory
  finish_loss_sum(a);
#else
  (void)a, (void)slice;
#endif
}

}  // namespace cuda
}  // namespace cbloss
