// Reductions over the threads that share a row: shuffles within a group, a block through shared
// memory, the running (online) max-and-sums statistics and how two of them merge.
// (Part of kernels.cuh, whose header comment has the overview.)
#pragma once

#include "access.cuh"

namespace cbloss {
namespace cuda {

struct RowSums {
  float s;            // sum e^(z_c - m)
  float below;        // the part of s from logits below m (math::log_row_sum)
  float linear;       // sum a_c (m - z_c)
  float mass;         // sum a_c
  float balance;      // sum balance_weight_c t_c (class-balanced row weight with probability targets)
  float label_logit;  // z_y: the one thread holding column y adds it, every other thread adds 0
};

__device__ __forceinline__ void add_sums(RowSums& into, const RowSums& v) {
  into.s += v.s;
  into.below += v.below;
  into.linear += v.linear;
  into.mass += v.mass;
  into.balance += v.balance;
  into.label_logit += v.label_logit;
}

// A row's (or a slice's) max and its sums around that max.
struct RowStats {
  float m;
  RowSums sums;
};

// (a NaN never wins the max; it reaches S instead)
__device__ __forceinline__ float max_ignoring_nan(float a, float b) { return b > a ? b : a; }

// Sums taken around `from` re-expressed around `to` >= from: S e^(from - to), linear + mass (to - from);
// below a higher max, all of S is below it.
__device__ __forceinline__ RowSums rescaled(RowSums v, float from, float to) {
  if (from == to) return v;  // (also an empty part: both -inf)
  v.s *= expf(from - to);
  v.below = v.s;
  if (v.mass != 0.0f) v.linear += v.mass * (to - from);
  return v;
}

// Commutative bit for bit (max and float addition are), so both lanes of a butterfly get the same.
__device__ __forceinline__ RowStats merge_stats(const RowStats& p, const RowStats& q) {
  const float m = max_ignoring_nan(p.m, q.m);
  RowSums sums = rescaled(p.sums, p.m, m);
  add_sums(sums, rescaled(q.sums, q.m, m));
  return {m, sums};
}

template <int G>
__device__ __forceinline__ float shuffle(float v, int o) {
  return __shfl_xor_sync(0xffffffffu, v, o, G);
}

template <int G>
__device__ __forceinline__ RowSums shuffle(const RowSums& v, int o) {
  return {shuffle<G>(v.s, o), shuffle<G>(v.below, o), shuffle<G>(v.linear, o), shuffle<G>(v.mass, o), shuffle<G>(v.balance, o),
          shuffle<G>(v.label_logit, o)};
}

template <int G>
__device__ __forceinline__ float shuffle_max(float v) {
  for (int o = G / 2; o > 0; o >>= 1) v = max_ignoring_nan(v, shuffle<G>(v, o));
  return v;
}

template <int G>
__device__ __forceinline__ RowSums shuffle_sum(RowSums v) {
  for (int o = G / 2; o > 0; o >>= 1) add_sums(v, shuffle<G>(v, o));
  return v;
}

template <int G>
__device__ __forceinline__ RowStats shuffle_merge(RowStats v) {
  for (int o = G / 2; o > 0; o >>= 1) v = merge_stats(v, RowStats{shuffle<G>(v.m, o), shuffle<G>(v.sums, o)});
  return v;
}

// Over a group of G = 64 ... 1024 threads (whole warps; G a block of its own beyond kBlock): every warp
// reduces with `warp`, then every thread combines its group's warps' results in the same order, so all
// threads of the group get the same value without a broadcast. Every thread of the block must call it
// (it has barriers).
template <int G, class T, class WarpReduce, class Combine>
__device__ __forceinline__ T warps_reduce(T v, WarpReduce warp, Combine combine) {
  constexpr int kWarps = G / 32;
  CBLOSS_BLOCK_SHARED(T, scratch, (G > kBlock ? G : kBlock) / 32);
  v = warp(v);
  const int w = static_cast<int>(threadIdx.x) >> 5;
  if ((threadIdx.x & 31) == 0) scratch[w] = v;
  __syncthreads();
  const int first = w - w % kWarps;
  v = scratch[first];
  for (int k = 1; k < kWarps; ++k) v = combine(v, scratch[first + k]);
  __syncthreads();  // scratch is reused by the next reduction
  return v;
}

template <int G>
__device__ __forceinline__ float group_max(float v) {
  if constexpr (G > 32) {
    return warps_reduce<G>(v, [](float x) { return shuffle_max<32>(x); },
                           [](float x, float y) { return max_ignoring_nan(x, y); });
  } else {
    return shuffle_max<G>(v);
  }
}

template <int G>
__device__ __forceinline__ RowSums group_sum(RowSums v) {
  if constexpr (G > 32) {
    const auto add = [](RowSums x, const RowSums& y) {
      add_sums(x, y);
      return x;
    };
    return warps_reduce<G>(v, [](const RowSums& x) { return shuffle_sum<32>(x); }, add);
  } else {
    return shuffle_sum<G>(v);
  }
}

__device__ __forceinline__ RowStats block_merge(RowStats v) {
  return warps_reduce<kBlock>(v, [](const RowStats& x) { return shuffle_merge<32>(x); },
                             [](const RowStats& x, const RowStats& y) { return merge_stats(x, y); });
}

constexpr RowSums kNoSums{0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};

// Sums one double per thread over the block in a fixed order; thread 0 gets the total.
__device__ double block_total(double v) {
  CBLOSS_BLOCK_SHARED(double, partial, kBlock);
  partial[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kBlock / 2; stride > 0; stride >>= 1) {
    if (static_cast<int>(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  const double total = partial[0];
  __syncthreads();
  return total;
}

// Sums one double a thread over a block of any size (whole warps, up to 1024 threads) in a fixed order
// — the lanes of each warp by shuffles, then the warps in order — into thread 0's result (the others
// get 0). Every thread of the block calls it (barriers). Two barriers where block_total has nine: the
// held rows sum each tile's losses with it (block_total there made ptxas spill in the one pass's
// kernels of single-column runs at R = 8).
__device__ __forceinline__ double block_sum_to_first(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  CBLOSS_BLOCK_SHARED(double, warp_totals, 32);
  if ((threadIdx.x & 31) == 0) warp_totals[threadIdx.x / 32] = v;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0) {
    const int warps = static_cast<int>(blockDim.x) / 32;
    for (int w = 0; w < warps; ++w) total += warp_totals[w];
  }
  __syncthreads();  // (warp_totals is written again by the next sum)
  return total;
}

// ---- A launch's values summed by its last block ----
//
// A call on device arrays returns a sum of what its loss launch writes (row losses, tile sums, element
// blocks' sums), divided by a divisor that may itself be a sum of what a kernel before it writes (the
// divisor terms). Each such sum used to be a launch of its own after the kernel (segment_sum_kernel):
// one more kernel on the call's path for a few microseconds of one block's work. Instead the block of
// the launch that finishes last sums them: every block, once its threads have written their values,
// makes them visible to the grid (a fence by every thread), then counts itself done in *done — zero
// before the launch (the call's parameter upload): one counter a launch — and the block whose count
// reaches the grid's is last; it reads the values from L2 (other SMs wrote them, its L1 may hold none
// of them fresh). The order of the sum depends on the count and the block's size only: the same sum
// whichever block is last, on any GPU. Every thread of every block calls it, after its last write of
// the values; a block that returns before (a bad label: nothing is summed then) leaves the sum unwritten.
// (Not inlined: in the kernels at their register bound, inlined, it made ptxas spill — ptxas-check.sh.)
constexpr int kLastBlockLoads = 4;  // values a thread loads before it adds the first (L2 latency)

template <class T>
__device__ CBLOSS_NOINLINE void sum_in_last_block(const T* values, int64_t count, double* out, unsigned int* done) {
  CBLOSS_BLOCK_SHARED(int, last, 1);
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last[0] = atomicAdd(done, 1u) == gridDim.x * gridDim.y * gridDim.z - 1u;
  __syncthreads();
  if (!last[0]) return;
  __threadfence();  // (the count read before the values: what the other blocks wrote before theirs)
  const int64_t step = blockDim.x;
  double part[kLastBlockLoads] = {};
  for (int64_t i = threadIdx.x; i < count; i += kLastBlockLoads * step) {
    T v[kLastBlockLoads];
    CBLOSS_UNROLL
    for (int k = 0; k < kLastBlockLoads; ++k) v[k] = i + k * step < count ? read_after_grid_sync(values, i + k * step) : T(0);
    CBLOSS_UNROLL
    for (int k = 0; k < kLastBlockLoads; ++k) part[k] += static_cast<double>(v[k]);
  }
  double mine = 0.0;
  CBLOSS_UNROLL
  for (int k = 0; k < kLastBlockLoads; ++k) mine += part[k];
  const double total = block_sum_to_first(mine);
  if (threadIdx.x == 0) write_at(out, 0, total);
}

// The end of a loss kernel of a call on device arrays: the sum of its values by its last block, where
// the host chose so (KernelArgs::loss_sum); nothing otherwise.
__device__ __forceinline__ void finish_loss_sum(const KernelArgs& a) {
  if (!a.loss_sum) return;
  if (a.loss_sum_rows) {
    sum_in_last_block(a.row_loss, a.loss_sum_count, a.loss_sum, a.loss_blocks_done);
  } else {
    sum_in_last_block(a.partials, a.loss_sum_count, a.loss_sum, a.loss_blocks_done);
  }
}

}  // namespace cuda
}  // namespace cbloss
