// The one dispatch from a loss kind to its policy (native/core/losses/, one header per loss, each with
// its derivation), for every layout of every backend. Each is a `switch` that names every kind of
// loss_kinds.h and has no `default`: with -Werror=switch a kind without a policy fails to build.
#pragma once

#include <cmath>

#include "loss_kinds.h"
#include "problem.h"
#include "losses/asymmetric.h"
#include "losses/bce.h"
#include "losses/cross_entropy.h"
#include "losses/focal.h"
#include "losses/poly.h"
#include "losses/sigmoid_focal.h"

namespace cbloss {
namespace CBLOSS_MATH_NAMESPACE_NAME {

// A row loss's terms from its row sums; `probs`: probability targets (else class indices).
// (Element kinds have no row terms: NaN, never reached — lib/ and the binding route them to the
// element layouts.)
template <class T, class G>
CBL_HD SoftmaxRow<T> row_terms(LossKind kind, bool probs, const SoftmaxSums<T>& s, const RowParams<T, G>& p) {
  switch (kind) {
    case LossKind::CrossEntropy:
      return probs ? CrossEntropyPolicy::probability_row(s, p) : CrossEntropyPolicy::index_row(s, p);
    case LossKind::FocalSoftmax:
      return FocalSoftmaxPolicy::row(s, p);
    case LossKind::Poly:
      return PolyPolicy::row(s, p);
    case LossKind::BCEWithLogits:
    case LossKind::FocalBinary:
    case LossKind::SigmoidFocal:
    case LossKind::Asymmetric:
      break;
  }
  const T nan(nanf(""));
  return {nan, nan, nan};
}

// An element loss's loss and slope at one element (or a vector of them).
template <class T, class G>
CBL_HD LossAndSlope<T> element_terms(LossKind kind, T x, T t, T pos_weight, const ElementScalars<G>& k) {
  switch (kind) {
    case LossKind::BCEWithLogits:
      return BCEPolicy::element(x, t, pos_weight, k);
    case LossKind::SigmoidFocal:
      return SigmoidFocalPolicy::element(x, t, pos_weight, k);
    case LossKind::FocalBinary:
      return FocalBinaryPolicy::element(x, t, pos_weight, k);
    case LossKind::Asymmetric:
      return AsymmetricPolicy::element(x, t, pos_weight, k);
    case LossKind::CrossEntropy:
    case LossKind::FocalSoftmax:
    case LossKind::Poly:
      break;
  }
  const T nan(nanf(""));
  return {nan, nan};
}

// The scalars of an element loss, from the problem (host code; CUDA passes them in KernelArgs).
template <class G>
inline ElementScalars<G> element_scalars(const Problem& p) {
  ElementScalars<G> k;
  k.gamma = static_cast<G>(p.gamma);
  k.alpha = static_cast<G>(p.alpha_scalar);
  k.alpha_pair = reads_target_pairs(p.loss) && p.alpha != nullptr;
  if (k.alpha_pair) {
    k.alpha0 = static_cast<G>(p.alpha[0]);
    k.alpha1 = static_cast<G>(p.alpha[1]);
  }
  // alpha t + (1 - alpha)(1 - t) = (1 - alpha) + (2 alpha - 1) t; alpha < 0 disables alpha_t.
  k.alpha_t0 = p.alpha_scalar >= 0.0 ? static_cast<G>(1.0 - p.alpha_scalar) : G(1);
  k.alpha_t1 = p.alpha_scalar >= 0.0 ? static_cast<G>(2.0 * p.alpha_scalar - 1.0) : G(0);
  k.gamma_pos = static_cast<G>(p.gamma_pos);
  k.gamma_neg = static_cast<G>(p.gamma_neg);
  k.clip = static_cast<G>(p.clip);
  const auto small_integer = [](double g) { return g >= 0.0 && g <= kMaxIntegerGamma && g == std::floor(g); };
  if (small_integer(p.gamma_pos) && small_integer(p.gamma_neg)) {
    k.gamma_pos_int = static_cast<int>(p.gamma_pos);
    k.gamma_neg_int = static_cast<int>(p.gamma_neg);
  }
  k.detach_focusing = p.detach_focusing;
  return k;
}

}  // namespace CBLOSS_MATH_NAMESPACE_NAME
}  // namespace cbloss
