// Element-wise losses (math::element_terms: BCE, sigmoid focal, binary focal, asymmetric).
// (Part of kernels.cuh, whose header comment has the overview.)
#pragma once

#include "reductions.cuh"

namespace cbloss {
namespace cuda {

// Class-balanced row weights from probability targets (element losses, Balance::Row): a warp per row.
__global__ void row_weights_kernel(KernelArgs a, float* out) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (kBlock / 32);
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * (kBlock / 32) + (threadIdx.x >> 5); n < a.rows; n += warps) {
    float v = 0.0f;
    for (int64_t c = lane; c < a.classes; c += 32) v += read_at(a.balance_weight, c) * read_at(a.targets, n * a.classes + c);
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) write_at(out, n, v);
  }
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
    if (threadIdx.x == 0) write_at(a.partials, blockIdx.x, 0.0);
    return;
  }
  const int64_t C = a.classes;
  const int64_t M = a.rows * C;
  const bool pairs = reads_target_pairs(a.loss);
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
      const float tk = a.labels ? (read_at(a.labels, n) == c ? 1.0f : 0.0f) : t[k];
      const math::LossAndSlope<float> r =
          math::element_terms(a.loss, x[k], tk, a.pos_weight ? read_at(a.pos_weight, c) : 1.0f, a.element);
      float w = a.class_weight ? read_at(a.class_weight, c) : 1.0f;  // class weight and class-balanced weight
      if (a.balance != Balance::Off) {
        if (pairs) w *= read_at(a.balance_weight, 0) * (1.0f - tk) + read_at(a.balance_weight, 1) * tk;
        else if (a.balance == Balance::Column) w *= read_at(a.balance_weight, c);
        else w *= a.labels ? read_at(a.balance_weight, read_at(a.labels, n)) : read_at(a.row_weight, n);
      }
      // Sample weights (docs/semantics.md, "Per-call options").
      if (a.sample_weight) w *= read_at(a.sample_weight, a.sample_weight_per_element ? i0 + k : n);
      loss[k] = w * r.loss;
      grad[k] = a.grad ? (a.grad_output ? read_at(a.grad_output, i0 + k) : scale) * w * r.slope : 0.0f;
      mine += static_cast<double>(loss[k]);
      if (++c == C) c = 0, ++n;
    }
    if (a.element_loss) store_n<float, V>(a.element_loss, i0, loss);
    if (a.grad) store_n<T, V>(a.grad, i0, grad);
  }
  const double total = block_total(mine);
  if (threadIdx.x == 0) write_at(a.partials, blockIdx.x, total);
  finish_loss_sum(a);
}

}  // namespace cuda
}  // namespace cbloss
