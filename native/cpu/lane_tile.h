// Transposes between W rows of C < = 2W logits (row-major, contiguous: C vectors of W floats) and
// the column tile of the one-row-per-lane layout (column c = the c-th logit of each of the W rows),
// in registers, by two-source shuffles whose index vectors are compile-time constants.
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
    V rows[C];
    for (int j = 0; j < C; ++j) rows[j] = V::load(src + j * W);
    columns<C>(rows, tile, std::make_integer_sequence<int, C>{});
  }

  // tile[c][l] -> W rows of C floats at dst.
  template <int C>
  static void columns_to_rows(float (*tile)[W], float* dst) {
    V cols[C];
    for (int c = 0; c < C; ++c) cols[c] = V::load(tile[c]);
    row_vectors<C>(cols, dst, std::make_integer_sequence<int, C>{});
  }

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
