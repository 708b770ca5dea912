// What every softmax-row kernel computes once a row's max and sums are known: its loss and the
// per-column gradient (math.h's row terms), and where its label and weights come from.
// (Part of kernels.cuh, whose header comment has the overview.)
#pragma once

#include "reductions.cuh"

namespace cbloss {
namespace cuda {

struct RowShape {
  bool probs;
  float smooth;  // eps / C
};

__device__ __forceinline__ RowShape row_shape(const KernelArgs& a) {
  return {a.targets != nullptr, a.row.smooth};
}

// The per-class target term q_c of the gradient besides `hit` (native/core/losses/cross_entropy.h):
// w_c t'_c for probability targets, smooth * w_c for index targets with label smoothing, else 0 (the
// binding admits smoothing and probability targets only for the kinds that take them).
// (No smoothing: 0 without reading w_c, which the options' checks keep finite.)
__device__ __forceinline__ float target_weight(const KernelArgs& a, const RowShape& r, int64_t n, int64_t c) {
  if (!r.probs && a.row.label_smoothing == 0.0f) return 0.0f;
  const float w = a.class_weight ? read_at(a.class_weight, c) : 1.0f;
  return r.probs ? w * (a.row.one_minus_eps * read_at(a.targets, n * a.classes + c) + r.smooth) : r.smooth * w;
}

// The weight of class c in the `linear` sum: w_c t'_c for probability targets; w_c for index targets
// with smoothing (softmax_row_terms multiplies by smooth itself); 0 otherwise.
__device__ __forceinline__ float linear_weight(const KernelArgs& a, const RowShape& r, int64_t n, int64_t c) {
  if (r.probs) return target_weight(a, r, n, c);
  if (a.row.label_smoothing == 0.0f) return 0.0f;
  return a.class_weight ? read_at(a.class_weight, c) : 1.0f;
}

// Class weights in shared memory. The per-class weights a softmax row reads at every column, not only at
// its label — the class weights where the target term uses them (probability targets, label smoothing)
// and the class-balanced weights of probability targets — are read by every row: rows held in registers
// (held_rows_kernel, C <= 8192) read them from shared memory, copied there once by each block, and the
// host caps those launches' grids so that each block takes many rows. (Longer rows, split over blocks,
// read their slice of the weights from global memory through the caches, once a row like the logits.)
__host__ __device__ inline bool stages_class_weight(const KernelArgs& a) {
  return a.class_weight && (a.targets || a.row.label_smoothing != 0.0f);
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
    for (int c = lane; c < C; c += stride) shared[c] = read_at(a.class_weight, c);
    a.class_weight = shared;
    shared += C;
  }
  if (balance) {
    for (int c = lane; c < C; c += stride) shared[c] = read_at(a.balance_weight, c);
    a.balance_weight = shared;
  }
  __syncthreads();
  return a;
}

// Logit z of column c of a row with label y through the call's logit map (core/logit_map.h;
// docs/semantics.md, "Logit maps"): every row kernel maps each logit where it loads it, before the max.
// (A branch on a kernel argument: the same for every thread of the launch.)
__device__ __forceinline__ float map_logit(const KernelArgs& a, int32_t y, int64_t c, float z) {
  if (!a.map_logits) return z;
  return math::mapped_logit(z, read_at(a.logit_bias, c), c == y ? read_at(a.margin, c) : 0.0f, a.logit_scale);
}

// Adds column c of row n to `sums` taken around the max m, with d = m - z_c; returns e^(z_c - m).
__device__ __forceinline__ float add_column(RowSums& sums, const KernelArgs& a, const RowShape& r, int64_t n,
                                           int32_t y, int64_t c, float z, float d) {
  const float e = expf(-d);
  sums.s += e;
  sums.below += d != 0.0f ? e : 0.0f;  // (a NaN d is added: it must reach the loss)
  const float lw = linear_weight(a, r, n, c);
  sums.linear += lw * d;
  sums.mass += lw;  // used for probability targets only
  if (a.balance != Balance::Off && r.probs) sums.balance += read_at(a.balance_weight, c) * read_at(a.targets, n * a.classes + c);
  if (c == y) sums.label_logit = z;
  return e;
}

// The row's loss terms from its merged statistics; writes the row loss when asked.
struct RowGradient {
  float scale;  // k * coef / S
  float k;      // upstream gradient * class-balanced row weight
  float label;  // the gradient at the label (class indices; math::label_minus_sum)
  float loss;   // the row's loss (with its row weight)
};

__device__ __forceinline__ RowGradient finish_row(const KernelArgs& a, const RowShape& r, int64_t n, int32_t y,
                                                  const RowStats& st, bool write_loss) {
  const RowSums& sums = st.sums;
  const math::RowParams<float, float> params(y >= 0 && a.class_weight ? read_at(a.class_weight, y) : 1.0f,
                                             y >= 0 && a.alpha ? read_at(a.alpha, y) : a.row.alpha, a.row);
  const math::SoftmaxRow<float> row = math::row_terms(
      a.loss, r.probs, math::SoftmaxSums<float>{st.m - sums.label_logit, math::log_row_sum(sums.s, sums.below), sums.linear, sums.mass},
      params);
  float rw = 1.0f;  // the class-balanced weight of the row (either Balance applies per row here)
  if (a.balance != Balance::Off) rw = r.probs ? sums.balance : read_at(a.balance_weight, y);
  // Sample weights after every other weight (docs/semantics.md, "Per-call options").
  if (a.sample_weight) rw *= read_at(a.sample_weight, n);
  if (write_loss) write_at(a.row_loss, n, rw * row.loss);
  const float k = upstream(a, n) * rw * a.logit_scale;  // (d z' / d z = scale)
  const float scale = k * row.coef / sums.s;
  float label = 0.0f;
  if (y >= 0) {
    const float gap = math::label_minus_sum(expf(sums.label_logit - st.m), sums.s, sums.below);
    label = scale * gap + k * (row.coef - row.hit) - k * target_weight(a, r, n, y);
  }
  return {scale, k, label, rw * row.loss};
}

// d loss / d z_c from the row terms and e = e^(z_c - m).
__device__ __forceinline__ float column_gradient(const KernelArgs& a, const RowShape& r, const RowGradient& g,
                                                 int64_t n, int32_t y, int64_t c, float e) {
  if (c == y) return g.label;
  return g.scale * e - g.k * target_weight(a, r, n, c);
}

// Where a row is ignored (ignore_index) or past the end, and which label it has.
struct RowStart {
  bool active;
  bool ignored;
  int32_t y;
};

// (held: where held_rows_kernel's one pass put the row's label, else it is read here; y is -1 without labels)
__device__ __forceinline__ RowStart row_start(const KernelArgs& a, int64_t n, const int32_t* held = nullptr) {
  const bool active = n < a.rows;
  const int32_t y = active && a.labels ? (held ? *held : read_at(a.labels, n)) : -1;
  return {active, active && a.labels && uses_ignore_index(a.loss) && y == a.ignore_index, y};
}

// Whether label y is one a row may have: a class, or ignore_index where the loss ignores rows.
__device__ __forceinline__ bool valid_label(int32_t y, int64_t classes, bool use_ignore, int32_t ignore_index) {
  return (y >= 0 && y < classes) || (use_ignore && y == ignore_index);
}

}  // namespace cuda
}  // namespace cbloss
