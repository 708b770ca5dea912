// SigmoidFocalLoss (torchvision sigmoid_focal_loss; docs/semantics.md, "Sigmoid focal loss"): the element
// policy.
//   loss = alpha_t a^gamma BCE(x, t),  a = 1 - p_t = t sigmoid(-x) + (1-t) sigmoid(x)  (never 1 - p_t,
//   which rounds to 0 for confident predictions),  alpha_t = alpha t + (1-alpha)(1-t) (1 for alpha < 0).
//   d/dx = alpha_t [a^gamma (p - t) + gamma a^(gamma-1) (1-2t) p(1-p) BCE]
// The second term is written a^gamma (p(1-p)/a): for t in [0, 1], a >= min(p, 1-p) >= p(1-p), so the
// ratio is at most 1 and no negative power of a is formed. At a = 0 the term is 0 (its limit).
// For gamma = 2 (the default) and gamma = 1 that product is a p(1-p) and p(1-p): no division.
#pragma once

#include "element_terms.h"

namespace cbloss {
namespace CBLOSS_MATH_NAMESPACE_NAME {

template <class T, class G>
CBL_HD T focal_second_factor(T a, T ag, T pnp, G gamma) {
  if (gamma == G(2)) return a * pnp;
  if (gamma == G(1)) return pnp;
  return select(a != T(0), ag * (pnp / a), T(0));
}

// Without alpha_t.
template <class T, class G>
CBL_HD LossAndSlope<T> sigmoid_focal(T x, T t, G gamma) {
  const T e = exp_neg_abs(x);
  const SigmoidPair<T> s = sigmoid_pair(x, e);
  const T ce = bce_with_logits(x, t, e);
  const T a = t * s.np + (T(1) - t) * s.p;
  const T ag = m_pow(a, gamma);
  const T second = T(gamma) * (T(1) - T(2) * t) * ce * focal_second_factor(a, ag, s.p * s.np, gamma);
  return {ag * ce, ag * (s.p - t) + second};
}

struct SigmoidFocalPolicy {
  template <class T, class G>
  CBL_HD static LossAndSlope<T> element(T x, T t, T, const ElementScalars<G>& k) {
    const LossAndSlope<T> r = sigmoid_focal(x, t, k.gamma);
    const T at = T(k.alpha_t0) + T(k.alpha_t1) * t;
    return {at * r.loss, at * r.slope};
  }
};

}  // namespace CBLOSS_MATH_NAMESPACE_NAME
}  // namespace cbloss
