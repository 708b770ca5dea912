// The SIMD layout of rows of few classes (C <= 2W, see takes()): W rows at a time, one row per lane of
// a transposed tile (kernels_simd.h).
#pragma once

#include "lane_tile.h"
#include "simd_common.h"

namespace cbloss {
namespace cpu {

template <int W>
struct LaneRows : SimdCommon<W> {
  CBLOSS_SIMD_COMMON_NAMES(W);

  static constexpr int64_t kLaneRowsMaxC = 2 * W;

  // Whether rows of C classes take this layout: up to W classes always; beyond, while the tile's
  // transposes stay cheap. With AVX-512 they are the masked rows' 16 x 16 blocks (lane_tile.h), and
  // rows of up to kMaskedLaneMaxC classes are faster here than held in two registers: CE 16384x20 0.30
  // against 0.46 ms, 65536x24 1.05 against 1.31, 65536x28 9% faster; at 30 equal, at 32 CE 6% and CB
  // focal 13% slower (1 thread). Elsewhere they are the pairs', C ceil(C/2) shuffles and as many blends
  // each way, growing as C^2: beyond about 10 a row — C = 12 at W = 8 — the rows go to registers
  // (simd_register_rows.h; at AVX2 CE 65536x16 1.60 ms here against 1.21 there). (bench/RESULTS.md,
  // issue 29.)
  static constexpr int64_t kMaskedLaneMaxC = 28;
  static constexpr bool takes(int64_t C) {
    if (C <= W) return true;
    if (LaneTile<W>::by_masked_rows(static_cast<int>(C))) return C <= kMaskedLaneMaxC;
    return C <= kLaneRowsMaxC && C * ((C + 1) / 2) <= 10 * W;
  }

  static double rows(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end) {
    const LaneRowsFn lanes = p.classes <= kFixedLaneClasses ? kLaneRowsByC.fn[p.classes] : &lane_rows<0>;
    return lanes(p, ctx, begin, end);
  }


  // lane_rows compiled for each C up to 10 (the common few-class problems: binary, digits, ...), so
  // that its loops over the classes unroll and the tile's transposes inline (bench/RESULTS.md,
  // "Design measurements"); larger C, up to 2W, take the loop over a run-time C. Not for the baseline
  // 4-lane kernels (the fallback): each copy adds ~14 KB to the addon.
  using LaneRowsFn = double (*)(const Problem&, const RunContext&, int64_t, int64_t);
  static constexpr int64_t kFixedLaneClasses = W >= 8 ? 10 : 1;
  struct LaneRowsTable {
    LaneRowsFn fn[kFixedLaneClasses + 1];
  };
  template <int... C>
  static constexpr LaneRowsTable lane_rows_table(std::integer_sequence<int, C...>) {
    return LaneRowsTable{{&lane_rows<(C < 2 ? 0 : C)>...}};  // C = 0, 1: the run-time version
  }
  static constexpr LaneRowsTable kLaneRowsByC = lane_rows_table(std::make_integer_sequence<int, kFixedLaneClasses + 1>{});

  template <int kC>
  static double lane_rows(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end) {
    return sum_tiles(begin, end, [&](int64_t n, int64_t valid) {
      const int64_t C = kC ? kC : p.classes;
      prefetch_ahead(p.logits + n * C, W * C);
      if (p.grad_out) prefetch_ahead_for_write(p.grad_out + n * C, W * C);
      return lane_tile<kC>(p, ctx, n, valid);
    });
  }

  // The losses of rows n0 .. n0 + valid - 1 (valid <= W), one per lane (0 in the other lanes);
  // writes their gradient. kC: the number of classes when fixed at compile time, else 0 (p.classes).
  template <int kC>
  static V lane_tile(const Problem& p, const RunContext& ctx, int64_t n0, int64_t valid) {
    const int64_t C = kC ? kC : p.classes;
    const float eps = static_cast<float>(p.label_smoothing);
    const float smooth = eps / static_cast<float>(C);
    const bool probs = p.targets != nullptr;
    const float* w = ctx.class_weight;

    // Transpose the rows into column vectors z[c] (lane l = row n0 + l); padding lanes are 0.
    alignas(64) float z[kLaneRowsMaxC][W];
    alignas(64) float t[kLaneRowsMaxC][W];
    if (kC && valid == W) {
      LaneTile<W>::template rows_to_columns<kC ? kC : 2>(p.logits + n0 * C, z);
    } else {
      transpose_in(p.logits + n0 * C, C, valid, z);
    }
    if (probs) transpose_in(p.targets + n0 * C, C, valid, t);

    V live;
    const V yf = label_lanes(p, n0, valid, &live);
    if (ctx.map_bias_only) {  // z + b (the logit map without margin and scale)
  #pragma GCC unroll 16
    for (int64_t c = 0; c < C; ++c) (V::load(z[c]) + V(ctx.logit_bias[c])).store(z[c]);
    } else if (ctx.map_logits) {  // the logit map (core/logit_map.h): z' in place of z in the tile
  #pragma GCC unroll 16
    for (int64_t c = 0; c < C; ++c) {
        const V margin = simd::select(yf == V(static_cast<float>(c)), V(ctx.margin[c]), V(0.0f));
        math::mapped_logit(V::load(z[c]), V(ctx.logit_bias[c]), margin, V(ctx.logit_scale)).store(z[c]);
      }
    }

    // Per-lane values at the label, by a vertical select over the classes.
    V zy(0.0f), wy(0.0f), ay(static_cast<float>(p.alpha_scalar)), rw(1.0f);
    const bool balance = p.balance != Balance::Off;
    if (p.labels) {
      if (balance) rw = V(0.0f);
  #pragma GCC unroll 16
    for (int64_t c = 0; c < C; ++c) {
        const auto at = yf == V(static_cast<float>(c));
        zy = simd::select(at, V::load(z[c]), zy);
        wy = simd::select(at, V(w ? w[c] : 1.0f), wy);
        if (ctx.alpha) ay = simd::select(at, V(ctx.alpha[c]), ay);
        if (balance) rw = simd::select(at, V(ctx.balance_weight[c]), rw);
      }
    } else if (balance) {
      rw = V(0.0f);
  #pragma GCC unroll 16
    for (int64_t c = 0; c < C; ++c) rw += V(ctx.balance_weight[c]) * V::load(t[c]);
    }

    // Pass 1: max, then e = exp(z - m) (kept in z) and the sums.
    V m = V::load(z[0]);
#pragma GCC unroll 16
    for (int64_t c = 1; c < C; ++c) m = simd::vmax(m, V::load(z[c]));
    V S(0.0f), below(0.0f), linear(0.0f), mass(0.0f);
#pragma GCC unroll 16
    for (int64_t c = 0; c < C; ++c) {
      const V d = m - V::load(z[c]);
      const V e = simd::m_exp_neg(d);
      S += e;
      below = simd::select(d != V(0.0f), below + e, below);  // (a masked add)
      e.store(z[c]);
      if (probs) {
        const V wt = V(w ? w[c] : 1.0f) * (V(1.0f - eps) * V::load(t[c]) + V(smooth));
        mass += wt;
        linear += wt * d;
        wt.store(t[c]);  // keep w_c t'_c for the gradient
      } else if (eps != 0.0f) {
        linear += V(w ? w[c] : 1.0f) * d;
      }
    }
    const LaneTerms terms = lane_terms(p, ctx, n0, valid, live, m, S, below, linear, mass, zy, wy, ay, rw);
    if (!p.grad_out) return terms.loss;

    // Pass 2: the gradient columns, then back to rows.
    const auto counted = live != V(0.0f);
    const V k = terms.k, kc = terms.kc, kh = terms.kh, label = terms.label;
    const auto confident = terms.confident != V(0.0f);
#pragma GCC unroll 16
    for (int64_t c = 0; c < C; ++c) {
      V g = kc * V::load(z[c]);
      if (probs) {
        g = g - k * V::load(t[c]);
      } else {
        if (eps != 0.0f) g = g - k * V(smooth * (w ? w[c] : 1.0f));
        g = simd::select(yf == V(static_cast<float>(c)), simd::select(confident, label, g - kh), g);
      }
      g = simd::select(counted, g, V(0.0f));
      g.store(z[c]);
    }
    if (kC && valid == W) {
      LaneTile<W>::template columns_to_rows<kC ? kC : 2>(z, p.grad_out + n0 * C);
    } else {
      transpose_out(z, C, valid, p.grad_out + n0 * C);
    }
    return terms.loss;
  }

  // rows (valid of them, C floats each, contiguous) -> tile[c][lane]; missing lanes 0.
  static void transpose_in(const float* src, int64_t C, int64_t valid, float (*tile)[W]) {
    if (valid == W && C >= 2) {
      LaneTile<W>::kTable.in[C](src, tile);
      return;
    }
    for (int64_t c = 0; c < C; ++c) {
      for (int l = 0; l < W; ++l) tile[c][l] = l < valid ? src[l * C + c] : 0.0f;
    }
  }

  // (Not inlined: inlined into lane_tile, GCC 12 warned that the tile may be read uninitialized,
  // not seeing that the lanes read are the ones written.)
  __attribute__((noinline)) static void transpose_out(float (*tile)[W], int64_t C, int64_t valid, float* dst) {
    if (valid == W && C >= 2) {
      LaneTile<W>::kTable.out[C](tile, dst);
      return;
    }
    for (int l = 0; l < valid; ++l) {
      for (int64_t c = 0; c < C; ++c) dst[l * C + c] = tile[c][l];
    }
  }

};

}  // namespace cpu
}  // namespace cbloss
