// What the SIMD layouts of the CPU kernels share (kernels_simd.h picks the layout, one header each):
// lane masks, prefetching, labels as float lanes, partial vectors, and lane_terms, the row epilogue of
// the two layouts that hold W rows in the lanes of vectors (row_epilogue.h has what it shares with
// the wide rows and the scalar rows).
#pragma once

#include <cmath>
#include <cstring>
#include <limits>

#include "../core/logit_map.h"
#include "../core/loss_terms.h"
#include "../core/reductions.h"
#include "cpu_internal.h"
#include "row_epilogue.h"
#include "simd.h"

namespace cbloss {
namespace cpu {

template <int W>
struct SimdCommon {
  using V = simd::Vec<W>;
  // W zeros, W ones, W zeros: a window of W into it is a lane mask of 0.0 / 1.0.
  struct StepTable {
    float v[3 * W];
    constexpr StepTable() : v() {
      for (int i = 0; i < 3 * W; ++i) v[i] = i >= W && i < 2 * W ? 1.0f : 0.0f;
    }
  };
  static constexpr StepTable kStep{};
  // Streams read once are prefetched this many floats (1 KB) ahead, and the gradient rows of the
  // row kernels too, for writing (prefetchw: their lines are fetched for ownership before the stores
  // wait on them): beyond the caches the hardware prefetchers alone left the loops waiting on memory
  // (the element losses' gradient gained nothing) (bench/RESULTS.md, "Design measurements").
  static constexpr int64_t kPrefetchAhead = 256;


  // Asks for the cache lines of [from, from + len), kPrefetchAhead floats further on; for_write: lines
  // about to be written (prefetchw: fetched for ownership before the stores need them).
  static constexpr int64_t kLineFloats = 64 / sizeof(float);
  static void prefetch_ahead(const float* from, int64_t len) {
    for (int64_t c = 0; c < len; c += kLineFloats) __builtin_prefetch(from + kPrefetchAhead + c, 0);
  }
  static void prefetch_ahead_for_write(const float* from, int64_t len) {
    for (int64_t c = 0; c < len; c += kLineFloats) __builtin_prefetch(from + kPrefetchAhead + c, 1);
  }

  static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
  static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

  static float class_weight(const RunContext& ctx, int64_t c) {
    return ctx.class_weight ? ctx.class_weight[c] : 1.0f;
  }

  // An ignored row: no loss, a zero gradient.
  static double zero_row(const Problem& p, int64_t n, float* g) {
    if (g) {
      for (int64_t c = 0; c < p.classes; ++c) g[c] = 0.0f;
    }
    if (p.loss_out) p.loss_out[n] = 0.0f;
    return 0.0;
  }

  static bool ignored(const Problem& p, int64_t n) {
    return row_ignored(p.loss, p.labels, p.ignore_index, n);
  }

  // 0, 1, ..., W - 1: the column of each lane of a vector at column 0.
  struct IotaTable {
    float v[W];
    constexpr IotaTable() : v() {
      for (int i = 0; i < W; ++i) v[i] = static_cast<float>(i);
    }
  };
  static constexpr IotaTable kIota{};

  // z'_y of a row whose label is y (z: the row's logits), bit for bit what the vector map gives the
  // label's lane (core/logit_map.h); z_y without a map.
  static float mapped_label_logit(const RunContext& ctx, const float* z, int64_t y) {
    if (!ctx.map_logits) return z[y];
    return math::mapped_logit(z[y], ctx.logit_bias[y], ctx.margin[y], ctx.logit_scale);
  }

  // Rows [begin, end) in tiles of W. The tiles' loss vectors are summed in float lanes, flushed to
  // double every kLaneFlush tiles, not each tile (bench/RESULTS.md, "Design measurements"). The
  // grouping starts at `begin`, a chunk boundary fixed by the problem, so the total does not depend on
  // the thread count.
  static constexpr int kLaneFlush = 16;

  template <class Tile>
  static double sum_tiles(int64_t begin, int64_t end, Tile tile) {
    double total = 0.0;
    int64_t n = begin;
    while (n < end) {
      V sum(0.0f);
      for (int i = 0; i < kLaneFlush && n < end; ++i, n += W) sum += tile(n, min64(W, end - n));
      total += simd::hsum(sum);
    }
    return total;
  }

  // The labels of rows n0 .. n0 + valid - 1 as float lanes (exact: C <= 8W here), -1 for ignored
  // rows, missing rows and problems without labels; *live is 1.0 in the lanes that count (real rows,
  // not ignored), else 0.0.
  static V label_lanes(const Problem& p, int64_t n0, int64_t valid, V* live) {
    *live = live_lanes(valid);
    if (!p.labels) return V(-1.0f);
    using RawI = typename simd::Mask<W>::raw_t;
    RawI yi;
    if (valid == W) {
      std::memcpy(&yi, p.labels + n0, sizeof(yi));
    } else {
      for (int l = 0; l < W; ++l) yi[l] = l < valid ? p.labels[n0 + l] : -1;
    }
    if (uses_ignore_index(p.loss)) yi = yi == p.ignore_index ? RawI{} - 1 : yi;
    const V yf = simd::from_int32<W>(yi);
    *live = simd::select(yf >= V(0.0f), *live, V(0.0f));
    return yf;
  }

  // The row scalars of W rows, one per lane, from their max m, sum S = sum_c exp(z_c - m), linear
  // sums, and values at the label: the loss (rw times the row's loss; exactly 0 in lanes that do not
  // count, also where their logits are NaN), written to loss_out; the gradient's scales.
  struct LaneTerms {
    V loss;
    V k;   // upstream gradient times row weight (0 where the lane does not count)
    V kc;  // k coef / S: the factor of e_c
    V kh;  // k hit: subtracted at the label
    // A confident row whose label holds its max (z_y = m, S < 1.5: `confident` 1.0, else 0.0) has its
    // label's gradient `label` = -kc below + k (coef - hit) - k q'_y (math::label_minus_sum: kc e_y - kh
    // cancels there); other rows take kc e_y - kh - k q'_y, as every other column.
    V label;
    V confident;
  };

  static LaneTerms lane_terms(const Problem& p, const RunContext& ctx, int64_t n0, int64_t valid, V live, V m,
                              V S, V below, V linear, V mass, V zy, V wy, V ay, V rw) {
    const V inv_s = V(1.0f) / S;
    const math::SoftmaxSums<V> sums{m - zy, math::log_row_sum(S, below, inv_s), linear, mass};
    const V sample = p.sample_weight ? (valid == W ? V::load(p.sample_weight + n0) : load_tail(p.sample_weight + n0, valid, 0.0f))
                                     : V(1.0f);
    const V go = ctx.per_element ? load_tail(p.grad_output + n0, valid, 0.0f) : V(static_cast<float>(ctx.reduced_scale));
    math::RowEnd<V> end = math::finish_row(p.loss, p.targets != nullptr, sums, inv_s, wy, ay, ctx.row_float, rw, sample,
                                           go, ctx.logit_scale);
    const auto counted = live != V(0.0f);
    LaneTerms out;
    out.loss = simd::select(counted, end.loss, V(0.0f));
    if (p.loss_out) {
      if (valid == W) {
        out.loss.store(p.loss_out + n0);
      } else {
        store_tail(p.loss_out + n0, out.loss, valid);
      }
    }
    end.k = simd::select(counted, end.k, V(0.0f));
    out.k = end.k;
    out.kc = end.kc();
    out.kh = end.kh();
    if (p.labels) {
      out.confident = simd::select((zy == m) & (S < V(1.5f)), V(1.0f), V(0.0f));
      // (a confident row's e_y = 1 exactly, so its gap is -below)
      out.label = end.label(V(0.0f) - below, ctx.row_float.label_smoothing != 0.0f ? V(ctx.row_float.smooth) * wy : V(0.0f));
    }
    return out;
  }

  // The logits of a row as stored (the wide rows' readers: simd_wide_rows.h).
  struct PlainRow {
    PlainRow from(int64_t) const { return *this; }
    V at(const float* z, int64_t c) const { return V::load(z + c); }
  };

  // The part of a row's S from logits below its max m (math::log_row_sum), over a span of len >= W
  // covered as fresh_lanes describes: the exponentials e = exp(z - m) parked there, or (kRecompute) the
  // logits themselves, whose exponentials are taken again. Only a confident row needs it — one whose
  // S < 2, where log S is small and log(S) of S rounded to float loses it — so the layouts that park
  // their exponentials sum them a second time (from L1) for those rows alone, rather than masking every
  // element of the first pass (bench/RESULTS.md, "Design measurements"). The max's
  // own e^0 = 1 (exactly: m_exp_neg(0) = 1), and any tie's, is left out; `last_keep` masks the lanes of
  // the last vector that an earlier one covered.
  template <bool kRecompute = false, class Row = PlainRow>
  static double below_max(const float* src, int64_t len, V last_keep, float m = 0.0f, const Row& row = Row{}) {
    auto value = [&](int64_t c) __attribute__((always_inline)) {
      return kRecompute ? simd::m_exp_neg(V(m) - row.at(src, c)) : V::load(src + c);
    };
    auto below = [](V e) __attribute__((always_inline)) { return simd::select(e != V(1.0f), e, V(0.0f)); };
    // Four sums: one chain of dependent additions took 4 cycles a vector, where loading and masking take 1.
    V a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
    const int64_t last = len - W;
    int64_t c = 0;
    for (; c + 4 * W <= last; c += 4 * W) {
      a0 += below(value(c));
      a1 += below(value(c + W));
      a2 += below(value(c + 2 * W));
      a3 += below(value(c + 3 * W));
    }
    for (; c < last; c += W) a0 += below(value(c));
    a1 += below(value(last) * last_keep + (V(1.0f) - last_keep));  // masked lanes: 1, left out
    return simd::hsum((a0 + a1) + (a2 + a3));
  }

  // Loads n (< W) floats into a vector, the other lanes set to `pad`.
  static V load_tail(const float* src, int64_t n, float pad) {
    alignas(64) float tmp[W];
    for (int i = 0; i < W; ++i) tmp[i] = i < n ? src[i] : pad;
    return V::load(tmp);
  }
  static void store_tail(float* dst, V v, int64_t n) {
    alignas(64) float tmp[W];
    v.store(tmp);
    for (int64_t i = 0; i < n; ++i) dst[i] = tmp[i];
  }

  // A span of len >= W floats is covered by whole vectors at 0, W, 2W, ... and, when len is not a
  // multiple of W, one more vector ending at len that overlaps the previous one. fresh_lanes(len)
  // masks that last vector to the lanes no earlier vector covered (1.0 / 0.0); only meaningful when
  // len is not a multiple of W.
  static V fresh_lanes(int64_t len) { return V::load(kStep.v + len % W); }

  // Orders this thread's non-temporal stores before its later stores (x86: they are weakly ordered).
  static void store_fence() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_sfence();
#endif
  }

  // 1.0 in the first n lanes (0 <= n <= W), 0.0 in the others.
  static V live_lanes(int64_t n) { return V::load(kStep.v + 2 * W - n); }

  // A span of the gradient written past the caches, handed over in pieces (a tile of rows, or a
  // block of a row, at a time, from L1): each whole cache line of the span is written by non-temporal
  // stores, and the pieces' ends, which are not line-aligned, are carried over to the next piece
  // rather than written twice (an ordinary store and then a streamed one over the same line made CE
  // 2684354x100 slower: bench/RESULTS.md). Only the span's own partial first and last lines take
  // ordinary stores — so a line shared with the next thread's span is written by ordinary stores on
  // both sides, at every vector width.
  class LineStream {
   public:
    explicit LineStream(float* dst) : dst_(dst) {
      constexpr uintptr_t kLineBytes = sizeof(float) * kLineFloats;
      head_ = static_cast<int>((kLineBytes - reinterpret_cast<uintptr_t>(dst) % kLineBytes) % kLineBytes / sizeof(float));
    }
    void put(const float* src, int64_t n) {
      for (; n > 0 && head_ > 0; --n, --head_) *dst_++ = *src++;
      if (carried_ > 0) {
        const int take = static_cast<int>(min64(kLineFloats - carried_, n));
        std::memcpy(carry_ + carried_, src, sizeof(float) * take);
        carried_ += take;
        src += take;
        n -= take;
        if (carried_ < kLineFloats) return;
        stream_line(carry_);
        carried_ = 0;
      }
      for (; n >= kLineFloats; n -= kLineFloats, src += kLineFloats) stream_line(src);
      std::memcpy(carry_, src, sizeof(float) * n);
      carried_ = static_cast<int>(n);
    }
    // The last partial line; then the streamed stores are ordered before the thread's later ones.
    void finish() {
      std::memcpy(dst_, carry_, sizeof(float) * carried_);
      dst_ += carried_;
      carried_ = 0;
      store_fence();
    }

   private:
    void stream_line(const float* src) {
      for (int i = 0; i < kLineFloats; i += W) simd::stream_store(V::load(src + i), dst_ + i);
      dst_ += kLineFloats;
    }
    alignas(64) float carry_[kLineFloats];
    float* dst_;
    int head_ = 0;     // floats before the first whole line, written as they come
    int carried_ = 0;  // floats of carry_ not yet written
  };
};

// The names of SimdCommon<W> in a layout derived from it (members of a base that depends on W are not
// found by unqualified lookup without a using-declaration).
#define CBLOSS_SIMD_COMMON_NAMES(W) \
  using Common = SimdCommon<W>;      \
  using typename Common::V;          \
  using typename Common::LaneTerms;  \
  using Common::kStep;                     \
  using Common::kIota;                     \
  using Common::kPrefetchAhead;            \
  using Common::prefetch_ahead;            \
  using Common::prefetch_ahead_for_write;  \
  using Common::min64;                     \
  using Common::max64;                     \
  using Common::class_weight;              \
  using Common::zero_row;                  \
  using Common::ignored;                   \
  using Common::mapped_label_logit;        \
  using Common::sum_tiles;                 \
  using Common::label_lanes;               \
  using Common::lane_terms;                \
  using typename Common::PlainRow;         \
  using Common::below_max;                 \
  using Common::load_tail;                 \
  using Common::store_tail;                \
  using Common::fresh_lanes;               \
  using Common::store_fence;               \
  using typename Common::LineStream;       \
  using Common::live_lanes

}  // namespace cpu
}  // namespace cbloss
