// The scalars of a call that every softmax-row layout hands its row policy (core/losses/row_terms.h),
// declared once and filled once a call from the Problem by row_scalars — the CPU layouts (float for
// SIMD lanes, double for the scalar and wide-row paths) and the CUDA kernels (KernelArgs::row) read
// these and nothing else of the call's options. A new row scalar is a member here, its line in
// row_scalars, and the policy that reads it (docs/architecture.md, "Adding a per-call option").
#pragma once

#include "problem.h"

namespace cbloss {

// No member has a default, and row_scalars fills them in one aggregate initialization: a member it
// leaves out is a build error (-Werror=missing-field-initializers, CMakeLists.txt and binding.gyp).
template <class G>
struct RowScalars {
  G label_smoothing;  // eps
  G one_minus_eps;    // 1 - eps
  G smooth;           // eps / C
  G weight_sum;       // sum_c w_c (C without class weights)
  G alpha;            // focal alpha where the call has no alpha vector
  G gamma;            // focal gamma
  G poly_epsilon;     // Poly-1 epsilon
};

// (Formed in G one operation at a time, as each layout formed them before: the float lanes of the CPU
// and CUDA round eps / C in float.)
template <class G>
RowScalars<G> row_scalars(const Problem& p) {
  const G eps = static_cast<G>(p.label_smoothing);
  double weight_sum = static_cast<double>(p.classes);
  if (p.class_weight) {
    weight_sum = 0.0;
    for (int64_t c = 0; c < p.classes; ++c) weight_sum += p.class_weight[c];
  }
  return RowScalars<G>{
      eps,                             // label_smoothing
      G(1) - eps,                      // one_minus_eps
      eps / static_cast<G>(p.classes), // smooth
      static_cast<G>(weight_sum),      // weight_sum
      static_cast<G>(p.alpha_scalar),  // alpha
      static_cast<G>(p.gamma),         // gamma
      static_cast<G>(p.poly_epsilon),  // poly_epsilon
  };
}

}  // namespace cbloss
