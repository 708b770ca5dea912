// The logit map (docs/semantics.md, "Logit maps": logit adjustment, Balanced Softmax, LDAM), the first
// step of every softmax-row layout of every backend when a call has one (maps_logits):
//
//   z'_c = s (z_c + b_c - [c = y] m_y),   loss = base loss at z',   d loss / d z_c = s d loss / d z'_c
//
// so a layout maps each logit as it loads it (no copy of the logits), runs the row loss's policy on z'
// unchanged, and multiplies the row's gradient scale by s. Without a bias b_c = 0, without a margin
// m = 0: a map adds 0 and multiplies by 1 exactly where those are absent.
//
// The product is rounded where it is formed, whatever the compiler contracts: a layout subtracts the
// mapped logit from the row max (d = m - z'), and a contraction of that subtraction with the map's
// multiplication (an fnmadd of the unrounded product) made d of the max's own logit a few ulps off 0,
// so that it was counted below the max and the loss of a confident row came out log 2 too large
// (LDAM, s = 30, C = 129, AVX-512). So a vector layout and the scalar code that reads z'_y get the same
// float for the same logit, and a row's max and the label's logit agree bit for bit.
#pragma once

#include "math.h"

namespace cbloss {
namespace CBLOSS_MATH_NAMESPACE_NAME {

// x, held in a register as it is: the compiler may not fuse the operation that made it into the next.
template <class T>
CBL_HD T opaque_scalar(T x) {
#if defined(__CUDA_ARCH__)
  return x;  // (device code rounds its products with __fmul_rn instead)
#elif defined(__x86_64__) || defined(__i386__)
  __asm__("" : "+x"(x));
  return x;
#elif defined(__aarch64__)
  __asm__("" : "+w"(x));
  return x;
#else
  volatile T held = x;
  return held;
#endif
}
CBL_HD float opaque(float x) { return opaque_scalar(x); }
CBL_HD double opaque(double x) { return opaque_scalar(x); }

// a * b rounded to T (vectors of floats find their `opaque` in simd.h).
CBL_HD float rounded_product(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return opaque(a * b);
#endif
}
template <class T>
CBL_HD T rounded_product(T a, T b) {
  return opaque(a * b);
}

// T: float, double, or a vector of floats; `margin_here` is m_y at the label's column, else 0.
template <class T>
CBL_HD T mapped_logit(T z, T bias, T margin_here, T scale) {
  return rounded_product((z + bias) - margin_here, scale);
}

}  // namespace CBLOSS_MATH_NAMESPACE_NAME
}  // namespace cbloss
