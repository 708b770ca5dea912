// The SIMD layout of rows of W < C <= 8W classes that the lane layout does not take (LaneRows::takes):
// W rows at a time, held in registers two by two (kernels_simd.h).
#pragma once

#include "simd_common.h"

namespace cbloss {
namespace cpu {

template <int W>
struct RegisterRows : SimdCommon<W> {
  CBLOSS_SIMD_COMMON_NAMES(W);

  // A row of W < C <= 8W logits is held in NV = ceil(C / W) vectors (the last one ends at C and
  // overlaps the one before; its repeated lanes are masked out of the sums): read once, gradient
  // written once. Rows go W at a time: each row's max, exponentials (parked in a stack tile, in L1)
  // and sums, kRowsAtOnce rows side by side, then the row scalars of all W rows in the lanes of
  // vectors — log S, the loss terms, the focal factor, the gradient scales — as the one-row-per-lane
  // layout computes them, then each row's gradient. Per row that replaced a double log, the scalar
  // loss terms and a call (bench/RESULTS.md, "Design measurements").
  static constexpr int64_t kRegisterRowsMaxC = 8 * W;
  static constexpr int kRowsAtOnce = 2;
  using RowsFn = double (*)(const Problem&, const RunContext&, int64_t, int64_t);

  static double rows(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end) {
    const int64_t nv = (p.classes + W - 1) / W;
    const bool linear = p.targets != nullptr || ctx.row_float.label_smoothing != 0.0f;
    return (linear ? register_rows_fn<true>(nv) : register_rows_fn<false>(nv))(p, ctx, begin, end);
  }

  // kLinear: the rows have linear terms (probability targets or label smoothing); without them the
  // loops test nothing per vector.
  template <bool kLinear>
  static RowsFn register_rows_fn(int64_t nv) {
    switch (nv) {
      case 2:
        return register_rows<2, kLinear>;
      case 3:
        return register_rows<3, kLinear>;
      case 4:
        return register_rows<4, kLinear>;
      case 5:
        return register_rows<5, kLinear>;
      case 6:
        return register_rows<6, kLinear>;
      case 7:
        return register_rows<7, kLinear>;
      default:
        return register_rows<8, kLinear>;
    }
  }

  template <int NV, bool kLinear>
  static double register_rows(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end) {
    if (!(p.grad_out && ctx.stream_gradient)) {
      return sum_tiles(begin, end, [&](int64_t n, int64_t valid) { return register_group<NV, kLinear>(p, ctx, n, valid, nullptr); });
    }
    LineStream stream(p.grad_out + begin * p.classes);
    const double total = sum_tiles(begin, end, [&](int64_t n, int64_t valid) { return register_group<NV, kLinear>(p, ctx, n, valid, &stream); });
    stream.finish();
    return total;
  }

  // The losses of rows n0 .. n0 + valid - 1 (valid <= W), one per lane (0 in the other lanes);
  // writes their gradient: in place, or (a gradient past the caches) into a stack tile handed to
  // `stream`, which writes it with non-temporal stores.
  template <int NV, bool kLinear>
  static V register_group(const Problem& p, const RunContext& ctx, int64_t n0, int64_t valid, LineStream* stream) {
    const int64_t C = p.classes;
    const int64_t last = C - W;  // offset of the last vector
    auto at = [&](int i) { return i < NV - 1 ? static_cast<int64_t>(i) * W : last; };
    const float* w = ctx.class_weight;
    const float eps = ctx.row_float.label_smoothing;
    const float smooth = ctx.row_float.smooth;
    const bool probs = kLinear && p.targets != nullptr;
    const bool balance = p.balance != Balance::Off;
    const V fresh = C % W == 0 ? V(1.0f) : fresh_lanes(C);  // no overlap when C is a multiple of W

    V live;
    const V yf = label_lanes(p, n0, valid, &live);
    alignas(64) float label[W];
    alignas(64) float counted[W];
    yf.store(label);
    live.store(counted);

    // Pass 1, two rows at a time: max, e = exp(z - m) parked, the values at the label; the sums a
    // vector a row, reduced for all W rows at once afterwards (a horizontal sum per row was a chain of
    // dependent shuffles and conversions: bench/RESULTS.md).
    alignas(64) float park[W][NV * W];
    alignas(64) float mf[W], sf[W], bf[W], lf[W], massf[W], zyf[W], wyf[W], ayf[W], rwf[W];
    alignas(64) float lane_sum[W][W], lane_linear[W][W], lane_mass[W][W];
    for (int r = 0; r < W; ++r) {
      mf[r] = bf[r] = lf[r] = massf[r] = zyf[r] = 0.0f;
      wyf[r] = rwf[r] = 1.0f;
      ayf[r] = ctx.row_float.alpha;
      if (r >= valid) {  // no row: S = 1, no linear terms
        live_lanes(1).store(lane_sum[r]);
        V(0.0f).store(lane_linear[r]);
        V(0.0f).store(lane_mass[r]);
      }
    }
    // Two rows at a time, their steps interleaved: each row's max, its broadcast, its exponentials and
    // their sum are one dependent chain, and beyond the caches two rows' loads are in flight at once
    // (bench/RESULTS.md, issue 29).
    constexpr int K = kRowsAtOnce;
    const auto pass1_rows = [&](const int (&rows)[K]) __attribute__((always_inline)) {
      const float* z[K];
      const float* t[K];
      V v[K][NV];
#pragma GCC unroll 2
      for (int k = 0; k < K; ++k) {
        const int64_t n = n0 + rows[k];
        z[k] = p.logits + n * C;
        t[k] = probs ? p.targets + n * C : nullptr;
        prefetch_ahead(z[k], C);
        if (p.grad_out && !stream) prefetch_ahead_for_write(p.grad_out + n * C, C);
#pragma GCC unroll 8
        for (int i = 0; i < NV; ++i) v[k][i] = V::load(z[k] + at(i));
        if (ctx.map_bias_only) {  // z + b, what the logit map below gives without margin and scale
#pragma GCC unroll 8
          for (int i = 0; i < NV; ++i) v[k][i] = v[k][i] + V::load(ctx.logit_bias + at(i));
        } else if (ctx.map_logits) {  // the logit map (core/logit_map.h)
          // Every column but the label's without a margin, ((z + b) - 0) s, then the label's lane set to
          // its own z'_y: bit for bit the map of each lane, without a margin vector formed per vector.
          const float y = label[rows[k]];
          const V label_logit(y >= 0.0f ? mapped_label_logit(ctx, z[k], static_cast<int64_t>(y)) : 0.0f);
#pragma GCC unroll 8
          for (int i = 0; i < NV; ++i) {
            const V column = V::load(kIota.v) + V(static_cast<float>(at(i)));
            v[k][i] = simd::select(column == V(y), label_logit,
                                   math::mapped_logit(v[k][i], V::load(ctx.logit_bias + at(i)), V(0.0f), V(ctx.logit_scale)));
          }
        }
      }
      V m[K], mv[K];
#pragma GCC unroll 2
      for (int k = 0; k < K; ++k) m[k] = v[k][0];
#pragma GCC unroll 8
      for (int i = 1; i < NV; ++i) {
#pragma GCC unroll 2
        for (int k = 0; k < K; ++k) m[k] = simd::vmax(m[k], v[k][i]);
      }
#pragma GCC unroll 2
      for (int k = 0; k < K; ++k) mv[k] = simd::max_in_all_lanes(m[k]);
      V S[K], lin[K], mass[K], bw[K];
#pragma GCC unroll 2
      for (int k = 0; k < K; ++k) S[k] = lin[k] = mass[k] = bw[k] = V(0.0f);
#pragma GCC unroll 8
      for (int i = 0; i < NV; ++i) {
        const V keep = i == NV - 1 ? fresh : V(1.0f);
#pragma GCC unroll 2
        for (int k = 0; k < K; ++k) {
          const V d = mv[k] - v[k][i];
          const V e = simd::m_exp_neg(d);
          S[k] += e * keep;
          e.store(park[rows[k]] + i * W);
          if (kLinear) {
            V a = w ? V::load(w + at(i)) : V(1.0f);
            if (probs) a = a * (V(1.0f - eps) * V::load(t[k] + at(i)) + V(smooth));
            a = a * keep;
            lin[k] += a * d;
            mass[k] += a;
          }
          if (balance && probs) bw[k] += V::load(ctx.balance_weight + at(i)) * V::load(t[k] + at(i)) * keep;
        }
      }
#pragma GCC unroll 2
      for (int k = 0; k < K; ++k) {
        const int r = rows[k];
        mf[r] = mv[k][0];
        S[k].store(lane_sum[r]);
        if (kLinear) {
          lin[k].store(lane_linear[r]);
          mass[k].store(lane_mass[r]);
        }
        const int32_t y = static_cast<int32_t>(label[r]);  // -1: ignored, or no labels
        if (y >= 0) {
          zyf[r] = mapped_label_logit(ctx, z[k], y);
          if (w) wyf[r] = w[y];
          if (ctx.alpha) ayf[r] = ctx.alpha[y];
          if (balance) rwf[r] = ctx.balance_weight[y];
        } else if (balance) {
          rwf[r] = probs ? static_cast<float>(simd::hsum(bw[k])) : 0.0f;
        }
      }
    };
    for (int r = 0; r < valid; r += K) {
      int rows[K];
      for (int k = 0; k < K; ++k) rows[k] = r + k < valid ? r + k : static_cast<int>(valid) - 1;  // (an odd last row twice, the same values)
      pass1_rows(rows);
    }

    const auto add = [](V a, V b) { return a + b; };
    simd::transpose_reduce<W>(lane_sum[0], add).store(sf);
    if (kLinear) {
      simd::transpose_reduce<W>(lane_linear[0], add).store(lf);
      simd::transpose_reduce<W>(lane_mass[0], add).store(massf);
    }
    for (int r = 0; r < valid; ++r) {
      // (from the row's exponentials, still in L1: the park's last vector is the row's last, `fresh`)
      if (sf[r] < kHeldConfidentS) bf[r] = static_cast<float>(below_max(park[r], NV * W, fresh));
    }

    // The row scalars of the W rows, one per lane.
    const LaneTerms terms = lane_terms(p, ctx, n0, valid, live, V::load(mf), V::load(sf), V::load(bf), V::load(lf),
                                       V::load(massf), V::load(zyf), V::load(wyf), V::load(ayf), V::load(rwf));
    if (!p.grad_out) return terms.loss;

    // Pass 2, row by row: g = kc e - k q_c, and the label's own value; ignored rows get zeros.
    alignas(64) float kcf[W], kf[W], khf[W], labelf[W], confidentf[W];
    terms.kc.store(kcf);
    terms.k.store(kf);
    terms.kh.store(khf);
    terms.label.store(labelf);
    terms.confident.store(confidentf);
    alignas(64) float tile[W * kRegisterRowsMaxC];  // (the streamed gradient's rows)
    float* const g0 = stream ? tile : p.grad_out + n0 * C;
    for (int r = 0; r < valid; ++r) {
      const int64_t n = n0 + r;
      float* g = g0 + r * C;
      if (counted[r] == 0.0f) {
        for (int64_t c = 0; c < C; ++c) g[c] = 0.0f;
        continue;
      }
      const float* tr = probs ? p.targets + n * C : nullptr;
      const V kc(kcf[r]);
      const V kv(kf[r]);
#pragma GCC unroll 8
      for (int i = 0; i < NV; ++i) {
        V out = kc * V::load(park[r] + i * W);
        if (probs) {
          const V wv = w ? V::load(w + at(i)) : V(1.0f);
          out = out - kv * wv * (V(1.0f - eps) * V::load(tr + at(i)) + V(smooth));
        } else if (kLinear) {  // (label smoothing)
          out = out - kv * V(smooth) * (w ? V::load(w + at(i)) : V(1.0f));
        }
        out.store(g + at(i));  // the last vector rewrites the overlap with the same values
      }
      const int32_t y = static_cast<int32_t>(label[r]);
      if (y >= 0) g[y] = confidentf[r] != 0.0f ? labelf[r] : g[y] - khf[r];
    }
    if (stream) stream->put(tile, valid * C);
    return terms.loss;
  }

  // below_max of a row held in registers (its exponentials parked on the stack) is summed in place,
  // and only for S < 1.5: S is a float sum with at most 8 additions a lane and 4 across lanes after the
  // max's 1 (~7e-7 absolute), so from S = 1.5 (log S >= 0.4) log S is good to 2e-6 relative as it is —
  // and on random logits 7% of the rows at C = 40 reach the second sum, not 21%. (With LDAM's scale of
  // 30 nearly every row does: out of line, the call and its loop cost LDAM ~20%: bench/RESULTS.md.)
  static constexpr float kHeldConfidentS = 1.5f;

};

}  // namespace cpu
}  // namespace cbloss
