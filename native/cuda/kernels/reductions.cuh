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

}  // namespace cuda
}  // namespace cbloss
