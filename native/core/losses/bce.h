// BCEWithLogitsLoss (PyTorch; docs/semantics.md, "BCE with logits"): the element policy (the class
// weight is the layouts').
//   loss = (1-t) x + l softplus(-x),  l = 1 + (pw-1) t,   d/dx = l sigmoid(x) - pw t
// For x < 0, (1-t)x + l(-x) = -x pw t: the loss is written max(x,0)(1-t) + max(-x,0) pw t +
// l log1p(e^-|x|), the same value without the cancellation of the first form.
#pragma once

#include "element_terms.h"

namespace cbloss {
namespace CBLOSS_MATH_NAMESPACE_NAME {

template <class T>
CBL_HD LossAndSlope<T> bce_pos_weighted(T x, T t, T pw) {
  const T e = exp_neg_abs(x);
  const T l = T(1) + (pw - T(1)) * t;
  const T loss = positive_part(x) * (T(1) - t) + positive_part(-x) * pw * t + l * m_log1p_unit(e);
  return {loss, l * sigmoid_pair(x, e).p - pw * t};
}

struct BCEPolicy {
  template <class T, class G>
  CBL_HD static LossAndSlope<T> element(T x, T t, T pw, const ElementScalars<G>&) {
    return bce_pos_weighted(x, t, pw);
  }
};

}  // namespace CBLOSS_MATH_NAMESPACE_NAME
}  // namespace cbloss
