// Per-element math shared by every backend. Each function is `CBL_HD`: an ordinary inline function
// for the C++ compiler, `__host__ __device__` under nvcc, so the CPU and CUDA code evaluate the same
// formulas. Templates over the compute type T (float or double).
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define CBL_HD __host__ __device__ __forceinline__
#else
#define CBL_HD inline
#endif

namespace cbloss {
namespace math {

// max(x, 0) that lets NaN through to the caller's sum (a NaN x gives 0 here, and the caller's
// other term, computed from x, is NaN).
template <class T>
CBL_HD T positive_part(T x) {
  return x > T(0) ? x : T(0);
}

// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for any x.
template <class T>
CBL_HD T softplus(T x) {
  return positive_part(x) + std::log1p(std::exp(-std::fabs(x)));
}

// Logistic sigmoid, evaluated on the side where exp cannot overflow.
template <class T>
CBL_HD T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// Binary cross-entropy with logits, BCE(x, t) = max(x, 0) - x*t + log1p(e^-|x|) (PyTorch's form).
template <class T>
CBL_HD T bce_with_logits(T x, T t) {
  return positive_part(x) - x * t + std::log1p(std::exp(-std::fabs(x)));
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

template <class T>
CBL_HD FocalFactor<T> focal_factor(T ce, T gamma) {
  const T u = -std::expm1(-ce);
  const T q = std::exp(-ce);
  const T r = u > T(0) ? ce / u : T(1);
  const T ug = std::pow(u, gamma);
  return {ug * ce, ug * (T(1) + gamma * q * r)};
}

// torchvision's sigmoid focal loss for one element, without alpha_t:
//   loss = a^gamma * BCE(x, t),  a = 1 - p_t = t*sigmoid(-x) + (1-t)*sigmoid(x)  (never 1 - p_t,
//   which rounds to 0 for confident predictions).
//   d/dx = a^gamma * (p - t) + gamma * a^(gamma-1) * (1-2t) * p(1-p) * BCE
// The second term is written a^gamma * (p(1-p)/a): for t in [0, 1], a >= min(p, 1-p) >= p(1-p), so
// the ratio is at most 1 and no negative power of a is formed. At a = 0 the term is 0 (its limit).
template <class T>
struct LossAndSlope {
  T loss;
  T slope;  // d loss / d x
};

template <class T>
CBL_HD LossAndSlope<T> sigmoid_focal(T x, T t, T gamma) {
  const T p = sigmoid(x);
  const T np = sigmoid(-x);
  const T ce = bce_with_logits(x, t);
  const T a = t * np + (T(1) - t) * p;
  const T ag = std::pow(a, gamma);
  T slope = ag * (p - t);
  if (a != T(0)) slope += gamma * ag * (T(1) - T(2) * t) * (p * np / a) * ce;
  return {ag * ce, slope};
}

// PyTorch's BCEWithLogits with pos_weight pw for one element (class weight applied by the caller):
//   loss = (1-t)*x + (1 + (pw-1)*t) * softplus(-x),   d/dx = (1 + (pw-1)*t) * sigmoid(x) - pw*t
template <class T>
CBL_HD LossAndSlope<T> bce_pos_weighted(T x, T t, T pw) {
  const T l = T(1) + (pw - T(1)) * t;
  return {(T(1) - t) * x + l * softplus(-x), l * sigmoid(x) - pw * t};
}

// Python cbloss's binary focal loss for one element (alpha applied by the caller):
//   ce = BCE(x, t), loss = (1 - e^-ce)^gamma * ce,  d/dx = (p - t) * d focal / d ce.
template <class T>
CBL_HD LossAndSlope<T> binary_focal(T x, T t, T gamma) {
  const T ce = bce_with_logits(x, t);
  const FocalFactor<T> f = focal_factor(ce, gamma);
  return {f.loss, (sigmoid(x) - t) * f.dloss_dce};
}

}  // namespace math
}  // namespace cbloss
