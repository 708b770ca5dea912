// Longer rows: a block, or a cluster of blocks, per row, held in shared memory.
// (Part of kernels.cuh, whose header comment has the overview.)
#pragma once

#include "cluster_rows.cuh"

namespace cbloss {
namespace cuda {

// Rows longer than registers hold (beyond 262144 columns on sm_90; beyond 8192 without clusters, as
// before sm_90): grid (K, rows) of blocks of kSharedRowsBlock threads, K = 1 or a cluster of K. Block
// `rank` copies columns [rank slice, (rank + 1) slice) of the row into its dynamic shared memory, as
// float32, taking the max as it reads; then, with the blocks' maxima exchanged as in cluster_rows_kernel
// (K > 1), replaces each value with e^(z - m) while it adds up the sums; then, with the sums exchanged,
// writes the gradient from there. One read of the logits and one write of the gradient per element for
// rows of up to K times the shared memory a block may have, less 1 KB (227 KB on sm_90: 925696
// columns in clusters of 16; 163 KB on sm_80: 41472 in one block). Each thread reads and writes only
// the shared memory of its own columns — the same columns at every pass, and in every row — so no
// barrier guards it.
constexpr int kSharedRowsBlock = 512;
constexpr int kSharedRowsBatch = 4;  // runs a thread loads before storing them: loads in flight

// A run of V floats stored at p in shared memory (16-byte aligned when V is a multiple of 4: the
// slices and each thread's offset in them are whole runs). Runs are read back with load_n<float, V>;
// store_n would not do here: its __stwb is a store to global memory.
template <int V>
__device__ __forceinline__ void store_floats(float* p, const float (&v)[V]) {
  if constexpr (V % 4 == 0) {
    CBLOSS_CHECK_ALIGNED(p, sizeof(float4));
    CBLOSS_UNROLL
    for (int k = 0; k < V; k += 4) *reinterpret_cast<float4*>(p + k) = float4{v[k], v[k + 1], v[k + 2], v[k + 3]};
  } else {
    CBLOSS_UNROLL
    for (int k = 0; k < V; ++k) p[k] = v[k];
  }
}

// This thread's columns of [begin, end) of row n (row0 = n C, label y) into `held` (column c at
// c - begin), through the logit map; returns their max.
template <class T, int V>
__device__ __forceinline__ float load_shared(float* held, const KernelArgs& a, int32_t y, int64_t row0, int begin,
                                             int end, int lane) {
  constexpr int kStep = V * kSharedRowsBlock;
  float m = -INFINITY;
  for (int c0 = begin + V * lane; c0 < end; c0 += kSharedRowsBatch * kStep) {
    float v[kSharedRowsBatch][V];
    CBLOSS_UNROLL
    for (int j = 0; j < kSharedRowsBatch; ++j) {
      if (c0 + j * kStep < end) {
        load_n<T, V>(a.logits, row0 + c0 + j * kStep, v[j]);
      } else {
        CBLOSS_UNROLL
        for (int k = 0; k < V; ++k) v[j][k] = 0.0f;  // never read; set so that no register is undefined
      }
    }
    CBLOSS_UNROLL
    for (int j = 0; j < kSharedRowsBatch; ++j) {
      if (c0 + j * kStep >= end) continue;
      CBLOSS_UNROLL
      for (int k = 0; k < V; ++k) v[j][k] = map_logit(a, y, c0 + j * kStep + k, v[j][k]);  // (all loads issued first)
      store_floats<V>(held + (c0 + j * kStep - begin), v[j]);
      CBLOSS_UNROLL
      for (int k = 0; k < V; ++k) m = max_ignoring_nan(m, v[j][k]);
    }
  }
  return m;
}

template <class T, int V>
__global__ void __launch_bounds__(kSharedRowsBlock) shared_rows_kernel(KernelArgs a, int64_t slice) {
  if (skip_launch(a)) return;  // (every block of the grid alike: no barrier is left waiting)
  CBLOSS_DYNAMIC_SHARED(float, held);
#if defined(CBLOSS_CLUSTERS)
  CBLOSS_CLUSTER_SHARED(RowStats, exchange, 1);
  const bool clustered = gridDim.x > 1;  // (a grid of one block a row is launched without clusters)
  const unsigned rank = clustered ? cluster_rank() : 0;
#else
  const unsigned rank = 0;  // (launched with K = 1 only)
#endif
  constexpr int kStep = V * kSharedRowsBlock;
  const int lane = static_cast<int>(threadIdx.x);
  const RowShape r = row_shape(a);
  const int64_t C = a.classes;
  const auto [begin, stop] = slice_columns(rank, slice, C);
  for (int64_t n = blockIdx.y; n < a.rows; n += gridDim.y) {
    const RowStart row = row_start(a, n);
    const int end = row.ignored ? begin : stop;
    RowStats st{group_max<kSharedRowsBlock>(load_shared<T, V>(held, a, row.y, n * C, begin, end, lane)), kNoSums};
#if defined(CBLOSS_CLUSTERS)
    if (clustered) st.m = cluster_max(exchange, st.m);
#endif
    RowSums sums = kNoSums;
    for (int c = begin + V * lane; c < end; c += kStep) {
      float v[V];
      load_n<float, V>(held, c - begin, v);
      CBLOSS_UNROLL
      for (int k = 0; k < V; ++k) v[k] = add_column(sums, a, r, n, row.y, c + k, v[k], st.m - v[k]);
      store_floats<V>(held + (c - begin), v);
    }
    st.sums = group_sum<kSharedRowsBlock>(sums);
#if defined(CBLOSS_CLUSTERS)
    if (clustered) st.sums = cluster_sum(exchange, st.sums);
#endif
    if (row.ignored) {
      if (rank == 0 && lane == 0) write_at(a.row_loss, n, 0.0f);
      if (a.grad) zero_columns<T, V>(a.grad, n * C, begin, stop, lane, kSharedRowsBlock);
      continue;
    }
    const RowGradient g = finish_row(a, r, n, row.y, st, rank == 0 && lane == 0);
    if (!a.grad) continue;
    for (int c = begin + V * lane; c < stop; c += kStep) {
      float e[V], out[V];
      load_n<float, V>(held, c - begin, e);
      CBLOSS_UNROLL
      for (int k = 0; k < V; ++k) out[k] = column_gradient(a, r, g, n, row.y, c + k, e[k]);
      store_n<T, V>(a.grad, n * C + c, out);
    }
  }
#if defined(CBLOSS_CLUSTERS)
  if (clustered) cluster_sync();  // no block may exit while another still reads its shared memory
#endif
  finish_loss_sum(a);
}

}  // namespace cuda
}  // namespace cbloss
