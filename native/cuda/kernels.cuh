// The CUDA kernels: every loss of native/core/math.h on the GPU, for float32, float16 and bfloat16
// logits (the math in float32, the gradient stored in the logits' type).
//
// Softmax losses (CE, softmax focal). With m = max_c z_c, S = sum_c e^(z_c - m) and the linear terms
// of math::softmax_row_terms, every gradient is  k * (coef * e^(z_c - m) / S - q_c)  (q_c: `hit` at
// the label plus the per-class smoothing / probability-target term), k the upstream gradient times
// the class-balanced row weight over the divisor. A row goes to
//   * a group of G threads — 4, 8 or 16 lanes (C <= 16, 128, 256), a warp, or 2, 4 or 8 warps (the
//     whole block), the smallest that holds the row in registers, R runs of V columns per thread
//     (held_rows_kernel, C <= kMaxHeldValues G): one read of the logits and one write of the gradient
//     per element;
//   * beyond that, on sm_90, a cluster of up to kMaxClusterBlocks blocks per row, each holding a slice
//     in registers, the blocks' max and sums exchanged through distributed shared memory
//     (cluster_rows_kernel): again one read and one write per element;
//   * beyond that, or without clusters, a block or a cluster of blocks per row holding it in shared
//     memory (shared_rows_kernel): one read and one write per element, up to what shared memory holds;
//   * beyond that, several blocks per row in two kernels: running (online)
//     statistics of each slice in one read, then the slices merged — S = sum_s S_s e^(m_s - m),
//     linear = sum_s linear_s + mass_s (m - m_s) — in a fixed order and the gradient of each slice
//     from a second read.
// Every thread writes only the columns it read (so the gradient may overwrite the logits), after the
// row's statistics are complete. Each row's loss goes to a per-row buffer (the 'none' output itself,
// or scratch) that segment_sum_kernel adds up in double in a fixed order, so the reduced loss does not
// depend on the GPU or the grid.
//
// Element-wise losses (BCE, sigmoid focal, binary focal): a grid-stride loop, one partial sum per
// block in a fixed grid. No float atomics anywhere.
//
// Every kernel has a width V: its rows (softmax) or its whole array (element-wise) come in runs of V
// values read and written with vector accesses — V = 8 for 16-bit logits and V = 4 for float32, one
// 16-byte access each, or V = 4 for 16-bit logits (8 bytes) — when the lengths and the arrays'
// alignment allow it, else V = 1 (the host picks, launch_typed in launch.cu).
#pragma once

#include <cstdint>
#include <type_traits>

#include "../core/math.h"
#include "../core/problem.h"
#include "cuda_api.h"
#include "kernel_args.h"

namespace cbloss {
namespace cuda {

constexpr int kBlock = 256;
// Logits a thread holds in registers (held_rows_kernel) in runs of V: 32 float32 in runs of 4, else 16
// — the 16-bit types' unpacking and packing, and single-column runs' own addresses and bounds, take
// registers too: 32 spilled under the bound of held_min_blocks (ptxas-check.sh).
template <class T, int V>
constexpr int kMaxHeldValues = sizeof(T) == 4 && V == 4 ? 32 : 16;
constexpr int kSliceColumns = 16384;  // columns per block when a row takes several blocks
constexpr int kMaxGridX = 65535;

// Whether this launch must do nothing (an invalid device label was found): the same for every
// thread of the grid, so returning at once keeps every barrier and shuffle convergent.
__device__ __forceinline__ bool skip_launch(const KernelArgs& a) {
  return a.invalid_label && *a.invalid_label != ~0ull;
}

template <class T>
__device__ __forceinline__ float load(const void* base, int64_t i) {
  return to_float(static_cast<const T*>(base)[i]);
}

template <class T>
__device__ __forceinline__ void store(void* base, int64_t i, float v) {
  static_cast<T*>(base)[i] = from_float(v, static_cast<T*>(nullptr));
}

// Two 16-bit values in one 32-bit word, the first in the low half (little-endian, as every GPU is).
template <class T>
__device__ __forceinline__ void unpack_pair(uint32_t word, float* out) {
  out[0] = to_float(T{static_cast<uint16_t>(word & 0xffffu)});
  out[1] = to_float(T{static_cast<uint16_t>(word >> 16)});
}

template <class T>
__device__ __forceinline__ uint32_t pack_pair(const float* in) {
  T* none = nullptr;
  const uint32_t lo = from_float(in[0], none).bits, hi = from_float(in[1], none).bits;
  return lo | (hi << 16);
}

// V consecutive values from element i in vector accesses: float32 V = 4 (8) is one (two) 16-byte
// access(es); 16-bit types V = 8 is one 16-byte access, V = 4 one 8-byte access. The caller guarantees
// the alignment (the host picks V > 1 only then, launch_compute). Stores go through __stwb (the default
// cache policy), which always emits the vector instruction: a plain float4 store was split into four
// 4-byte stores in some kernels (held rows with R = 8, the slice gradient).
template <class T, int V>
__device__ __forceinline__ void load_n(const void* base, int64_t i, float (&v)[V]) {
  if constexpr (V == 1) {
    v[0] = load<T>(base, i);
  } else if constexpr (std::is_same<T, float>::value) {
    static_assert(V % 4 == 0, "float32 runs are whole float4s");
    const float4* q = reinterpret_cast<const float4*>(static_cast<const float*>(base) + i);
    CBLOSS_UNROLL
    for (int k = 0; k < V / 4; ++k) {
      const float4 f = q[k];
      v[4 * k] = f.x, v[4 * k + 1] = f.y, v[4 * k + 2] = f.z, v[4 * k + 3] = f.w;
    }
  } else if constexpr (V == 4) {
    const uint2 w = *reinterpret_cast<const uint2*>(static_cast<const T*>(base) + i);
    unpack_pair<T>(w.x, v), unpack_pair<T>(w.y, v + 2);
  } else {
    static_assert(V == 8, "16-bit runs are 4 or 8 values");
    const uint4 w = *reinterpret_cast<const uint4*>(static_cast<const T*>(base) + i);
    unpack_pair<T>(w.x, v), unpack_pair<T>(w.y, v + 2), unpack_pair<T>(w.z, v + 4), unpack_pair<T>(w.w, v + 6);
  }
}

template <class T, int V>
__device__ __forceinline__ void store_n(void* base, int64_t i, const float (&v)[V]) {
  if constexpr (V == 1) {
    store<T>(base, i, v[0]);
  } else if constexpr (std::is_same<T, float>::value) {
    float4* q = reinterpret_cast<float4*>(static_cast<float*>(base) + i);
    CBLOSS_UNROLL
    for (int k = 0; k < V / 4; ++k) __stwb(q + k, float4{v[4 * k], v[4 * k + 1], v[4 * k + 2], v[4 * k + 3]});
  } else if constexpr (V == 4) {
    __stwb(reinterpret_cast<uint2*>(static_cast<T*>(base) + i), uint2{pack_pair<T>(v), pack_pair<T>(v + 2)});
  } else {
    __stwb(reinterpret_cast<uint4*>(static_cast<T*>(base) + i),
           uint4{pack_pair<T>(v), pack_pair<T>(v + 2), pack_pair<T>(v + 4), pack_pair<T>(v + 6)});
  }
}

// The columns [begin, end) of row `row` (its first element's index) that thread `lane` of a group of
// G owns: every G-th run of V columns from begin + V lane, one vector access each ((end - begin) and
// the row start are multiples of V). A thread reads and writes only its own columns in every pass, so
// a gradient may overwrite its logits.
template <class T, int V, class F>
__device__ __forceinline__ void for_each_column(const void* base, int64_t row, int64_t begin, int64_t end, int lane,
                                                int G, F&& f) {
  for (int64_t c = begin + V * lane; c < end; c += static_cast<int64_t>(V) * G) {
    float v[V];
    load_n<T, V>(base, row + c, v);
    CBLOSS_UNROLL
    for (int k = 0; k < V; ++k) f(c + k, v[k]);
  }
}

// out[c] = f(c, in[c]) over the same columns.
template <class T, int V, class F>
__device__ __forceinline__ void transform_columns(const void* in, void* out, int64_t row, int64_t begin, int64_t end,
                                                  int lane, int G, F&& f) {
  for (int64_t c = begin + V * lane; c < end; c += static_cast<int64_t>(V) * G) {
    float v[V];
    load_n<T, V>(in, row + c, v);
    CBLOSS_UNROLL
    for (int k = 0; k < V; ++k) v[k] = f(c + k, v[k]);
    store_n<T, V>(out, row + c, v);
  }
}

// out[c] = 0 over the same columns.
template <class T, int V>
__device__ __forceinline__ void zero_columns(void* out, int64_t row, int64_t begin, int64_t end, int lane, int G) {
  const float zeros[V] = {};
  for (int64_t c = begin + V * lane; c < end; c += static_cast<int64_t>(V) * G) store_n<T, V>(out, row + c, zeros);
}

// The factor of every gradient of a call: the scalar upstream gradient / divisor (0 when the divisor
// is 0: the loss is then NaN, the gradient zero, as on the CPU), or the per-element upstream gradient
// of a 'none' call.
__device__ __forceinline__ float scalar_upstream(const KernelArgs& a) {
  const double d = *a.divisor;
  return d != 0.0 ? static_cast<float>(a.grad_output_scalar / d) : 0.0f;
}

__device__ __forceinline__ float upstream(const KernelArgs& a, int64_t output) {
  return a.grad_output ? a.grad_output[output] : scalar_upstream(a);
}

// ---- reductions over the threads that share a row --------------------------------------------------

struct RowSums {
  float s;            // sum e^(z_c - m)
  float linear;       // sum a_c (m - z_c)
  float mass;         // sum a_c
  float balance;      // sum balance_weight_c t_c (class-balanced row weight with probability targets)
  float label_logit;  // z_y: the one thread holding column y adds it, every other thread adds 0
};

__device__ __forceinline__ void add_sums(RowSums& into, const RowSums& v) {
  into.s += v.s;
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

// Sums taken around `from` re-expressed around `to` >= from: S e^(from - to), linear + mass (to - from).
__device__ __forceinline__ RowSums rescaled(RowSums v, float from, float to) {
  if (from == to) return v;  // (also an empty part: both -inf)
  v.s *= expf(from - to);
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
  return {shuffle<G>(v.s, o), shuffle<G>(v.linear, o), shuffle<G>(v.mass, o), shuffle<G>(v.balance, o),
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
  __shared__ T scratch[(G > kBlock ? G : kBlock) / 32];
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

constexpr RowSums kNoSums{0.0f, 0.0f, 0.0f, 0.0f, 0.0f};

// ---- softmax rows ------------------------------------------------------------------------------

struct RowShape {
  bool probs;
  bool focal;
  float smooth;  // eps / C
};

__device__ __forceinline__ RowShape row_shape(const KernelArgs& a) {
  return {a.targets != nullptr, a.loss == LossKind::FocalSoftmax, a.eps / static_cast<float>(a.classes)};
}

// The per-class target term q_c of the gradient besides `hit` (see math::softmax_row_terms): w_c t'_c
// for probability targets, smooth * w_c for index targets, 0 for the focal loss.
// (No smoothing: 0 without reading w_c, which the options' checks keep finite.)
__device__ __forceinline__ float target_weight(const KernelArgs& a, const RowShape& r, int64_t n, int64_t c) {
  if (!r.probs && (r.focal || a.eps == 0.0f)) return 0.0f;
  const float w = a.class_weight ? a.class_weight[c] : 1.0f;
  return r.probs ? w * ((1.0f - a.eps) * a.targets[n * a.classes + c] + r.smooth) : r.smooth * w;
}

// The weight of class c in the `linear` sum: w_c t'_c for probability targets; w_c for index targets
// with smoothing (softmax_row_terms multiplies by smooth itself); 0 otherwise.
__device__ __forceinline__ float linear_weight(const KernelArgs& a, const RowShape& r, int64_t n, int64_t c) {
  if (r.probs) return target_weight(a, r, n, c);
  if (r.focal || a.eps == 0.0f) return 0.0f;
  return a.class_weight ? a.class_weight[c] : 1.0f;
}

// Class weights in shared memory. The per-class weights a softmax row reads at every column, not only at
// its label — the class weights where the target term uses them (probability targets, label smoothing)
// and the class-balanced weights of probability targets — are read by every row: rows held in registers
// (held_rows_kernel, C <= 8192) read them from shared memory, copied there once by each block, and the
// host caps those launches' grids so that each block takes many rows. (Longer rows, split over blocks,
// read their slice of the weights from global memory through the caches, once a row like the logits.)
__host__ __device__ inline bool stages_class_weight(const KernelArgs& a) {
  return a.class_weight && (a.targets || (a.loss == LossKind::CrossEntropy && a.eps != 0.0f));
}
__host__ __device__ inline bool stages_balance_weight(const KernelArgs& a) {
  return a.balance != Balance::Off && a.targets;
}
// The shared memory the block needs: C floats per staged array.
__host__ __device__ inline size_t staged_weight_bytes(const KernelArgs& a) {
  const int arrays = (stages_class_weight(a) ? 1 : 0) + (stages_balance_weight(a) ? 1 : 0);
  return static_cast<size_t>(arrays) * static_cast<size_t>(a.classes) * sizeof(float);
}

// The arguments with the staged arrays pointing into `shared` (staged_weight_bytes of it), filled by
// the block. Every thread of the block calls it (a barrier).
__device__ __forceinline__ KernelArgs with_staged_weights(KernelArgs a, float* shared) {
  const bool class_weight = stages_class_weight(a), balance = stages_balance_weight(a);
  if (!class_weight && !balance) return a;
  const int C = static_cast<int>(a.classes);
  const int lane = static_cast<int>(threadIdx.x), stride = static_cast<int>(blockDim.x);
  if (class_weight) {
    for (int c = lane; c < C; c += stride) shared[c] = a.class_weight[c];
    a.class_weight = shared;
    shared += C;
  }
  if (balance) {
    for (int c = lane; c < C; c += stride) shared[c] = a.balance_weight[c];
    a.balance_weight = shared;
  }
  __syncthreads();
  return a;
}

// Adds column c of row n to `sums` taken around the max m, with d = m - z_c; returns e^(z_c - m).
__device__ __forceinline__ float add_column(RowSums& sums, const KernelArgs& a, const RowShape& r, int64_t n,
                                           int32_t y, int64_t c, float z, float d) {
  const float e = expf(-d);
  sums.s += e;
  const float lw = linear_weight(a, r, n, c);
  sums.linear += lw * d;
  sums.mass += lw;  // used for probability targets only
  if (a.balance != Balance::Off && r.probs) sums.balance += a.balance_weight[c] * a.targets[n * a.classes + c];
  if (c == y) sums.label_logit = z;
  return e;
}

// The row's loss terms from its merged statistics; writes the row loss when asked.
struct RowGradient {
  float scale;  // k * coef / S
  float k;      // upstream gradient * class-balanced row weight
  float hit;    // k * hit
};

__device__ __forceinline__ RowGradient finish_row(const KernelArgs& a, const RowShape& r, int64_t n, int32_t y,
                                                  const RowStats& st, bool write_loss) {
  const RowSums& sums = st.sums;
  const float wy = y >= 0 && a.class_weight ? a.class_weight[y] : 1.0f;
  const float ay = y >= 0 && a.alpha ? a.alpha[y] : a.alpha_scalar;
  const math::SoftmaxForm form = r.focal ? math::SoftmaxForm::Focal
                                 : r.probs ? math::SoftmaxForm::Probabilities
                                           : math::SoftmaxForm::Index;
  const math::SoftmaxRow<float> row = math::softmax_row_terms(
      form, math::SoftmaxSums<float>{st.m - sums.label_logit, logf(sums.s), sums.linear, sums.mass}, wy, ay,
      1.0f - a.eps, r.smooth, a.class_weight_sum, a.gamma);
  float rw = 1.0f;  // the class-balanced weight of the row (either Balance applies per row here)
  if (a.balance != Balance::Off) rw = r.probs ? sums.balance : a.balance_weight[y];
  if (write_loss) a.row_loss[n] = rw * row.loss;
  const float k = upstream(a, n) * rw;
  return {k * row.coef / sums.s, k, k * row.hit};
}

// d loss / d z_c from the row terms and e = e^(z_c - m).
__device__ __forceinline__ float column_gradient(const KernelArgs& a, const RowShape& r, const RowGradient& g,
                                                 int64_t n, int32_t y, int64_t c, float e) {
  const float q = (c == y ? g.hit : 0.0f) + (r.probs || !r.focal ? g.k * target_weight(a, r, n, c) : 0.0f);
  return g.scale * e - q;
}

// Where a row is ignored (ignore_index) or past the end, and which label it has.
struct RowStart {
  bool active;
  bool ignored;
  int32_t y;
};

__device__ __forceinline__ RowStart row_start(const KernelArgs& a, const RowShape& r, int64_t n) {
  const bool active = n < a.rows;
  const int32_t y = active && a.labels ? a.labels[n] : -1;
  return {active, active && a.labels && !r.focal && y == a.ignore_index, y};
}

// ---- rows held in registers: C <= R V G <= kMaxHeldValues<T, V> G ----------------------------------
//
// Lane `lane` of a row's group of G threads (4, 8 or 16 lanes, or 1, 2, 4 or 8 warps) holds R runs of V
// columns, run j at column V * (lane + j G), in registers: it reads them once, takes the max, replaces
// each logit with e^(z - m) while it adds up the sums, and writes the gradient from there. One read of
// the logits and one write of the gradient per element, whatever the caches do, and one exponential.

// (with j a constant after unrolling, run j's address is one base register plus an immediate offset)
template <int V, int R, int G>
__device__ __forceinline__ int held_column(int lane, int j) {
  return V * lane + j * V * G;
}

// f(c, value&) for every held column in [begin, end) (runs are whole: end - begin is a multiple of V).
// Columns are ints: held rows have at most kMaxClusterBlocks kMaxHeldValues 1024 columns.
template <int V, int R, int G, class F>
__device__ __forceinline__ void for_each_held(float (&v)[R][V], int begin, int end, int lane, F&& f) {
  CBLOSS_UNROLL
  for (int j = 0; j < R; ++j) {
    const int c = begin + held_column<V, R, G>(lane, j);
    if (c < end) {
      CBLOSS_UNROLL
      for (int k = 0; k < V; ++k) f(c + k, v[j][k]);
    }
  }
}

// This thread's columns of [begin, end) of row n (row0 = n C), into registers.
template <class T, int V, int R, int G>
__device__ __forceinline__ void load_held(float (&v)[R][V], const void* logits, int64_t row0, int begin, int end,
                                          int lane) {
  CBLOSS_UNROLL
  for (int j = 0; j < R; ++j) {
    const int c = begin + held_column<V, R, G>(lane, j);
    if (c < end) {
      load_n<T, V>(logits, row0 + c, v[j]);
    } else {
      CBLOSS_UNROLL
      for (int k = 0; k < V; ++k) v[j][k] = 0.0f;  // never read; set so that no register is undefined
    }
  }
}

template <int V, int R, int G>
__device__ __forceinline__ float held_max(float (&v)[R][V], int begin, int end, int lane) {
  float m = -INFINITY;
  for_each_held<V, R, G>(v, begin, end, lane, [&](int, float& z) { m = max_ignoring_nan(m, z); });
  return m;
}

// This thread's sums around the row max m; replaces each held logit with e^(z - m).
template <int V, int R, int G>
__device__ __forceinline__ RowSums held_sums(float (&v)[R][V], const KernelArgs& a, const RowShape& r, int64_t n,
                                             int32_t y, float m, int begin, int end, int lane) {
  RowSums sums = kNoSums;
  for_each_held<V, R, G>(v, begin, end, lane,
                         [&](int c, float& z) { z = add_column(sums, a, r, n, y, c, z, m - z); });
  return sums;
}

// The gradient of this thread's columns of [begin, end) of row n from the held e^(z - m) (zero for an
// ignored row).
template <class T, int V, int R, int G>
__device__ __forceinline__ void store_held_gradient(float (&v)[R][V], const KernelArgs& a, const RowShape& r,
                                                    const RowGradient& g, int64_t n, int32_t y, bool ignored,
                                                    int begin, int end, int lane) {
  CBLOSS_UNROLL
  for (int j = 0; j < R; ++j) {
    const int c = begin + held_column<V, R, G>(lane, j);
    if (c >= end) continue;
    float out[V];
    CBLOSS_UNROLL
    for (int k = 0; k < V; ++k) out[k] = ignored ? 0.0f : column_gradient(a, r, g, n, y, c + k, v[j][k]);
    store_n<T, V>(a.grad, n * a.classes + c, out);
  }
}

// Blocks per SM the register budget is set for (65536 registers an SM): 4 (64 registers a thread), 3 (85)
// or 2 (128), by the logits a thread holds — counting a run of one column as 1.5, for its own address
// and bound — as many warps as fit without spilling (ptxas -v). Without a bound ptxas takes ~100
// registers for 16 logits: 2 blocks an SM where 3 fit.
constexpr int held_min_blocks(int V, int R) {
  const int cost = V == 1 ? R * 3 / 2 : R * V;
  return cost <= 8 ? 4 : cost <= 16 ? 3 : 2;
}

// Every thread of a block runs the same number of iterations (the loop bound depends on blockIdx only),
// so the shuffles and barriers are never divergent; groups past the last row compute nothing.
template <class T, int G, int V, int R>
__global__ void __launch_bounds__(kBlock, held_min_blocks(V, R)) held_rows_kernel(KernelArgs args) {
  if (skip_launch(args)) return;
  CBLOSS_DYNAMIC_SHARED(float, staged);
  const KernelArgs a = with_staged_weights(args, staged);
  constexpr int kRowsPerBlock = kBlock / G;
  const int lane = static_cast<int>(threadIdx.x) % G;
  const int group = static_cast<int>(threadIdx.x) / G;
  const RowShape r = row_shape(a);
  const int64_t C = a.classes;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock; first < a.rows;
       first += static_cast<int64_t>(gridDim.x) * kRowsPerBlock) {
    const int64_t n = first + group;
    const RowStart row = row_start(a, r, n);
    const int end = row.active && !row.ignored ? static_cast<int>(C) : 0;
    float v[R][V];
    load_held<T, V, R, G>(v, a.logits, n * C, 0, end, lane);
    RowStats st{group_max<G>(held_max<V, R, G>(v, 0, end, lane)), kNoSums};
    st.sums = group_sum<G>(held_sums<V, R, G>(v, a, r, n, row.y, st.m, 0, end, lane));
    if (!row.active) continue;
    RowGradient g{};
    if (row.ignored) {
      if (lane == 0) a.row_loss[n] = 0.0f;
    } else {
      g = finish_row(a, r, n, row.y, st, lane == 0);
    }
    if (a.grad) store_held_gradient<T, V, R, G>(v, a, r, g, n, row.y, row.ignored, 0, static_cast<int>(C), lane);
  }
}

// ---- longer rows on sm_90: a cluster of blocks per row, held in registers ------------------------
//
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
    const RowStart row = row_start(a, r, n);
    const int end = row.ignored ? begin : stop;
    float v[R][V];
    load_held<T, V, R, B>(v, a.logits, n * C, begin, end, lane);
    RowStats st{cluster_max(exchange, group_max<B>(held_max<V, R, B>(v, begin, end, lane))), kNoSums};
    st.sums = cluster_sum(exchange, group_sum<B>(held_sums<V, R, B>(v, a, r, n, row.y, st.m, begin, end, lane)));
    RowGradient g{};
    if (row.ignored) {
      if (rank == 0 && lane == 0) a.row_loss[n] = 0.0f;
    } else {
      g = finish_row(a, r, n, row.y, st, rank == 0 && lane == 0);
    }
    if (a.grad) store_held_gradient<T, V, R, B>(v, a, r, g, n, row.y, row.ignored, begin, stop, lane);
  }
  cluster_sync();  // no block may exit while another still reads its shared memory
#else
  (void)a, (void)slice;
#endif
}

// ---- longer rows: a block, or a cluster of blocks, per row, held in shared memory -----------------
//
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
    CBLOSS_UNROLL
    for (int k = 0; k < V; k += 4) *reinterpret_cast<float4*>(p + k) = float4{v[k], v[k + 1], v[k + 2], v[k + 3]};
  } else {
    CBLOSS_UNROLL
    for (int k = 0; k < V; ++k) p[k] = v[k];
  }
}

// This thread's columns of [begin, end) of row n (row0 = n C) into `held` (column c at c - begin);
// returns their max.
template <class T, int V>
__device__ __forceinline__ float load_shared(float* held, const void* logits, int64_t row0, int begin, int end,
                                             int lane) {
  constexpr int kStep = V * kSharedRowsBlock;
  float m = -INFINITY;
  for (int c0 = begin + V * lane; c0 < end; c0 += kSharedRowsBatch * kStep) {
    float v[kSharedRowsBatch][V];
    CBLOSS_UNROLL
    for (int j = 0; j < kSharedRowsBatch; ++j) {
      if (c0 + j * kStep < end) {
        load_n<T, V>(logits, row0 + c0 + j * kStep, v[j]);
      } else {
        CBLOSS_UNROLL
        for (int k = 0; k < V; ++k) v[j][k] = 0.0f;  // never read; set so that no register is undefined
      }
    }
    CBLOSS_UNROLL
    for (int j = 0; j < kSharedRowsBatch; ++j) {
      if (c0 + j * kStep >= end) continue;
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
    const RowStart row = row_start(a, r, n);
    const int end = row.ignored ? begin : stop;
    RowStats st{group_max<kSharedRowsBlock>(load_shared<T, V>(held, a.logits, n * C, begin, end, lane)), kNoSums};
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
      if (rank == 0 && lane == 0) a.row_loss[n] = 0.0f;
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
}

// ---- longer rows without clusters: several blocks per row, in two kernels --------------------------
//
// Grid (slices, rows), a slice being kSliceColumns columns. Phase 1 reads each slice once and keeps
// running statistics per thread — the max so far, and the sums around it, re-expressed around a new
// max when one comes (rescaled) — then merges them over the block. Phase 2 merges the slices of the row
// (every block of the row in the same order: the max first, then every slice's sums re-expressed
// around it) and reads its slice again to write the gradient. Two reads and one write per element: for
// GPUs without clusters (before sm_90) and rows longer than a cluster holds.

// This thread's running statistics over its columns in [begin, end) of row n.
template <class T, int V>
__device__ __forceinline__ RowStats column_stats(const KernelArgs& a, const RowShape& r, int64_t n, int32_t y,
                                                 int64_t begin, int64_t end, int lane) {
  RowStats st{-INFINITY, kNoSums};
  for_each_column<T, V>(a.logits, n * a.classes, begin, end, lane, kBlock, [&](int64_t c, float z) {
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
    const RowStart row = row_start(a, r, n);
    const int64_t end = row.ignored ? begin : stop;
    const RowStats st = block_merge(column_stats<T, V>(a, r, n, row.y, begin, end, static_cast<int>(threadIdx.x)));
    if (threadIdx.x == 0) stats[n * slices + blockIdx.x] = st;
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
  for (int64_t n = blockIdx.y; n < a.rows; n += gridDim.y) {
    const RowStart row = row_start(a, r, n);
    if (row.ignored) {
      if (first) a.row_loss[n] = 0.0f;
      if (a.grad) zero_columns<T, V>(a.grad, n * C, begin, end, lane, kBlock);
      continue;
    }
    const RowStats* parts = stats + n * slices;
    RowStats st{-INFINITY, kNoSums};
    for (int64_t s = 0; s < slices; ++s) st.m = max_ignoring_nan(st.m, parts[s].m);
    for (int64_t s = 0; s < slices; ++s) add_sums(st.sums, rescaled(parts[s].sums, parts[s].m, st.m));
    const RowGradient g = finish_row(a, r, n, row.y, st, first);
    if (a.grad) {
      transform_columns<T, V>(a.logits, a.grad, n * C, begin, end, lane, kBlock, [&](int64_t c, float z) {
        return column_gradient(a, r, g, n, row.y, c, expf(z - st.m));
      });
    }
  }
}

// ---- element-wise losses -----------------------------------------------------------------------

// Class-balanced row weights from probability targets (element losses, Balance::Row): a warp per row.
__global__ void row_weights_kernel(KernelArgs a, float* out) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (kBlock / 32);
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * (kBlock / 32) + (threadIdx.x >> 5); n < a.rows; n += warps) {
    float v = 0.0f;
    for (int64_t c = lane; c < a.classes; c += 32) v += a.balance_weight[c] * a.targets[n * a.classes + c];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) out[n] = v;
  }
}

// Sums one double per thread over the block in a fixed order; thread 0 gets the total.
__device__ double block_total(double v) {
  __shared__ double partial[kBlock];
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

// V consecutive elements per thread and step (vector accesses; V > 1 needs M % V == 0 and aligned
// arrays). The row and column of a thread's first element come from one division; from there they
// are counted — within a step element by element, from step to step by the stride's rows and columns
// with a carry — so the loop divides nowhere (a 64-bit division is a software routine on the GPU:
// tens of instructions for every V elements).
// Bounded to 64 registers (4 blocks an SM; unbounded, ptxas took 72: 3): a streaming loop wants
// warps with loads in flight more than registers (no spills: ptxas-check.sh).
template <class T, int V>
__global__ void __launch_bounds__(kBlock, 4) elements_kernel(KernelArgs a) {
  if (skip_launch(a)) {
    if (threadIdx.x == 0) a.partials[blockIdx.x] = 0.0;
    return;
  }
  const int64_t C = a.classes;
  const int64_t M = a.rows * C;
  const bool binary = a.loss == LossKind::FocalBinary;
  double mine = 0.0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kBlock * V;
  const int64_t stride_rows = stride / C, stride_columns = stride - stride_rows * C;
  int64_t i0 = (static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x) * V;
  int64_t n0 = i0 / C, c0 = i0 - n0 * C;  // the row and column of element i0
  // (a double division: once, not at every element — the compiler cannot hoist the divisor's load
  // above the gradient's stores, which might alias it)
  const float scale = a.grad && !a.grad_output ? scalar_upstream(a) : 0.0f;
  for (; i0 < M; i0 += stride) {
    float x[V], t[V] = {}, grad[V], loss[V];
    load_n<T, V>(a.logits, i0, x);
    if (a.targets) load_n<float, V>(a.targets, i0, t);
    int64_t n = n0, c = c0;
    n0 += stride_rows, c0 += stride_columns;
    if (c0 >= C) c0 -= C, ++n0;
    CBLOSS_UNROLL
    for (int k = 0; k < V; ++k) {
      const float tk = a.labels ? (a.labels[n] == c ? 1.0f : 0.0f) : t[k];
      float w = 1.0f;  // class weight, alpha_t and class-balanced weight
      math::LossAndSlope<float> r;
      if (a.loss == LossKind::BCEWithLogits) {
        r = math::bce_pos_weighted(x[k], tk, a.pos_weight ? a.pos_weight[c] : 1.0f);
        if (a.class_weight) w = a.class_weight[c];
      } else if (a.loss == LossKind::SigmoidFocal) {
        r = math::sigmoid_focal(x[k], tk, a.gamma);
        if (a.alpha_scalar >= 0.0f) w = a.alpha_scalar * tk + (1.0f - a.alpha_scalar) * (1.0f - tk);
      } else {
        r = math::binary_focal(x[k], tk, a.gamma);
        w = a.alpha ? a.alpha[0] * (1.0f - tk) + a.alpha[1] * tk : a.alpha_scalar;
      }
      if (a.balance != Balance::Off) {
        if (binary) w *= a.balance_weight[0] * (1.0f - tk) + a.balance_weight[1] * tk;
        else if (a.balance == Balance::Column) w *= a.balance_weight[c];
        else w *= a.labels ? a.balance_weight[a.labels[n]] : a.row_weight[n];
      }
      loss[k] = w * r.loss;
      grad[k] = a.grad ? (a.grad_output ? a.grad_output[i0 + k] : scale) * w * r.slope : 0.0f;
      mine += static_cast<double>(loss[k]);
      if (++c == C) c = 0, ++n;
    }
    if (a.element_loss) store_n<float, V>(a.element_loss, i0, loss);
    if (a.grad) store_n<T, V>(a.grad, i0, grad);
  }
  const double total = block_total(mine);
  if (threadIdx.x == 0) a.partials[blockIdx.x] = total;
}

// ---- sums, divisors, label checks ----------------------------------------------------------------

// out[blockIdx.x] = sum of values[i] over this block's fixed segment (in double).
template <class V>
__global__ void segment_sum_kernel(const V* values, int64_t count, int64_t segment, double* out) {
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * segment;
  const int64_t end = begin + segment < count ? begin + segment : count;
  double v = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += kBlock) v += static_cast<double>(values[i]);
  const double total = block_total(v);
  if (threadIdx.x == 0) out[blockIdx.x] = total;
}

// What the divisor of a data-dependent reduction adds up per row (labels/targets on the device).
__global__ void divisor_terms_kernel(KernelArgs a, Divisor divisor, double* terms) {
  if (skip_launch(a)) return;  // (terms are then never read: the call fails)
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x; n < a.rows;
       n += static_cast<int64_t>(gridDim.x) * kBlock) {
    double v = 0.0;
    const int32_t y = a.labels ? a.labels[n] : -1;
    const bool ignored = a.labels && a.loss == LossKind::CrossEntropy && y == a.ignore_index;
    if (divisor == Divisor::LabelWeight) {
      v = !a.labels ? 1.0 : ignored ? 0.0 : a.class_weight ? a.class_weight[y] : 1.0;
    } else if (a.loss == LossKind::FocalBinary) {
      const double t = a.targets[n];
      v = a.balance_weight[0] * (1.0 - t) + a.balance_weight[1] * t;
    } else if (a.labels) {
      v = ignored ? 0.0 : a.balance_weight[y];
    } else {
      for (int64_t c = 0; c < a.classes; ++c) v += static_cast<double>(a.balance_weight[c]) * a.targets[n * a.classes + c];
    }
    terms[n] = v;
  }
}

// The first row whose label is outside [0, C) and not ignore_index (when allowed): atomicMin of
// the row index (integer atomics are exact), starting from UINT64_MAX.
__global__ void check_labels_kernel(const int32_t* labels, int64_t rows, int64_t classes, bool use_ignore,
                                    int32_t ignore_index, unsigned long long* first_bad) {
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x; n < rows;
       n += static_cast<int64_t>(gridDim.x) * kBlock) {
    const int32_t y = labels[n];
    if ((y < 0 || y >= classes) && !(use_ignore && y == ignore_index)) {
      atomicMin(first_bad, static_cast<unsigned long long>(n));
    }
  }
}

}  // namespace cuda
}  // namespace cbloss
