// The end of a softmax row on the CPU, one definition for every layout: the lanes of the one-row-per-
// lane and register layouts (T = a float vector, G = float), the wide rows and the scalar rows
// (T = G = double). From the row's sums and its values at the label to its weighted loss and the
// factors of its gradient, g_c = kc e_c - k q_c - [c = y] kh (docs/semantics.md; CUDA's finish_row in
// softmax_rows.cuh is the same on the GPU). The layouts differ in how they form the sums, not in this.
#pragma once

#include "../core/loss_kinds.h"
#include "../core/loss_terms.h"

namespace cbloss {
// (in the math namespace of the translation unit: each SIMD level compiles its own copy, and the scalar
// level's double one must not be merged with theirs — core/math.h, CBLOSS_MATH_NS)
namespace CBLOSS_MATH_NAMESPACE_NAME {

template <class T>
struct RowEnd {
  T loss;   // the row's loss times its row weight (class-balanced weight times sample weight)
  T k;      // upstream gradient times row weight times d z' / d z (the logit map's scale)
  T coef;   // the policy's factor of s_c = e_c / S
  T hit;    // the policy's term at the label
  T inv_s;  // 1 / S
  T kc() const { return k * coef * inv_s; }  // the factor of e_c
  T kh() const { return k * hit; }
  // The label's gradient from gap = label_minus_sum (e_y - S without its cancellation, math.h) and
  // the label's own q_y (label smoothing: smooth w_y).
  T label(T gap, T q_y) const { return kc() * gap + k * (coef - hit) - k * q_y; }
};

template <class T, class G>
inline RowEnd<T> finish_row(LossKind kind, bool probs, const SoftmaxSums<T>& sums, T inv_s, T w_y, T alpha_y,
                            const RowScalars<G>& call, T balance_weight, T sample_weight, T upstream, G logit_scale) {
  const SoftmaxRow<T> row = row_terms(kind, probs, sums, RowParams<T, G>(w_y, alpha_y, call));
  const T rw = balance_weight * sample_weight;  // sample weights after every other weight (semantics.md)
  return {rw * row.loss, upstream * rw * T(logit_scale), row.coef, row.hit, inv_s};
}

}  // namespace CBLOSS_MATH_NAMESPACE_NAME
}  // namespace cbloss
