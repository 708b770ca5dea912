// The scalars of a call that every softmax-row layout hands its row policy (core/losses/row_terms.h),
// declared once and filled once a call from the Problem by row_scalars — the CPU layouts (float for
// SIMD lanes, double for the scalar and wide-row paths) and the CUDA kernels (KernelArgs::row) read
// these and nothing else of the call's options. A new row scalar is a member here, its line in
// row_scalars, and the policy that reads it (docs/architecture.md, "Adding a per-call option").
#pragma once

#include "problem.h"

namespace cbloss {

template <class G>
struct RowScalars {
  G label_smoothing = G(0);  // eps
  G one_minus_eps = G(1);    // 1 - eps
  G smooth = G(0);           // eps / C
  G weight_sum = G(1);       // sum_c w_c (C without class weights)
  G alpha = G(1);            // focal alpha where the call has no alpha vector
  G gamma = G(0);            // focal gamma
  G poly_epsilon = G(1);     // Poly-1 epsilon
};

// (Formed in G one operation at a time, as each layout formed them before: the float lanes of the CPU
// and CUDA round eps / C in float.)
template <class G>
RowScalars<G> row_scalars(const Problem& p) {
  RowScalars<G> r;
  r.label_smoothing = static_cast<G>(p.label_smoothing);
  r.one_minus_eps = G(1) - r.label_smoothing;
  r.smooth = r.label_smoothing / static_cast<G>(p.classes);
  double weight_sum = static_cast<double>(p.classes);
  if (p.class_weight) {
    weight_sum = 0.0;
    for (int64_t c = 0; c < p.classes; ++c) weight_sum += p.class_weight[c];
  }
  r.weight_sum = static_cast<G>(weight_sum);
  r.alpha = static_cast<G>(p.alpha_scalar);
  r.gamma = static_cast<G>(p.gamma);
  r.poly_epsilon = static_cast<G>(p.poly_epsilon);
  return r;
}

}  // namespace cbloss
