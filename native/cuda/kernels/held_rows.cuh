// Rows held in registers by a group of threads: 4, 8 or 16 lanes, a warp, or up to a block.
// (Part of kernels.cuh, whose header comment has the overview.)
#pragma once

#include "softmax_rows.cuh"

namespace cbloss {
namespace cuda {

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

// The held logits through the logit map (map_logit), when the call has one.
template <int V, int R, int G>
__device__ __forceinline__ void map_held(float (&v)[R][V], const KernelArgs& a, int32_t y, int begin, int end, int lane) {
  if (!a.map_logits) return;
  for_each_held<V, R, G>(v, begin, end, lane, [&](int c, float& z) { z = map_logit(a, y, c, z); });
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

// Single-column runs (V = 1) in groups smaller than a warp: lane k of a group would read every G-th
// column of its row, so a warp instruction takes 4 bytes here and there from the 32 / G rows of the
// warp and its R instructions touch the same sectors R times (the traffic model, bench/RESULTS.md:
// sector efficiency 0.36 at C = 10). Instead the warp copies its rows — one contiguous span of at most
// 32 R values — through shared memory: lane l reads values s + l, s + l + 32, ... where s is the span's
// start rounded down to 32 values (so that each instruction covers whole sectors, wherever the rows
// start), those in the span; each lane takes its columns from there; the gradient goes back the same
// way.
template <int G, int V>
constexpr bool kStagedRows = V == 1 && G < 32;

// The values of the warp's rows present in the problem: from row `first` (the warp's first), at most
// 32 / G rows of C.
template <int G>
__device__ __forceinline__ int warp_span(int64_t first, int64_t rows, int64_t C) {
  const int64_t n = rows - first < 32 / G ? rows - first : 32 / G;
  return n > 0 ? static_cast<int>(n * C) : 0;
}

// The index in the span of this lane's i-th value of a copy between the span and the problem.
__device__ __forceinline__ int span_index(int64_t first0, int i) {
  return static_cast<int>(threadIdx.x & 31) + 32 * i - static_cast<int>(first0 & 31);
}

// This thread's columns of [0, end) of its row (the `row`-th of the warp's), read through the warp's
// span in shared memory (first0: the span's first value in the problem; count: its values).
template <class T, int R, int G>
__device__ __forceinline__ void load_held_staged(float (&v)[R][1], float* span, const void* logits, int64_t first0,
                                                 int count, int row, int64_t C, int end, int lane) {
  CBLOSS_UNROLL
  for (int i = 0; i <= R; ++i) {  // (count <= 32 R values from a start up to 31 past a multiple of 32)
    const int k = span_index(first0, i);
    const float value = load_if<T>(k >= 0 && k < count, logits, first0 + k);
    if (k >= 0 && k < count) span[k] = value;
  }
  __syncwarp();
  CBLOSS_UNROLL
  for (int j = 0; j < R; ++j) {
    const int c = held_column<1, R, G>(lane, j);
    v[j][0] = c < end ? span[row * static_cast<int>(C) + c] : 0.0f;
  }
  __syncwarp();  // (every lane has its values before the span is written again)
}

// The gradient of this thread's columns, back through the span (every lane of the warp calls it).
template <class T, int R, int G>
__device__ __forceinline__ void store_held_gradient_staged(float (&v)[R][1], float* span, const KernelArgs& a,
                                                           const RowShape& r, const RowGradient& g, int64_t n,
                                                           int32_t y, bool ignored, int64_t first0, int count,
                                                           int row, int lane) {
  const int C = static_cast<int>(a.classes);
  CBLOSS_UNROLL
  for (int j = 0; j < R; ++j) {
    const int c = held_column<1, R, G>(lane, j);
    if (c < C) span[row * C + c] = ignored ? 0.0f : column_gradient(a, r, g, n, y, c, v[j][0]);
  }
  __syncwarp();
  CBLOSS_UNROLL
  for (int i = 0; i <= R; ++i) {
    const int k = span_index(first0, i);
    const bool mine = k >= 0 && k < count;
    store_if<T>(mine, a.grad, first0 + k, mine ? span[k] : 0.0f);
  }
  __syncwarp();
}

// Blocks per SM the register budget is set for (65536 registers an SM): 4 (64 registers a thread), 3 (85)
// or 2 (128), by the logits a thread holds — counting a run of one column as 1.5, for its own address
// and bound — as many warps as fit without spilling (ptxas -v). Without a bound ptxas takes ~100
// registers for 16 logits: 2 blocks an SM where 3 fit.
constexpr int held_min_blocks(int V, int R) {
  const int cost = V == 1 ? R * 3 / 2 : R * V;
  return cost <= 8 ? 4 : cost <= 16 ? 3 : 2;
}

// ---- The one pass: labels checked and held, the divisor summed, in the loss kernel itself ----
//
// Device labels must all be checked before anything is written (docs/semantics.md, "Errors": a bad one
// writes nothing), and a 'mean' divided by the labels' weights needs their sum before the first gradient.
// A kernel of its own for that reads the labels once more than the loss needs (4 bytes a row; in bf16 at
// C = 2, a third of the call's minimum bytes). The one pass does it in the loss kernel (short rows,
// groups under a warp, where it shows): a cooperative launch — every block resident at once, at most what
// the GPU holds — in which each block first reads the labels of the tiles it will take (tile j of block
// b: rows (b + j gridDim) R .. + R, R = kRowsPerBlock) into shared memory, checks them (atomicMin into
// invalid_label) and sums its rows' divisor terms; a grid-wide barrier; each block sums the blocks'
// terms into the divisor itself (in a fixed order for a grid, the same in every block; the grid is the
// GPU's, so the last bits of a weighted divisor may differ between GPUs, as docs/semantics.md,
// "Precision", allows); then, unless a label was bad (every block returns, nothing written), the rows
// as in the plain kernel, labels from shared memory. In both kernels, groups under a warp sum each tile's losses (block_sum_to_first) into
// partials[tile] — a function of the shape, not the grid — instead of writing them a row at a time (8
// bytes a row written and read back by the sum).

// Labels a thread of the one pass's first part loads before it uses the first of them.
constexpr int kLabelsInFlight = 4;

// The row of slot i of the one pass's held labels in this block (see check_and_hold_labels).
template <int kRowsPerBlock>
__device__ __forceinline__ int64_t held_row(int i) {
  const int64_t tile = static_cast<int64_t>(blockIdx.x) + static_cast<int64_t>(i / kRowsPerBlock) * gridDim.x;
  return tile * kRowsPerBlock + i % kRowsPerBlock;
}

// The one pass's first part (see above): the block's labels into `held`, checked, the divisor's terms
// summed; false (for every thread of the grid) when a label is bad. `a.divisor` then points at the
// divisor in shared memory where the kernel summed it. Every thread of the grid calls it.
template <int kRowsPerBlock>
__device__ bool check_and_hold_labels(KernelArgs& a, int32_t* held) {
  static_assert(kRowsPerBlock <= kBlock, "a thread a row of the tile");
  const bool use_ignore = uses_ignore_index(a.loss);
  const bool sums = a.label_divisor != Divisor::None;
  const float* w = a.label_divisor == Divisor::LabelWeight ? a.class_weight : a.balance_weight;
  const int t = static_cast<int>(threadIdx.x);
  double terms = 0.0;  // (as core/reductions.h's label_weight_term and balance_row_weight)
  // Slot i of `held` (a.held_labels, whole tiles) is row (blockIdx.x + (i / R) gridDim.x) R + i % R of
  // tile i / R, R = kRowsPerBlock. Every thread of the block takes every kBlock-th slot, kLabelsInFlight
  // loads issued before the first label is used (then the weights at them likewise): with only the R
  // threads of a tile's rows loading, one dependent load an iteration, this part waits on latency with
  // nothing else to hide it. (Rows grow with i, so a thread past the last row stays past it: the lanes'
  // loads line up, as the traffic count assumes.)
  for (int i0 = 0; i0 < a.held_labels; i0 += kBlock * kLabelsInFlight) {
    int64_t n[kLabelsInFlight];  // slot i0 + k kBlock + t's row
    bool has[kLabelsInFlight];   // whether that slot holds a row
    int32_t y[kLabelsInFlight];
    CBLOSS_UNROLL
    for (int k = 0; k < kLabelsInFlight; ++k) {
      const int i = i0 + k * kBlock + t;
      n[k] = held_row<kRowsPerBlock>(i);
      has[k] = i < a.held_labels && n[k] < a.rows;
      y[k] = has[k] ? read_at(a.labels, n[k]) : 0;
    }
    float weight[kLabelsInFlight];
    CBLOSS_UNROLL
    for (int k = 0; k < kLabelsInFlight; ++k) {
      const bool term = sums && has[k] && valid_label(y[k], a.classes, use_ignore, a.ignore_index) &&
                        !(use_ignore && y[k] == a.ignore_index);
      weight[k] = term ? (w ? read_at(w, y[k]) : 1.0f) : 0.0f;
    }
    CBLOSS_UNROLL
    for (int k = 0; k < kLabelsInFlight; ++k) {
      if (!has[k]) continue;
      held[i0 + k * kBlock + t] = y[k];
      if (!valid_label(y[k], a.classes, use_ignore, a.ignore_index)) {
        atomicMin(a.invalid_label, static_cast<unsigned long long>(n[k]));
      }
      terms += static_cast<double>(weight[k]);  // (0 where the row has no term)
    }
  }
  if (sums) {
    const double total = block_total(terms);
    if (threadIdx.x == 0) write_at(a.divisor_terms, blockIdx.x, total);
  }
  grid_sync();
  // Every block sums the blocks' terms itself, in the same order — the same divisor, to the last bit, in
  // every block — rather than wait at a second barrier for block 0's sum (gridDim.x doubles a block,
  // from L2); block 0 also writes it for the host.
  double part = 0.0;
  if (sums) {
    for (int b = t; b < static_cast<int>(gridDim.x); b += kBlock) part += read_after_grid_sync(a.divisor_terms, b);
    part = block_total(part);
  }
  CBLOSS_BLOCK_SHARED(double, divisor, 1);
  CBLOSS_BLOCK_SHARED(int, bad, 1);
  if (threadIdx.x == 0) {
    bad[0] = read_after_grid_sync(a.invalid_label, 0) != ~0ull;
    if (sums) {
      divisor[0] = part;
      if (blockIdx.x == 0) write_at(a.divisor_out, 0, part);
    }
  }
  __syncthreads();
  if (sums) a.divisor = divisor;
  return !bad[0];
}

// Every thread of a block runs the same number of iterations (the loop bound depends on blockIdx only),
// so the shuffles and barriers are never divergent; groups past the last row compute nothing.
// kOnePass: the cooperative launch above (its dynamic shared memory: the held labels, a.held_labels
// of them, then the staged weights). Groups under a warp (kTileSums) sum each tile's losses into
// partials[tile] when the host gives partials (then row_loss is the 'none' output or null).
template <class T, int G, int V, int R, bool kOnePass = false>
__global__ void __launch_bounds__(kBlock, held_min_blocks(V, R)) held_rows_kernel(KernelArgs args) {
  if (!kOnePass && skip_launch(args)) return;
  CBLOSS_DYNAMIC_SHARED(float, dynamic);  // (one pass: the held labels, then the staged weights)
  KernelArgs a = with_staged_weights(args, dynamic + (kOnePass ? args.held_labels : 0));
  int32_t* held = reinterpret_cast<int32_t*>(dynamic);
  constexpr int kRowsPerBlock = kBlock / G;
  constexpr bool kStaged = kStagedRows<G, V>;
  constexpr bool kTileSums = G < 32;
  if constexpr (kOnePass) {
    if (!check_and_hold_labels<kRowsPerBlock>(a, held)) return;
  }
  CBLOSS_BLOCK_SHARED(float, spans, kStaged ? kBlock * R : 1);
  float* span = spans + (kStaged ? (threadIdx.x / 32) * 32 * R : 0);  // this warp's
  const int lane = static_cast<int>(threadIdx.x) % G;
  const int group = static_cast<int>(threadIdx.x) / G;
  const int row_of_warp = group % (32 / G > 0 ? 32 / G : 1);
  const RowShape r = row_shape(a);
  const int64_t C = a.classes;
  const bool tile_sums = kTileSums && a.partials;
  // (the block's j-th tile from j alone, one register across iterations instead of a 64-bit row)
  for (int j = 0;; ++j) {
    const int64_t tile = static_cast<int64_t>(blockIdx.x) + static_cast<int64_t>(j) * gridDim.x;
    const int64_t first = tile * kRowsPerBlock;
    if (first >= a.rows) break;
    const int64_t n = first + group;
    const RowStart row = row_start(a, n, kOnePass ? held + j * kRowsPerBlock + group : nullptr);
    const int end = row.active && !row.ignored ? static_cast<int>(C) : 0;
    const int64_t warp_first = n - row_of_warp;  // (staged rows: the warp's first row)
    const int count = kStaged ? warp_span<G>(warp_first, a.rows, C) : 0;
    float v[R][V];
    if constexpr (kStaged) {
      load_held_staged<T, R, G>(v, span, a.logits, warp_first * C, count, row_of_warp, C, end, lane);
    } else {
      load_held<T, V, R, G>(v, a.logits, n * C, 0, end, lane);
    }
    map_held<V, R, G>(v, a, row.y, 0, end, lane);
    RowStats st{group_max<G>(held_max<V, R, G>(v, 0, end, lane)), kNoSums};
    st.sums = group_sum<G>(held_sums<V, R, G>(v, a, r, n, row.y, st.m, 0, end, lane));
    RowGradient g{};
    if (row.active && row.ignored) {
      if (lane == 0 && a.row_loss) write_at(a.row_loss, n, 0.0f);
    } else if (row.active) {
      g = finish_row(a, r, n, row.y, st, lane == 0 && a.row_loss);
    }
    if (tile_sums) {  // (every thread of the block: the tile's sum has barriers)
      const double total = block_sum_to_first(lane == 0 ? static_cast<double>(g.loss) : 0.0);
      if (threadIdx.x == 0) write_at(a.partials, tile, total);
    }
    if (!row.active && !kStaged) continue;  // (staged rows: every lane of the warp writes the span)
    if (!a.grad) continue;
    if constexpr (kStaged) {  // (a row past the end puts zeros in the span, past what is stored)
      store_held_gradient_staged<T, R, G>(v, span, a, r, g, n, row.y, row.ignored || !row.active, warp_first * C, count,
                                          row_of_warp, lane);
    } else {
      store_held_gradient<T, V, R, G>(v, a, r, g, n, row.y, row.ignored, 0, static_cast<int>(C), lane);
    }
  }
  finish_loss_sum(a);
}

}  // namespace cuda
}  // namespace cbloss
