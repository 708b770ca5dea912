// FocalLoss (Python cbloss; docs/semantics.md, "Focal loss"): the softmax row policy and the binary
// element policy. Both modulate a cross-entropy value ce with math.h's focal_factor (stable for gamma < 1
// and saturated logits): loss = alpha (1 - e^-ce)^gamma ce, d loss / d ce = alpha focal'(ce).
//   Softmax:  ce = m - z_y + log S,  grad = alpha_y focal'(ce) (s - onehot): coef = hit = alpha_y focal'(ce)
//   Binary:   ce = BCE(x, t),        d/dx = alpha (p - t) focal'(ce), alpha = alpha_0 (1-t) + alpha_1 t
//             for an alpha pair, else the scalar alpha.
#pragma once

#include "element_terms.h"
#include "row_terms.h"

namespace cbloss {
namespace CBLOSS_MATH_NAMESPACE_NAME {

struct FocalSoftmaxPolicy {
  template <class T, class G>
  CBL_HD static SoftmaxRow<T> row(const SoftmaxSums<T>& s, const RowParams<T, G>& p) {
    const FocalFactor<T> f = focal_factor(s.gap_y + s.log_s, p.call.gamma);
    return {p.alpha_y * f.loss, p.alpha_y * f.dloss_dce, p.alpha_y * f.dloss_dce};
  }
};

struct FocalBinaryPolicy {
  template <class T, class G>
  CBL_HD static LossAndSlope<T> element(T x, T t, T, const ElementScalars<G>& k) {
    const T e = exp_neg_abs(x);
    const T ce = bce_with_logits(x, t, e);
    const FocalFactor<T> f = focal_factor(ce, k.gamma);
    const T a = k.alpha_pair ? T(k.alpha0) + T(k.alpha1 - k.alpha0) * t : T(k.alpha);
    return {a * f.loss, a * (sigmoid_pair(x, e).p - t) * f.dloss_dce};
  }
};

}  // namespace CBLOSS_MATH_NAMESPACE_NAME
}  // namespace cbloss
