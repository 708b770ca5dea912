// Per-element math shared by every backend, written once. Each function is `CBL_HD`: an ordinary
// inline function for the C++ compiler, `__host__ __device__` under nvcc.
//
// The templates take the compute type T: float or double, or a SIMD vector type of the CPU backend
// (native/cpu/simd.h). They are branch-free — `select(mask, a, b)` instead of `if` — and call the
// primitives m_exp, m_exp_nonpositive, m_expm1, m_log, m_log1p, m_log1p_unit, m_pow, m_abs
// unqualified: for float and double the overloads below are found, for a vector type its own
// overloads are found by argument-dependent lookup. So the CPU (scalar and SIMD) and CUDA kernels
// evaluate the same formulas.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define CBL_HD __host__ __device__ __forceinline__
#else
#define CBL_HD inline
#endif

// A translation unit compiled for a wider instruction set (the CPU's AVX-512 kernels) defines
// CBLOSS_MATH_NS, so that its copies of these inline functions get their own names: otherwise the
// linker could pick the AVX-512 copy of, say, focal_factor<double> for the baseline code too.
#if defined(CBLOSS_MATH_NS)
namespace cbloss {
namespace CBLOSS_MATH_NS {}
namespace math = CBLOSS_MATH_NS;
}  // namespace cbloss
#define CBLOSS_MATH_NAMESPACE_NAME CBLOSS_MATH_NS
#else
#define CBLOSS_MATH_NAMESPACE_NAME math
#endif

namespace cbloss {
namespace CBLOSS_MATH_NAMESPACE_NAME {

// ---- Scalar primitives --------------------------------------------------------------------------
CBL_HD float m_exp(float x) { return std::exp(x); }
CBL_HD double m_exp(double x) { return std::exp(x); }
// e^x for x <= 0 (or NaN): no overflow to handle (the CPU's vector version skips that check).
CBL_HD float m_exp_nonpositive(float x) { return std::exp(x); }
CBL_HD double m_exp_nonpositive(double x) { return std::exp(x); }
CBL_HD float m_expm1(float x) { return std::expm1(x); }
CBL_HD double m_expm1(double x) { return std::expm1(x); }
CBL_HD float m_log(float x) { return std::log(x); }
CBL_HD double m_log(double x) { return std::log(x); }
CBL_HD float m_log1p(float x) { return std::log1p(x); }
CBL_HD double m_log1p(double x) { return std::log1p(x); }
// log(1 + x) for x in [0, 1] (the CPU's vector version is specialised to that range).
CBL_HD float m_log1p_unit(float x) { return std::log1p(x); }
CBL_HD double m_log1p_unit(double x) { return std::log1p(x); }
CBL_HD float m_abs(float x) { return std::fabs(x); }
CBL_HD double m_abs(double x) { return std::fabs(x); }
// x^g for x >= 0 (pow(0, 0) = 1). Common exponents skip the exp/log pair.
CBL_HD float m_pow(float x, float g) { return g == 2.0f ? x * x : g == 1.0f ? x : std::pow(x, g); }
CBL_HD double m_pow(double x, double g) { return g == 2.0 ? x * x : g == 1.0 ? x : std::pow(x, g); }
template <class T>
CBL_HD T select(bool mask, T a, T b) {
  return mask ? a : b;
}
// Whether the mask holds in every lane (a SIMD vector's overload tests all of its lanes).
CBL_HD bool all_lanes(bool mask) { return mask; }

// ---- Formulas -----------------------------------------------------------------------------------

// max(x, 0) that lets NaN through to the caller's sum (a NaN x gives 0 here, and the caller's
// other term, computed from x, is NaN).
template <class T>
CBL_HD T positive_part(T x) {
  return select(x > T(0), x, T(0));
}

// e^-|x|, the one exponential that sigmoid and softplus of either sign need.
template <class T>
CBL_HD T exp_neg_abs(T x) {
  return m_exp_nonpositive(-m_abs(x));
}

// Logistic sigmoid of x and of -x from e = e^-|x| (no overflow for any x).
template <class T>
struct SigmoidPair {
  T p;   // sigmoid(x)
  T np;  // sigmoid(-x) = 1 - sigmoid(x), without cancellation
};

template <class T>
CBL_HD SigmoidPair<T> sigmoid_pair(T x, T e) {
  const T big = T(1) / (T(1) + e);  // sigmoid(|x|)
  const T small = e * big;          // sigmoid(-|x|)
  const auto positive = x >= T(0);
  return {select(positive, big, small), select(positive, small, big)};
}

// Binary cross-entropy with logits, BCE(x, t) = max(x, 0) - x*t + log1p(e^-|x|) (PyTorch's form),
// evaluated as max(x, 0)(1 - t) + max(-x, 0) t + log1p(e^-|x|): the same for every t, but a sum of
// non-negative terms for t in [0, 1], so no digits cancel in float.
template <class T>
CBL_HD T bce_with_logits(T x, T t, T e) {
  return positive_part(x) * (T(1) - t) + positive_part(-x) * t + m_log1p_unit(e);
}

// The focal modulation of a cross-entropy value ce = -log q (q the probability of the truth):
//   focal(ce) = u^gamma * ce,                u = 1 - q = -expm1(-ce)   (no cancellation near q = 1)
//   d focal / d ce = u^gamma * (1 + gamma * q * r),   r = ce / u  (r -> 1 as ce -> 0)
// The naive derivative gamma * u^(gamma-1) * q * ce is 0 * inf = NaN at u = 0 for gamma < 1;
// writing u^(gamma-1) * ce as u^gamma * r keeps every factor bounded. pow(0, 0) = 1 (gamma = 0).
template <class T>
struct FocalFactor {
  T loss;       // u^gamma * ce
  T dloss_dce;  // u^gamma * (1 + gamma * q * r)
};

template <class T, class G>
CBL_HD FocalFactor<T> focal_factor(T ce, G gamma) {
  const T u = -m_expm1(-ce);
  const T q = T(1) - u;
  const T r = select(u > T(0), ce / u, T(1));
  const T ug = m_pow(u, gamma);
  return {ug * ce, ug * (T(1) + T(gamma) * q * r)};
}

// x^n for an integer n >= 0 by repeated squaring (x^0 = 1): at most 2 log2(n) multiplications,
// within a few ulps of the exact power where pow(x, g) = exp(g log x) of the SIMD kernels carries the
// error of g log x.
template <class T>
CBL_HD T pow_int(T x, int n) {
  if (n <= 0) return T(1);
  while ((n & 1) == 0) {
    x = x * x;
    n >>= 1;
  }
  T r = x;
  while ((n >>= 1) != 0) {
    x = x * x;
    if (n & 1) r = r * x;
  }
  return r;
}

template <class T>
struct LossAndSlope {
  T loss;
  T slope;  // d loss / d x
};

}  // namespace CBLOSS_MATH_NAMESPACE_NAME
}  // namespace cbloss
