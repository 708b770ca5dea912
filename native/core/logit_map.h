// The logit map of SPEC §3.6 (logit adjustment, Balanced Softmax, LDAM), the first step of every
// softmax-row layout of every backend when a call has one (maps_logits):
//
//   z'_c = s (z_c + b_c - [c = y] m_y),   loss = base loss at z',   d loss / d z_c = s d loss / d z'_c
//
// so a layout maps each logit as it loads it (no copy of the logits), runs the row loss's policy on z'
// unchanged, and multiplies the row's gradient scale by s. Without a bias b_c = 0, without a margin
// m = 0: a map adds 0 and multiplies by 1 exactly where those are absent.
//
// Written so that no compiler may contract it into a fused multiply-add (the multiplication comes
// last): a vector layout and the scalar code that reads z'_y must get the same float for the same logit,
// since a row's max and the label's logit must agree bit for bit (m - z'_y is exactly 0 for a row whose
// label holds the max, and its loss is then log1p(below), not a rounding error of the subtraction).
#pragma once

#include "math.h"

namespace cbloss {
namespace CBLOSS_MATH_NAMESPACE_NAME {

// T: float, double, or a vector of floats; `margin_here` is m_y at the label's column, else 0.
template <class T>
CBL_HD T mapped_logit(T z, T bias, T margin_here, T scale) {
  return ((z + bias) - margin_here) * scale;
}

}  // namespace CBLOSS_MATH_NAMESPACE_NAME
}  // namespace cbloss
