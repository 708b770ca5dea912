// Transposes between W rows of C < = 2W logits (row-major, contiguous: C vectors of W floats) and
// the column tile of the one-row-per-lane layout (column c = the c-th logit of each of the W rows),
// in registers, by two-source shuffles whose index vectors are compile-time constants (with AVX-512,
// tiles of 7 to 32 columns by masked row loads and stores around 16 x 16 transposes: by_masked_rows).
//
// Why: with one scalar load and one scalar store per logit each way, the transposes took about two
// thirds of a small-C softmax row (perf, C = 2 and 10, AVX-512). Here each column (or row-major
// output vector) is assembled from the ~C/2 pairs of source vectors that hold its lanes — one shuffle
// and one constant blend per pair: C * ceil(C/2) shuffles per tile each way (2 for C = 2, 50 for
// C = 10) instead of W * C loads and stores.
//
// Lane l of column c is element l*C + c of the rows: vector (l*C + c) / W, lane (l*C + c) % W.
// Element j*W + i of the rows (lane i of row-major vector j) is column (j*W + i) % C, lane
// (j*W + i) / C. Sources are paired (0,1), (2,3), ... and, when their count n is odd, (n-2, n-1) last.
#pragma once

#include <cstdint>
#include <utility>

#include "simd.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace cbloss {
namespace cpu {

template <int W>
struct LaneTile {
  using V = simd::Vec<W>;
  using Raw = typename V::raw_t;
  using RawI = typename simd::Mask<W>::raw_t;
  using Lanes = std::make_integer_sequence<int, W>;
  static constexpr int kMaxC = 2 * W;

  // The first vector of the pair that holds source vector s, of n sources.
  static constexpr int pair_of(int s, int n) { return (s & ~1) < n - 1 ? (s & ~1) : n - 2; }
  // The first vector of the p-th pair of n sources.
  static constexpr int pair_start(int p, int n) { return 2 * p < n - 1 ? 2 * p : n - 2; }

  // Lanes (from, index within the pair starting at from) of column c, and of row-major vector j.
  template <int C, int c>
  struct Column {
    static constexpr int from(int l) { return pair_of((l * C + c) / W, C); }
    static constexpr int index(int l, int j) { return from(l) == j ? l * C + c - j * W : 0; }
  };
  template <int C, int j>
  struct RowVector {
    static constexpr int from(int i) { return pair_of((j * W + i) % C, C); }
    static constexpr int index(int i, int c0) { return from(i) == c0 ? ((j * W + i) % C - c0) * W + (j * W + i) / C : 0; }
  };

  // The lanes of a pair of sources (first vector `first`) that `Part::from` assigns to it, merged
  // into r; nothing when it assigns none.
  template <class Part, int first, int... L>
  static V merge(V a, V b, V r, std::integer_sequence<int, L...>) {
    if constexpr (!((Part::from(L) == first) || ...)) {
      return r;
    } else {
#if defined(__clang__)
      const Raw piece = __builtin_shufflevector(a.v, b.v, Part::index(L, first)...);
#else
      const Raw piece = __builtin_shuffle(a.v, b.v, RawI{Part::index(L, first)...});
#endif
      if constexpr (((Part::from(L) == first) && ...)) return V(piece);
      const RawI take{(Part::from(L) == first ? -1 : 0)...};
      return V(take ? piece : r.v);
    }
  }

  template <class Part, int n, int... P>
  static V assemble(const V* src, std::integer_sequence<int, P...>) {
    V r(0.0f);
    ((r = merge<Part, pair_start(P, n)>(src[pair_start(P, n)], src[pair_start(P, n) + 1], r, Lanes{})), ...);
    return r;
  }

  template <int C, int... c>
  static void columns(const V* rows, float (*tile)[W], std::integer_sequence<int, c...>) {
    (assemble<Column<C, c>, C>(rows, std::make_integer_sequence<int, (C + 1) / 2>{}).store(tile[c]), ...);
  }
  template <int C, int... j>
  static void row_vectors(const V* cols, float* dst, std::integer_sequence<int, j...>) {
    (assemble<RowVector<C, j>, C>(cols, std::make_integer_sequence<int, (C + 1) / 2>{}).store(dst + j * W), ...);
  }

  // W rows of C logits at src -> tile[c][l].
  template <int C>
  static void rows_to_columns(const float* src, float (*tile)[W]) {
#if defined(__AVX512F__)
    if constexpr (by_masked_rows(C)) {
      // columns [16 b, 16 b + 16) of the rows, a block at a time
      for (int b = 0; 16 * b < C; ++b) {
        const int width = C - 16 * b < 16 ? C - 16 * b : 16;
        __m512 r[16];
        for (int l = 0; l < 16; ++l) r[l] = _mm512_maskz_loadu_ps(row_mask(width), src + l * C + 16 * b);
        transpose16(r);
        for (int c = 0; c < width; ++c) _mm512_store_ps(tile[16 * b + c], r[c]);
      }
    } else  // (the pairs, below)
#endif
    {
      V rows[C];
      for (int j = 0; j < C; ++j) rows[j] = V::load(src + j * W);
      columns<C>(rows, tile, std::make_integer_sequence<int, C>{});
    }
  }

  // tile[c][l] -> W rows of C floats at dst.
  template <int C>
  static void columns_to_rows(float (*tile)[W], float* dst) {
#if defined(__AVX512F__)
    if constexpr (by_masked_rows(C)) {
      for (int b = 0; 16 * b < C; ++b) {
        const int width = C - 16 * b < 16 ? C - 16 * b : 16;
        __m512 r[16];
        for (int c = 0; c < 16; ++c) r[c] = c < width ? _mm512_load_ps(tile[16 * b + c]) : _mm512_setzero_ps();
        transpose16(r);
        for (int l = 0; l < 16; ++l) _mm512_mask_storeu_ps(dst + l * C + 16 * b, row_mask(width), r[l]);
      }
    } else  // (the pairs, below)
#endif
    {
      V cols[C];
      for (int c = 0; c < C; ++c) cols[c] = V::load(tile[c]);
      row_vectors<C>(cols, dst, std::make_integer_sequence<int, C>{});
    }
  }

  // With AVX-512, a tile of C >= kMaskedRowsFromC columns is moved a row at a time by masked loads and
  // stores, 16 columns at a time, each block transposed as 16 x 16 by in-lane unpacks and 128-bit block
  // shuffles: 64 shuffles with immediate controls a block (fewer when only some columns are kept),
  // against the pairs' C ceil(C/2) two-source shuffles, each with an index vector to load, and as many
  // blends (bench/RESULTS.md, design measurements).
  static constexpr int kMaskedRowsFromC = 7;
  static constexpr bool by_masked_rows(int C) {
#if defined(__AVX512F__)
    return W == 16 && C >= kMaskedRowsFromC;
#else
    (void)C;
    return false;  // (no masked loads)
#endif
  }
#if defined(__AVX512F__)
  static __mmask16 row_mask(int C) { return static_cast<__mmask16>((1u << C) - 1u); }
  // Lanes `index` of a (0 .. 15) and b (16 .. 31).
  template <int... index>
  static __m512 shuffle2(__m512 a, __m512 b) {
#if defined(__clang__)
    return __builtin_shufflevector(a, b, index...);
#else
    using Index = int __attribute__((vector_size(64)));
    return __builtin_shuffle(a, b, Index{index...});
#endif
  }
  // Within each 128-bit block k of a and b (lanes 4k .. 4k + 3; b's lanes numbered from 16), lanes
  // (first, second) of a and of b interleaved — unpcklps for (0, 1), unpckhps for (2, 3) — or taken as
  // pairs — unpcklpd for (0, 1), unpckhpd for (2, 3). (Written as shuffles: GCC 12's unpack intrinsics
  // warn of their own undefined pass-through operand.)
  template <int first, bool kInterleave, int... k>
  static __m512 within_blocks(__m512 a, __m512 b, std::integer_sequence<int, k...>) {
    constexpr int lane[4] = {first, kInterleave ? 16 + first : first + 1, kInterleave ? first + 1 : 16 + first, 17 + first};
    return shuffle2<(4 * (k / 4) + lane[k % 4])...>(a, b);
  }
  template <int first, bool kInterleave>
  static __m512 within_blocks(__m512 a, __m512 b) {
    return within_blocks<first, kInterleave>(a, b, std::make_integer_sequence<int, 16>{});
  }
  // 128-bit blocks (a's b0, a's b1, b's b2, b's b3): vshuff32x4.
  template <int b0, int b1, int b2, int b3, int... i>
  static __m512 blocks(__m512 a, __m512 b, std::integer_sequence<int, i...>) {
    constexpr int from[4] = {4 * b0, 4 * b1, 16 + 4 * b2, 16 + 4 * b3};
    return shuffle2<(from[i / 4] + i % 4)...>(a, b);
  }
  template <int b0, int b1, int b2, int b3>
  static __m512 blocks(__m512 a, __m512 b) {
    return blocks<b0, b1, b2, b3>(a, b, std::make_integer_sequence<int, 16>{});
  }
  // r[i] = row i -> r[c] = column c. After the interleaves and pairs, u[4g + j] holds in its 128-bit
  // block b the column 4b + j of rows 4g .. 4g + 3; two rounds of block shuffles gather column 4b + j's
  // four blocks.
  __attribute__((always_inline)) static void transpose16(__m512 (&r)[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = within_blocks<0, true>(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = within_blocks<2, true>(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; ++g) {
      u[4 * g] = within_blocks<0, false>(t[4 * g], t[4 * g + 2]);
      u[4 * g + 1] = within_blocks<2, false>(t[4 * g], t[4 * g + 2]);
      u[4 * g + 2] = within_blocks<0, false>(t[4 * g + 1], t[4 * g + 3]);
      u[4 * g + 3] = within_blocks<2, false>(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int j = 0; j < 4; ++j) {
      const __m512 v_low = blocks<0, 1, 0, 1>(u[j], u[4 + j]), v_high = blocks<2, 3, 2, 3>(u[j], u[4 + j]);
      const __m512 w_low = blocks<0, 1, 0, 1>(u[8 + j], u[12 + j]), w_high = blocks<2, 3, 2, 3>(u[8 + j], u[12 + j]);
      r[j] = blocks<0, 2, 0, 2>(v_low, w_low);
      r[4 + j] = blocks<1, 3, 1, 3>(v_low, w_low);
      r[8 + j] = blocks<0, 2, 0, 2>(v_high, w_high);
      r[12 + j] = blocks<1, 3, 1, 3>(v_high, w_high);
    }
  }
#endif

  using InFn = void (*)(const float*, float (*)[W]);
  using OutFn = void (*)(float (*)[W], float*);
  struct Table {
    InFn in[kMaxC + 1];
    OutFn out[kMaxC + 1];
  };
  template <int... C>
  static constexpr Table make_table(std::integer_sequence<int, C...>) {
    // Entries 0 and 1 are null: a one-class row has no pair to shuffle.
    return Table{{(C < 2 ? nullptr : &rows_to_columns<(C < 2 ? 2 : C)>)...},
                 {(C < 2 ? nullptr : &columns_to_rows<(C < 2 ? 2 : C)>)...}};
  }
  // Transposes of a full tile, by C (2 ... 2W).
  static constexpr Table kTable = make_table(std::make_integer_sequence<int, kMaxC + 1>{});
};

}  // namespace cpu
}  // namespace cbloss
