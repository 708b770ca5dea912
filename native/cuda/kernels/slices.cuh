// Rows longer than any one-read kernel holds: several blocks per row, in two kernels.
// (Part of kernels.cuh, whose header comment has the overview.)
#pragma once

#include "softmax_rows.cuh"

namespace cbloss {
namespace cuda {

// Grid (slices, rows), a slice being kSliceColumns columns. Phase 1 reads each slice once and keeps
// running statistics per thread — the max so far, and the sums around it, re-expressed around a new
// max when one comes (rescaled) — then merges them over the block. Phase 2 merges the slices of the row
// (every block of the row in the same order: the max first, then every slice's sums re-expressed
// around it) and reads its slice again to write the gradient. Two reads and one write per element: for
// GPUs without clusters (before sm_90) and rows longer than a cluster holds. Phase 2 takes the rows in
// reverse order (blocks start roughly in order of their index): it begins with the rows phase 1 read
// last, the likeliest to be still in L2 (in forward order the gradient written for the first rows
// would evict them before their turn), so that about an L2's worth of rows comes from memory once,
// not twice. Each row's result is the same in either order.

// This thread's running statistics over its columns in [begin, end) of row n.
template <class T, int V>
__device__ __forceinline__ RowStats column_stats(const KernelArgs& a, const RowShape& r, int64_t n, int32_t y,
                                                 int64_t begin, int64_t end, int lane) {
  RowStats st{-INFINITY, kNoSums};
  for_each_column<T, V>(a.logits, n * a.classes, begin, end, lane, kBlock, [&](int64_t c, float logit) {
    const float z = map_logit(a, y, c, logit);
    if (z > st.m) {
      st.sums = rescaled(st.sums, st.m, z);
      st.m = z;
    }
    add_column(st.sums, a, r, n, y, c, z, st.m - z);
  });
  return st;
}

template <class T, int V>
__global__ void slice_stats_kernel(KernelArgs a, RowStats* stats) {
  if (skip_launch(a)) return;
  const RowShape r = row_shape(a);
  const int64_t slices = gridDim.x;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kSliceColumns;
  const int64_t stop = begin + kSliceColumns < a.classes ? begin + kSliceColumns : a.classes;
  for (int64_t n = blockIdx.y; n < a.rows; n += gridDim.y) {
    const RowStart row = row_start(a, n);
    const int64_t end = row.ignored ? begin : stop;
    const RowStats st = block_merge(column_stats<T, V>(a, r, n, row.y, begin, end, static_cast<int>(threadIdx.x)));
    if (threadIdx.x == 0) write_at(stats, n * slices + blockIdx.x, st);
  }
}

// Phase 2; the first slice's block writes the row loss.
template <class T, int V>
__global__ void slice_gradient_kernel(KernelArgs a, const RowStats* stats) {
  if (skip_launch(a)) return;
  const RowShape r = row_shape(a);
  const int64_t C = a.classes;
  const int64_t slices = gridDim.x;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kSliceColumns;
  const int64_t end = begin + kSliceColumns < C ? begin + kSliceColumns : C;
  const int lane = static_cast<int>(threadIdx.x);
  const bool first = blockIdx.x == 0 && lane == 0;
  for (int64_t i = blockIdx.y; i < a.rows; i += gridDim.y) {
    const int64_t n = a.rows - 1 - i;
    const RowStart row = row_start(a, n);
    if (row.ignored) {
      if (first) write_at(a.row_loss, n, 0.0f);
      if (a.grad) zero_columns<T, V>(a.grad, n * C, begin, end, lane, kBlock);
      continue;
    }
    const RowStats* parts = stats + n * slices;
    RowStats st{-INFINITY, kNoSums};
    for (int64_t s = 0; s < slices; ++s) st.m = max_ignoring_nan(st.m, read_at(&parts[s].m, 0));
    for (int64_t s = 0; s < slices; ++s) {
      const RowStats part = read_at(parts, s);
      add_sums(st.sums, rescaled(part.sums, part.m, st.m));
    }
    const RowGradient g = finish_row(a, r, n, row.y, st, first);
    if (a.grad) {
      transform_columns<T, V>(a.logits, a.grad, n * C, begin, end, lane, kBlock, [&](int64_t c, float z) {
        return column_gradient(a, r, g, n, row.y, c, expf(map_logit(a, row.y, c, z) - st.m));
      });
    }
  }
  finish_loss_sum(a);
}

}  // namespace cuda
}  // namespace cbloss
