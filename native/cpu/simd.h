// SIMD vectors for the CPU kernels: a thin class over the GCC/Clang vector extension, W float lanes,
// with the primitives that native/core/math.h calls (m_exp, m_log, ...), found by argument-dependent
// lookup. One source serves every width: a translation unit compiled with -mavx512f gets zmm code
// for W = 16, one with -mavx2 ymm code for W = 8, the baseline SSE2/NEON code for W = 4.
//
// The exp and log are Cephes-style polynomials (relative error about 2 ulp in float); NaN passes
// through every function, ±Inf and 0 give their limits.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace cbloss {
namespace simd {

// The raw vector types, spelled out per width (a vector_size that depends on a template parameter
// is not reliably supported).
template <int W>
struct Raw;
template <>
struct Raw<4> {
  typedef float f __attribute__((vector_size(16)));
  typedef int32_t i __attribute__((vector_size(16)));
};
template <>
struct Raw<8> {
  typedef float f __attribute__((vector_size(32)));
  typedef int32_t i __attribute__((vector_size(32)));
};
template <>
struct Raw<16> {
  typedef float f __attribute__((vector_size(64)));
  typedef int32_t i __attribute__((vector_size(64)));
};

template <int W>
struct Mask;

template <int W>
struct Vec {
  typedef typename Raw<W>::f raw_t;
  raw_t v;

  Vec() : v(raw_t{}) {}
  Vec(float x) : v(raw_t{} + x) {}  // NOLINT: broadcast, so that T(1) works in math.h
  explicit Vec(raw_t r) : v(r) {}

  static Vec load(const float* p) {
    Vec r;
    std::memcpy(&r.v, p, sizeof(raw_t));
    return r;
  }
  void store(float* p) const { std::memcpy(p, &v, sizeof(raw_t)); }
  float operator[](int i) const { return v[i]; }

  friend Vec operator+(Vec a, Vec b) { return Vec(a.v + b.v); }
  friend Vec operator-(Vec a, Vec b) { return Vec(a.v - b.v); }
  friend Vec operator*(Vec a, Vec b) { return Vec(a.v * b.v); }
  friend Vec operator/(Vec a, Vec b) { return Vec(a.v / b.v); }
  friend Vec operator-(Vec a) { return Vec(-a.v); }
  Vec& operator+=(Vec b) { v += b.v; return *this; }
  Vec& operator*=(Vec b) { v *= b.v; return *this; }
  friend Mask<W> operator>(Vec a, Vec b) { return Mask<W>(a.v > b.v); }
  friend Mask<W> operator>=(Vec a, Vec b) { return Mask<W>(a.v >= b.v); }
  friend Mask<W> operator<(Vec a, Vec b) { return Mask<W>(a.v < b.v); }
  friend Mask<W> operator==(Vec a, Vec b) { return Mask<W>(a.v == b.v); }
  friend Mask<W> operator!=(Vec a, Vec b) { return Mask<W>(a.v != b.v); }
};

template <int W>
struct Mask {
  typedef typename Raw<W>::i raw_t;
  raw_t m;
  explicit Mask(raw_t r) : m(r) {}
  friend Mask operator&(Mask a, Mask b) { return Mask(a.m & b.m); }
  friend Mask operator|(Mask a, Mask b) { return Mask(a.m | b.m); }
};

// v as it is, in a register: the compiler may not fuse the operation that made it into the next one
// (core/logit_map.h: a mapped logit is rounded before the row max is subtracted from it).
template <int W>
inline Vec<W> opaque(Vec<W> v) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__("" : "+x"(v.v));
#elif defined(__aarch64__)
  __asm__("" : "+w"(v.v));
#else
  volatile typename Vec<W>::raw_t held = v.v;
  v.v = held;
#endif
  return v;
}

template <int W>
inline Vec<W> select(Mask<W> mask, Vec<W> a, Vec<W> b) {
  return Vec<W>(mask.m ? a.v : b.v);
}

// Whether every lane of the mask is set.
template <int W>
inline bool all_lanes(Mask<W> mask) {
#if defined(__AVX512F__)
  if constexpr (W == 16) return _mm512_cmpeq_epi32_mask((__m512i)mask.m, _mm512_set1_epi32(-1)) == 0xffff;
#endif
#if defined(__AVX__)
  if constexpr (W == 8) return _mm256_movemask_ps((__m256)mask.m) == 0xff;
#endif
#if defined(__SSE__)
  if constexpr (W == 4) return _mm_movemask_ps((__m128)mask.m) == 0xf;
#endif
  int32_t lanes[W];
  std::memcpy(lanes, &mask.m, sizeof(lanes));
  int32_t all = -1;
  for (int i = 0; i < W; ++i) all &= lanes[i];
  return all != 0;
}

// W int32 lanes converted to float lanes.
template <int W>
inline Vec<W> from_int32(typename Mask<W>::raw_t i) {
  return Vec<W>(__builtin_convertvector(i, typename Vec<W>::raw_t));
}

template <int W>
inline Vec<W> vmax(Vec<W> a, Vec<W> b) {
  return Vec<W>(a.v > b.v ? a.v : b.v);
}

// Horizontal reductions by halving. The halves are taken by a shuffle where the compiler has one:
// a memcpy from the middle of the vector makes it addressable, and GCC then keeps a loop's running
// max or sum (the vector later reduced) in memory — a store and a reload on every iteration, a
// ~10-cycle chain (seen in perf: span_max and the exp sums of wide rows).
#if defined(__clang__) || __GNUC__ >= 12
template <int W, int... I>
inline void split(Vec<W> a, Vec<W / 2>* lo, Vec<W / 2>* hi, std::integer_sequence<int, I...>) {
  lo->v = __builtin_shufflevector(a.v, a.v, I...);
  hi->v = __builtin_shufflevector(a.v, a.v, (I + W / 2)...);
}
#endif

template <int W>
inline void halves(Vec<W> a, Vec<W / 2>* lo, Vec<W / 2>* hi) {
#if defined(__clang__) || __GNUC__ >= 12
  split(a, lo, hi, std::make_integer_sequence<int, W / 2>{});
#else
  std::memcpy(&lo->v, &a.v, sizeof(lo->v));
  std::memcpy(&hi->v, reinterpret_cast<const char*>(&a.v) + sizeof(lo->v), sizeof(hi->v));
#endif
}

template <int W>
inline float hmax(Vec<W> a) {
  if constexpr (W == 4) {
    const float m01 = a[0] > a[1] ? a[0] : a[1];
    const float m23 = a[2] > a[3] ? a[2] : a[3];
    return m01 > m23 ? m01 : m23;
  } else {
    Vec<W / 2> lo, hi;
    halves(a, &lo, &hi);
    return hmax(Vec<W / 2>(lo.v > hi.v ? lo.v : hi.v));
  }
}

#if defined(__clang__) || __GNUC__ >= 12
template <int S, int W, int... I>
inline Vec<W> lanes_swapped(Vec<W> a, std::integer_sequence<int, I...>) {
  return Vec<W>(__builtin_shufflevector(a.v, a.v, (I ^ S)...));
}
#endif

// The max of a's lanes, in every lane: a butterfly of lane swaps and maxima, for a max that would
// be broadcast again at once (no scalar on the way).
template <int W>
inline Vec<W> max_in_all_lanes(Vec<W> a) {
#if defined(__clang__) || __GNUC__ >= 12
  using Lanes = std::make_integer_sequence<int, W>;
  if constexpr (W >= 16) a = vmax(a, lanes_swapped<8>(a, Lanes{}));
  if constexpr (W >= 8) a = vmax(a, lanes_swapped<4>(a, Lanes{}));
  a = vmax(a, lanes_swapped<2>(a, Lanes{}));
  return vmax(a, lanes_swapped<1>(a, Lanes{}));
#else
  return Vec<W>(hmax(a));
#endif
}

template <int W>
inline double hsum(Vec<W> a) {
  if constexpr (W == 4) {
    return (static_cast<double>(a[0]) + static_cast<double>(a[1])) +
           (static_cast<double>(a[2]) + static_cast<double>(a[3]));
  } else {
    Vec<W / 2> lo, hi;
    halves(a, &lo, &hi);
    return hsum(lo + hi);
  }
}

// Reduces W vectors at once (W x W floats, vector r at rows + r W): lane r of the result is op over the
// lanes of vector r. Each step pairs vector i with vector i + H and takes op of two shuffles of the
// pair, so that every output vector holds the partial results of twice as many rows on half as many
// lanes; after log2(W) steps (W - 1 ops and 2(W - 1) shuffles in all, against W horizontal reductions
// of log2(W) dependent steps each) lane r holds row r. The order comes out natural: a step's output
// lane j holds block j / H of x (even blocks) or of y (odd), and the earlier steps' blocks interleave
// the same way.
constexpr int pair_step_lane(int W, int H, int j, int half) {
  return ((j / H) % 2 ? W : 0) + (j / H / 2) * 2 * H + half * H + j % H;
}

#if defined(__clang__) || __GNUC__ >= 12
template <int W, int H, class Op, int... J>
inline Vec<W> pair_step(Vec<W> x, Vec<W> y, Op op, std::integer_sequence<int, J...>) {
  return op(Vec<W>(__builtin_shufflevector(x.v, y.v, pair_step_lane(W, H, J, 0)...)),
            Vec<W>(__builtin_shufflevector(x.v, y.v, pair_step_lane(W, H, J, 1)...)));
}

template <int W, int H, class Op>
inline void reduce_step(Vec<W>* rows, Op op) {
  for (int i = 0; i < H; ++i) rows[i] = pair_step<W, H>(rows[i], rows[i + H], op, std::make_integer_sequence<int, W>{});
  if constexpr (H > 1) reduce_step<W, H / 2>(rows, op);
}
#endif

template <int W, class Op>
inline Vec<W> transpose_reduce(const float* rows, Op op) {
#if defined(__clang__) || __GNUC__ >= 12
  Vec<W> work[W];
  for (int r = 0; r < W; ++r) work[r] = Vec<W>::load(rows + r * W);
  reduce_step<W, W / 2>(work, op);
  return work[0];
#else
  alignas(64) float out[W];
  for (int r = 0; r < W; ++r) {
    float v = rows[r * W];
    for (int l = 1; l < W; ++l) v = op(Vec<W>(v), Vec<W>(rows[r * W + l]))[0];
    out[r] = v;
  }
  return Vec<W>::load(out);
#endif
}

template <int W>
inline Vec<W> m_abs(Vec<W> x) {
  typedef typename Mask<W>::raw_t I;
  typedef typename Vec<W>::raw_t F;
  const I bits = (I)x.v & 0x7fffffff;
  return Vec<W>((F)bits);
}

// e^x = 2^n e^r with n = round(x / ln2), r = x - n ln2 (|r| <= ln2/2, ln2 split in two for
// precision): e^r by a degree-6 polynomial, 2^n built in the exponent bits (n in [-127, 127]).
template <int W>
inline typename Vec<W>::raw_t exp_reduced(typename Vec<W>::raw_t x, typename Vec<W>::raw_t fx) {
  typedef typename Vec<W>::raw_t F;
  typedef typename Mask<W>::raw_t I;
  const F n = (fx + 12582912.0f) - 12582912.0f;  // round to nearest
  F r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  F p = F{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const I bits = (__builtin_convertvector(n, I) + 127) << 23;
  return p * (F)bits;
}

// e^x given fx = x log2(e) <= 127, with the float range's lower limit: 0 below -87.3 (also for
// x = -inf, where the polynomial gives NaN); NaN passes.
template <int W>
inline typename Vec<W>::raw_t exp_above_limit(typename Vec<W>::raw_t xv, typename Vec<W>::raw_t fx) {
  typedef typename Vec<W>::raw_t F;
  fx = fx < -127.0f ? F{} - 127.0f : fx;  // keeps NaN
  const F result = exp_reduced<W>(xv, fx);
  return xv < -87.3365448f ? F{} : result;
}

// e^x for any x: the float range's limits (0 below, inf above); NaN passes.
template <int W>
inline Vec<W> m_exp(Vec<W> x) {
  typedef typename Vec<W>::raw_t F;
  const F xv = x.v;
  F fx = xv * 1.44269504088896341f;
  fx = fx > 127.0f ? F{} + 127.0f : fx;
  const F result = exp_above_limit<W>(xv, fx);
  return Vec<W>(xv > 88.7228391f ? F{} + std::numeric_limits<float>::infinity() : result);
}

// Whether scale_by_pow2 has vscalefps (AVX-512), which takes any n.
#if defined(__AVX512F__)
constexpr bool kHasScalef = true;
#else
constexpr bool kHasScalef = false;
#endif

// p * 2^n for integral n with p * 2^n normal (n is a float holding an integer); with vscalefps any n.
template <int W>
inline typename Vec<W>::raw_t scale_by_pow2(typename Vec<W>::raw_t p, typename Vec<W>::raw_t n) {
#if defined(__AVX512F__)
  // (the all-lanes maskz form: GCC 12's plain _mm512_scalef_ps warns on its undefined passthrough)
  if constexpr (W == 16) return (typename Vec<W>::raw_t)_mm512_maskz_scalef_ps(0xffff, (__m512)p, (__m512)n);
#endif
  typedef typename Mask<W>::raw_t I;
  return (typename Vec<W>::raw_t)((I)p + (__builtin_convertvector(n, I) << 23));
}

// x rounded to the nearest integer, ties to even (|x| < 2^22): one instruction where the instruction
// set rounds (AVX-512, AVX), else adding and subtracting 1.5 * 2^23. (AVX-512: the all-lanes maskz
// forms, as in scale_by_pow2.)
template <int W>
inline typename Vec<W>::raw_t round_to_nearest(typename Vec<W>::raw_t x) {
#if defined(__AVX512F__)
  if constexpr (W == 16) return (typename Vec<W>::raw_t)_mm512_maskz_roundscale_ps(0xffff, (__m512)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#endif
#if defined(__AVX__)
  if constexpr (W == 8) return (typename Vec<W>::raw_t)_mm256_round_ps((__m256)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#endif
  return (x + 12582912.0f) - 12582912.0f;
}

// lo > x ? lo : x, lane by lane: x where x is NaN. One max instruction (its second operand is the one
// it returns for a NaN); GCC lowered the select to a compare and a blend.
template <int W>
inline typename Vec<W>::raw_t max_or_nan(typename Vec<W>::raw_t lo, typename Vec<W>::raw_t x) {
#if defined(__AVX512F__)
  if constexpr (W == 16) return (typename Vec<W>::raw_t)_mm512_maskz_max_ps(0xffff, (__m512)lo, (__m512)x);
#endif
#if defined(__AVX__)
  if constexpr (W == 8) return (typename Vec<W>::raw_t)_mm256_max_ps((__m256)lo, (__m256)x);
#endif
  return lo > x ? lo : x;
}

// a * b + c with one rounding where the instruction set has FMA (callers check kHasFma).
#if defined(__AVX512F__)
constexpr bool kHasFma16 = true;
#else
constexpr bool kHasFma16 = false;
#endif
#if defined(__FMA__)
constexpr bool kHasFma8 = true;
#else
constexpr bool kHasFma8 = false;
#endif
template <int W>
constexpr bool kHasFma = (W == 16 && kHasFma16) || (W == 8 && kHasFma8);

template <int W>
inline typename Vec<W>::raw_t fused_multiply_add(typename Vec<W>::raw_t a, typename Vec<W>::raw_t b,
                                                 typename Vec<W>::raw_t c) {
#if defined(__AVX512F__)
  if constexpr (W == 16) return (typename Vec<W>::raw_t)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#endif
#if defined(__FMA__)
  if constexpr (W == 8) return (typename Vec<W>::raw_t)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#endif
  return a * b + c;
}

// e^x for x <= 0 (or NaN), e^-|x| of the element losses. With FMA, in base 2: n = round(x log2 e)
// and f = x log2 e - n in [-1/2, 1/2], formed by two FMAs with log2 e split into two floats (f then
// carries an absolute error of ~2^-25 for |x| <= 104, ~2e-8 relative in 2^f); 2^f by a degree-6
// minimax polynomial (relative error 1.9e-9, ~1e-7 after float rounding); 2^n put into the exponent
// by vscalefps with AVX-512 — which rounds into the subnormals and to 0 by itself — or with AVX2 by
// a multiplication with 2^n built in the exponent bits, with 0 below -87.3 as m_exp. x is clamped
// at -104 (e^-104 rounds to 0 in float; x = -inf gives 0, not the polynomial's NaN); NaN passes. 13 vector operations with AVX-512
// where m_exp takes ~21 (bench/RESULTS.md, "Design measurements"). Without FMA, m_exp less its
// clamps against overflow.
template <int W>
inline Vec<W> m_exp_nonpositive(Vec<W> x) {
  typedef typename Vec<W>::raw_t F;
  if constexpr (kHasFma<W>) {
    const F xv = max_or_nan<W>(F{} - 104.0f, x.v);
    const F n = round_to_nearest<W>(xv * 1.44269504088896341f);
    F f = fused_multiply_add<W>(xv, F{} + 1.44269502162933349609375f, -n);
    f = fused_multiply_add<W>(xv, F{} + 1.925963033500011e-8f, f);
    F p = F{} + 1.5345812426e-4f;
    p = p * f + 1.3399930904e-3f;
    p = p * f + 9.6184890717e-3f;
    p = p * f + 5.5503286421e-2f;
    p = p * f + 2.4022646248e-1f;
    p = p * f + 6.9314718246e-1f;
    p = p * f + 1.0f;
#if defined(__AVX512F__)
    if constexpr (W == 16) return Vec<W>(scale_by_pow2<W>(p, n));
#endif
    typedef typename Mask<W>::raw_t I;
    const F pow2n = (F)((__builtin_convertvector(n, I) + 127) << 23);  // normal down to -87.34
    return Vec<W>(xv < -87.3365448f ? F{} : p * pow2n);
  }
  return Vec<W>(exp_above_limit<W>(x.v, x.v * 1.44269504088896341f));
}

// A non-temporal store of a vector to p, which must be aligned to the vector's size (an ordinary
// store where the instruction set has none).
template <int W>
inline void stream_store(Vec<W> v, float* p) {
#if defined(__AVX512F__)
  if constexpr (W == 16) return _mm512_stream_ps(p, (__m512)v.v);
#endif
#if defined(__AVX__)
  if constexpr (W == 8) return _mm256_stream_ps(p, (__m256)v.v);
#endif
#if defined(__SSE__)
  if constexpr (W == 4) return _mm_stream_ps(p, (__m128)v.v);
#endif
  v.store(p);
}

// e^-d for d >= 0 (or NaN), the softmax exponential. It only has to be accurate against the row's
// sum S >= 1 (every use is e / S or log S), which allows a shorter path than m_exp's: e^-d = 2^t
// with t = -d log2(e) rounded to float — an error of at most |t| 2^-24 in t, e |t| ln2 2^-24
// <= 2.2e-8 in e, relative 2^-24 |t| ln2 (8e-7 at t = -20, where e ~ 1e-6) — then t = n + f,
// |f| <= 1/2, 2^f by a degree-5 minimax polynomial (relative error 9e-8, ~2e-7 after float
// rounding; degree 6 gives 2e-9 and was slower (bench/RESULTS.md, "Design measurements")), and 2^n put in the
// exponent: 11 vector operations with AVX-512 instead of m_exp's ~19. t is clamped (d = inf, or a
// NaN-free t for the polynomial): with AVX-512 at -160, where vscalefps rounds 2^t into the
// subnormals and to 0 by itself; otherwise at -126, so that the 2^n built in the exponent bits stays
// normal (e^-87.3 ~ 1e-38 instead of less: no effect at float precision on a sum that includes
// e^0 = 1). Not at -126 with AVX-512: each such 2^-126 made the gradient's k e a subnormal product,
// and rows of logits 30 apart (LDAM's scale) took ~10% longer (bench/RESULTS.md). NaN passes.
template <int W>
constexpr float kExpNegFloor = W == 16 && kHasScalef ? -160.0f : -126.0f;

template <int W>
inline Vec<W> m_exp_neg(Vec<W> d) {
  typedef typename Vec<W>::raw_t F;
  const F t = max_or_nan<W>(F{} + kExpNegFloor<W>, d.v * -1.44269504088896341f);
  const F n = round_to_nearest<W>(t);
  const F f = t - n;
  F p = F{} + 1.3264727313e-3f;
  p = p * f + 9.6715129912e-3f;
  p = p * f + 5.5507335812e-2f;
  p = p * f + 2.4022242427e-1f;
  p = p * f + 6.9314700365e-1f;
  p = p * f + 1.0f;
  return Vec<W>(scale_by_pow2<W>(p, n));
}

// e^x - 1: a Taylor polynomial for |x| < 0.5 (no cancellation near 0), e^x - 1 elsewhere.
template <int W>
inline Vec<W> m_expm1(Vec<W> x) {
  const Vec<W> e = m_exp(x) - Vec<W>(1.0f);
  Vec<W> p(1.0f / 40320.0f);
  p = p * x + Vec<W>(1.0f / 5040.0f);
  p = p * x + Vec<W>(1.0f / 720.0f);
  p = p * x + Vec<W>(1.0f / 120.0f);
  p = p * x + Vec<W>(1.0f / 24.0f);
  p = p * x + Vec<W>(1.0f / 6.0f);
  p = p * x + Vec<W>(0.5f);
  p = p * x * x + x;
  return select(m_abs(x) < Vec<W>(0.5f), p, e);
}

// The terms of log(1 + m) from m^3 on, m z P(m) with z = m^2, for m in [sqrt(1/2) - 1, sqrt(2) - 1]
// (Cephes' logf polynomial): log(1 + m) = m - z / 2 + m z P(m).
template <int W>
inline typename Vec<W>::raw_t log_cubic_terms(typename Vec<W>::raw_t m, typename Vec<W>::raw_t z) {
  typedef typename Vec<W>::raw_t F;
  F p = F{} + 7.0376836292e-2f;
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  return m * z * p;
}

// log x: x = 2^e m, m in [sqrt(1/2), sqrt(2)); log(m) by a degree-9 polynomial in m - 1.
// With AVX-512, e and m come from vgetexpps and vgetmantps, which also give the special cases
// their limits (0: e = -inf; +inf: e = +inf; x < 0 or NaN: m = NaN; subnormal x: its exponent), so
// that e ln2 + log m needs no tests: 21 vector operations instead of ~36 (its relative error, 8e-8 on
// 3.2M points, as the bit-field version's). ln2 is one float there: its error, 3e-9 relative, is below
// half an ulp of e ln2 for every e.
template <int W>
inline Vec<W> m_log(Vec<W> x) {
  typedef typename Vec<W>::raw_t F;
  typedef typename Mask<W>::raw_t I;
  const F xv = x.v;
#if defined(__AVX512F__)
  if constexpr (W == 16) {
    // (the all-lanes maskz forms: see scale_by_pow2)
    __m512 f = _mm512_maskz_getmant_ps(0xffff, (__m512)xv, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_nan);  // [1, 2)
    __m512 e = _mm512_maskz_getexp_ps(0xffff, (__m512)xv);
    const __mmask16 high = _mm512_cmp_ps_mask(f, _mm512_set1_ps(1.41421356237309505f), _CMP_GE_OQ);
    f = _mm512_mask_mul_ps(f, high, f, _mm512_set1_ps(0.5f));
    e = _mm512_mask_add_ps(e, high, e, _mm512_set1_ps(1.0f));
    const F m = (F)f - 1.0f;
    const F z = m * m;
    const F y = log_cubic_terms<W>(m, z) - z * 0.5f;
    return Vec<W>((F)e * 0.693147180559945309f + (m + y));
  }
#endif
  const I bits = (I)xv;
  I ex = ((bits >> 23) & 0xff) - 126;
  const I mbits = (bits & 0x007fffff) | 0x3f000000;  // m in [0.5, 1)
  F m = (F)mbits;
  const I small = m < 0.707106781186547524f;
  ex = small ? ex - 1 : ex;
  m = small ? m + m - 1.0f : m - 1.0f;
  const F e = __builtin_convertvector(ex, F);
  const F z = m * m;
  F y = log_cubic_terms<W>(m, z);
  y = y - e * 2.12194440e-4f;
  y = y - z * 0.5f;
  F result = m + y + e * 0.693359375f;
  const float inf = std::numeric_limits<float>::infinity();
  result = xv == 0.0f ? F{} - inf : result;
  result = xv < 0.0f ? F{} + std::numeric_limits<float>::quiet_NaN() : result;
  result = xv == inf ? F{} + inf : result;
  result = xv != xv ? xv : result;  // NaN stays NaN
  return Vec<W>(result);
}

// log(1 + x), exact to rounding for small x: log(u) * x / (u - 1) with u = 1 + x.
template <int W>
inline Vec<W> m_log1p(Vec<W> x) {
  const Vec<W> u = x + Vec<W>(1.0f);
  const Vec<W> d = u - Vec<W>(1.0f);
  return select(d == Vec<W>(0.0f), x, m_log(u) * (x / d));
}

// log(1 + x) for x in [0, 1], the softplus term log1p(e^-|x|) of every element loss (NaN passes):
// log(1 + x) = 2 atanh(s) with s = x / (2 + x) in [0, 1/3], and 2 atanh(s) = s P(s^2), P a degree-4
// minimax polynomial on [0, 1/9] (relative error 4e-9; ~2.3e-7 after float rounding, checked on
// 400k points). One division, no range split, exact to rounding near 0 (s P = x): 8 vector
// operations where the logf polynomial of m_log with a split at sqrt(2) took ~19 (bench/RESULTS.md,
// "Design measurements").
template <int W>
inline Vec<W> m_log1p_unit(Vec<W> x) {
  typedef typename Vec<W>::raw_t F;
  const F s = x.v / (x.v + 2.0f);
  const F u = s * s;
  F p = F{} + 2.8178346157e-1f;
  p = p * u + 2.7960601449e-1f;
  p = p * u + 4.0024909377e-1f;
  p = p * u + 6.6666316986e-1f;
  p = p * u + 2.0f;
  return Vec<W>(s * p);
}

// x^g for x >= 0 (0^0 = 1, 0^g = 0 for g > 0).
template <int W>
inline Vec<W> m_pow(Vec<W> x, float g) {
  if (g == 2.0f) return x * x;
  if (g == 1.0f) return x;
  if (g == 0.0f) return Vec<W>(1.0f);
  return m_exp(Vec<W>(g) * m_log(x));
}

// x^g for x >= 0 with an exponent per lane (the asymmetric loss's gamma_t): 0^0 = 1, 0^g = 0 for g > 0.
template <int W>
inline Vec<W> m_pow(Vec<W> x, Vec<W> g) {
  const Vec<W> zero(0.0f), one(1.0f);
  return select(x > zero, m_exp(g * m_log(x)), select(g == zero, one, select(x == zero, zero, x * g)));
}

}  // namespace simd
}  // namespace cbloss
