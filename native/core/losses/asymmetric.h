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
    if (k.gamma_pos_int < 0) return soft_targets(x, t, k);
    // Each lane's result depends on its own target only (not on its neighbours in a vector): a lane
    // with t = 0 or 1 takes the hard-target form, the others the general one.
    const auto hard = (t == T(0)) | (t == T(1));
    const LossAndSlope<T> h = hard_targets(x, t, k.clip, k.gamma_pos_int, k.gamma_neg_int, k.detach_focusing);
    if (all_lanes(hard)) return h;
    const LossAndSlope<T> g = soft_targets(x, t, k);
    return {select(hard, h.loss, g.loss), select(hard, h.slope, g.slope)};
  }

  // Targets 0 or 1 and integer gammas gp = gamma+, gn = gamma- (k.gamma_pos_int, k.gamma_neg_int;
  // clip, the gammas and detach are arguments so that a caller can give them as constants: the powers
  // then unrolled, the branches folded). Each element is one term, + (t = 1) or - (t = 0); both are
  // evaluated and t selects. No pow (exp and log): a^gamma is a product (math::pow_int), and the
  // focusing term needs no division by a:
  //   t = 1:            gamma+ a^gamma+ (a+'/a+) L+ = -gamma+ a^gamma+ p L+
  //   t = 0, clip = 0:  gamma- a^gamma- (a-'/a-) L- = gamma- a^gamma- np L-
  //   t = 0, clip > 0:  gamma- a^gamma- (a-'/a-) L- = gamma- a^(gamma- - 1) p np L-, with a^(gamma- - 1)
  //                     taken as 0 where a = 0 (the general form's "second term 0 where a = 0").
  template <class T, class G>
  CBL_HD static LossAndSlope<T> hard_targets(T x, T t, G clip, int gp, int gn, bool detach) {
    const T e = exp_neg_abs(x);
    const SigmoidPair<T> s = sigmoid_pair(x, e);
    const T log1p_e = m_log1p_unit(e);
    const T pos_loss = positive_part(-x) + log1p_e;
    const T pos_focus = pow_int(s.np, gp);
    const T pos_slope = detach ? -pos_focus * s.np : -pos_focus * (s.np + T(G(gp)) * s.p * pos_loss);
    T neg_loss, neg_slope, neg_focus;
    if (clip == G(0)) {
      neg_loss = positive_part(x) + log1p_e;
      neg_focus = pow_int(s.p, gn);
      neg_slope = detach ? neg_focus * s.p : neg_focus * (s.p + T(G(gn)) * s.np * neg_loss);
    } else {
      const T q = s.np + T(clip);
      const auto unshifted = q >= T(1);  // (not `q < 1`: a NaN logit gives NaN)
      const T pnp = select(unshifted, T(0), s.p * s.np);
      neg_loss = select(unshifted, T(0), -m_log(q));
      const T a = positive_part(s.p - T(clip));
      const T a_below = gn > 0 ? select(a > T(0), pow_int(a, gn - 1), T(0)) : T(0);  // a^(gamma- - 1)
      neg_focus = gn > 0 ? a_below * a : T(1);
      const T focus_slope = neg_focus / q;  // a^gamma- (L-)'/(p np)
      neg_slope = pnp * (detach ? focus_slope : focus_slope + T(G(gn)) * a_below * neg_loss);
    }
    const auto pos = t > T(0);
    return {select(pos, pos_focus * pos_loss, neg_focus * neg_loss), select(pos, pos_slope, neg_slope)};
  }

  // Any targets and gammas: the general form above.
  template <class T, class G>
  CBL_HD static LossAndSlope<T> soft_targets(T x, T t, const ElementScalars<G>& k) {
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
      const auto unshifted = q >= T(1);  // (not `q < 1`: a NaN logit gives NaN)
      neg_loss = select(unshifted, T(0), -m_log(q));
      neg_slope = select(unshifted, T(0), pnp / q);
      neg_a = positive_part(s.p - T(k.clip));
      neg_da = select(unshifted, T(0), pnp);
    }
    // (a term of weight 0 is 0, also where its L is infinite: L+ at x = -inf, L- at x = +inf)
    const T ce = select(t > T(0), t * (positive_part(-x) + log1p_e), T(0)) + select(u > T(0), u * neg_loss, T(0));
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
