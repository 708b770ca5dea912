// What every element-wise layout hands an element loss's policy (CPU: scalar and SIMD spans; CUDA:
// elements_kernel): the logit x, its target t (one-hot for index targets), the posWeight of its class
// (1 where the kind has none) and the call's scalars. The policy returns the loss and d loss / d x with
// its own scalar factors (alpha) applied; the per-class vectors (class weight, class-balanced weight)
// and the upstream gradient are the layouts' (one multiply, wherever their values come from).
#pragma once

#include "../math.h"

namespace cbloss {
namespace CBLOSS_MATH_NAMESPACE_NAME {

constexpr int kMaxIntegerGamma = 16;

template <class G>
struct ElementScalars {
  G gamma = G(0);
  G alpha = G(1);
  bool alpha_pair = false;  // binary focal: alpha = alpha0 (1 - t) + alpha1 t
  G alpha0 = G(1), alpha1 = G(1);
  G alpha_t0 = G(1), alpha_t1 = G(0);  // sigmoid focal: alpha_t = alpha_t0 + alpha_t1 t
  G gamma_pos = G(0), gamma_neg = G(0), clip = G(0);
  // gamma_pos and gamma_neg as integers where both are integers in [0, kMaxIntegerGamma], else -1
  // (the asymmetric loss then forms its powers of hard targets by multiplications).
  int gamma_pos_int = -1, gamma_neg_int = -1;
  bool detach_focusing = false;
};

}  // namespace CBLOSS_MATH_NAMESPACE_NAME
}  // namespace cbloss
