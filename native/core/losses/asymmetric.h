// AsymmetricLoss (ASL, Ridnik et al., ICCV 2021; docs/semantics.md, "Asymmetric loss"): the element policy.
//
// p = sigmoid(x), np = sigmoid(-x). The positive term (t = 1) and the shifted negative term (t = 0):
//   L+ = -log p = softplus(-x),            dL+/dx = -np,   a+ = np (= 1 - p),      a+'/a+ = -p
//   clip = 0:  q = np,  L- = softplus(x),   dL-/dx = p,     a- = p,                 a-'/a- = np
//   clip > 0:  q = min(np + clip, 1), shifted where np + clip < 1 (that is p > clip):
//              L- = -log(np + clip),        dL-/dx = p np / (np + clip),
//              a- = max(p - clip, 0),       a-'/a- = p np / (p - clip)      (all 0 where not shifted)
// For soft targets L = t L+ + (1-t) L-, a = t a+ + (1-t) a- (= 1 - (p t + q (1-t)) without the
// cancellation), gamma_t = gamma+ t + gamma- (1-t), and
//   loss = a^gamma_t L
//   d/dx = a^gamma_t L' + gamma_t a^gamma_t (a'/a) L        (second term 0 where a = 0)
// The focusing term is never formed as a^(gamma_t - 1) (infinite at a = 0 for gamma_t < 1); with
// detach_focusing the factor a^gamma_t is a constant and the second term is dropped (the reference
// code's disable_torch_grad_focal_loss). The reference code's clamp(min=eps) of p and q is not
// applied: log p and log q are the softplus forms, exact for any finite x.
#pragma once

#include "element_terms.h"

namespace cbloss {
namespace CBLOSS_MATH_NAMESPACE_NAME {

struct AsymmetricPolicy {
  template <class T, class G>
  CBL_HD static LossAndSlope<T> element(T x, T t, T, const ElementScalars<G>& k) {
    const T e = exp_neg_abs(x);
    const SigmoidPair<T> s = sigmoid_pair(x, e);
    const T log1p_e = m_log1p_unit(e);
    const T pnp = s.p * s.np;
    const T u = T(1) - t;
    // The negative term: L-, dL-/dx, a-, a-'.
    T neg_loss, neg_slope, neg_a, neg_da;
    if (k.clip == G(0)) {
      neg_loss = positive_part(x) + log1p_e;
      neg_slope = s.p;
      neg_a = s.p;
      neg_da = pnp;
    } else {
      const T q = s.np + T(k.clip);
      const auto shifted = q < T(1);
      neg_loss = select(shifted, -m_log(q), T(0));
      neg_slope = select(shifted, pnp / q, T(0));
      neg_a = positive_part(s.p - T(k.clip));
      neg_da = select(shifted, pnp, T(0));
    }
    const T ce = t * (positive_part(-x) + log1p_e) + u * neg_loss;
    const T dce = u * neg_slope - t * s.np;
    const T a = t * s.np + u * neg_a;
    const T gamma_t = T(k.gamma_pos) * t + T(k.gamma_neg) * u;
    const T focus = m_pow(a, gamma_t);
    if (k.detach_focusing) return {focus * ce, focus * dce};
    const T da = u * neg_da - t * pnp;
    const T ratio = select(a > T(0), da / a, T(0));
    return {focus * ce, focus * (dce + gamma_t * ratio * ce)};
  }
};

}  // namespace CBLOSS_MATH_NAMESPACE_NAME
}  // namespace cbloss
