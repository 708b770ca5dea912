// The SIMD layout of the element-wise losses: flat spans of whole rows, the per-class factors tiled to
// the span (kernels_simd.h).
#pragma once

#include "simd_common.h"

namespace cbloss {
namespace cpu {

template <int W>
struct ElementSpans : SimdCommon<W> {
  CBLOSS_SIMD_COMMON_NAMES(W);

  static constexpr int64_t kTile = 4096;         // elements per tile of per-class factors
  static constexpr int64_t kWideElements = 512;  // element losses with C >= this go row by row


  // Per-call constants of an element-wise loss.
  struct ElementParams {
    LossKind kind;
    bool by_row, by_column, balance_pair;
    float b0, b1;  // binary focal: balance weight of t = 0 and t = 1
    math::ElementScalars<float> k;
  };

  static ElementParams element_params(const Problem& p, const RunContext&) {
    ElementParams e{};
    e.kind = p.loss;
    const bool pairs = reads_target_pairs(p.loss);
    e.by_row = p.balance == Balance::Row && !pairs;
    e.by_column = p.balance == Balance::Column && !pairs;
    e.balance_pair = pairs && p.balance != Balance::Off;
    if (e.balance_pair) {
      e.b0 = static_cast<float>(p.balance_weight[0]);
      e.b1 = static_cast<float>(p.balance_weight[1]);
    }
    e.k = math::element_scalars<float>(p);
    return e;
  }

  // Loss and d loss / dx of W elements, times the class factor `w` (class weight, balance weight).
  __attribute__((always_inline)) static math::LossAndSlope<V> element_vector(const ElementParams& e, V x, V t, V w,
                                                                             V pw) {
    math::LossAndSlope<V> r = math::element_terms(e.kind, x, t, pw, e.k);
    if (e.balance_pair) w = w * (V(e.b0) + V(e.b1 - e.b0) * t);
    r.loss = w * r.loss;
    r.slope = w * r.slope;
    return r;
  }

  // Everything an element span needs: where its elements are and their per-element factors.
  struct Span {
    const float* x;
    const float* t;       // targets, or a one-hot tile
    const float* w;       // class factors (tile or class vector), or null for 1
    const float* pw;      // pos_weight (tile or class vector), or null for 1
    const float* rw;      // row-weight tile, or null
    const float* sw;      // per-element sample weights, or null
    const float* go;      // per-element upstream gradient, or null for `scale`
    float* loss_out;
    float* grad_out;
    float scale;
  };

  // kPlain: 0 for any span; for a plain span — no class or row factors, no pos_weight, no
  // per-element losses or upstream gradient, as in a reduced BCE or sigmoid focal loss without
  // weights — 1 (BCE), 2 (the focal losses) or 3 (sigmoid focal with gamma = 2, torchvision's
  // default: the power and the tests of gamma fold away), whose loop then tests none of them on
  // every vector.
  template <int kPlain>
  __attribute__((always_inline)) static V element_step(const ElementParams& e, const Span& s, int64_t j) {
    if constexpr (kPlain == 3) {
      const V x = V::load(s.x + j), t = V::load(s.t + j);
      const math::LossAndSlope<V> r = math::sigmoid_focal(x, t, 2.0f);
      if (s.grad_out) (r.slope * (V(e.k.alpha_t0 * s.scale) + V(e.k.alpha_t1 * s.scale) * t)).store(s.grad_out + j);
      return r.loss * (V(e.k.alpha_t0) + V(e.k.alpha_t1) * t);
    } else if constexpr (kPlain != 0) {
      const V x = V::load(s.x + j), t = V::load(s.t + j);
      const math::LossAndSlope<V> r =
          kPlain == 1 ? math::bce_pos_weighted(x, t, V(1.0f)) : element_vector(e, x, t, V(1.0f), V(1.0f));
      if (s.grad_out) (r.slope * V(s.scale)).store(s.grad_out + j);
      return r.loss;
    }
    V w = s.w ? V::load(s.w + j) : V(1.0f);
    if (s.rw) w = w * V::load(s.rw + j);
    if (s.sw) w = w * V::load(s.sw + j);
    const math::LossAndSlope<V> r =
        element_vector(e, V::load(s.x + j), V::load(s.t + j), w, s.pw ? V::load(s.pw + j) : V(1.0f));
    if (s.loss_out) r.loss.store(s.loss_out + j);
    if (s.grad_out) (r.slope * (s.go ? V::load(s.go + j) : V(s.scale))).store(s.grad_out + j);
    return r.loss;
  }

  // A partial vector of n < W elements at j (padding lanes: x = 0, t = 0, factors 0).
  static V element_tail(const ElementParams& e, const Span& s, int64_t j, int64_t n) {
    V w = s.w ? load_tail(s.w + j, n, 0.0f) : live_lanes(n);
    if (s.rw) w = w * load_tail(s.rw + j, n, 0.0f);
    if (s.sw) w = w * load_tail(s.sw + j, n, 0.0f);
    const math::LossAndSlope<V> r = element_vector(e, load_tail(s.x + j, n, 0.0f), load_tail(s.t + j, n, 0.0f), w,
                                                   s.pw ? load_tail(s.pw + j, n, 1.0f) : V(1.0f));
    if (s.loss_out) store_tail(s.loss_out + j, r.loss, n);
    if (s.grad_out) store_tail(s.grad_out + j, r.slope * (s.go ? load_tail(s.go + j, n, 0.0f) : V(s.scale)), n);
    return r.loss;
  }

  // Elements [0, count) of a span; the loss summed in float lanes, flushed to double regularly.
  // The loop works on local copies of the parameters and the span: through the caller's references,
  // any float stored to the outputs might have changed their float fields (scale, gamma, ...), so
  // GCC reloaded and retested them on every vector (bench/RESULTS.md, "Design measurements").
  template <int kPlain>
  static double element_run(const ElementParams& params, const Span& span, int64_t count) {
    const ElementParams e = params;
    const Span s = span;
    double total = 0.0;
    V sum(0.0f);
    int64_t j = 0;
    while (j + W <= count) {
      const int64_t stop = min64(count - W, j + 64 * W);
      for (; j <= stop; j += W) {
        __builtin_prefetch(s.x + j + kPrefetchAhead);
        __builtin_prefetch(s.t + j + kPrefetchAhead);
        sum += element_step<kPlain>(e, s, j);
      }
      total += simd::hsum(sum);
      sum = V(0.0f);
    }
    if (j < count) total += simd::hsum(element_tail(e, s, j, count - j));
    return total;
  }

  // element_run for the asymmetric loss with integer gammas on a plain span: a vector whose targets
  // are all 0 or 1 takes AsymmetricPolicy::hard_targets in the inner loop; any other leaves it for
  // the general policy (element_step<2>), so that the inner loop holds no call and its constants
  // stay in registers. kDefaults: gamma+ = kGammaPos, gamma- = 4, clip > 0, no detach — the
  // defaults — as constants (the powers unrolled, the branches folded); else the call's scalars.
  template <bool kDefaults, int kGammaPos = 0>
  static double asymmetric_run(const ElementParams& params, const Span& span, int64_t count) {
    const ElementParams e = params;
    const Span s = span;
    const float clip = e.k.clip;
    const int gp = kDefaults ? kGammaPos : e.k.gamma_pos_int;
    const int gn = kDefaults ? 4 : e.k.gamma_neg_int;
    const bool detach = kDefaults ? false : e.k.detach_focusing;
    double total = 0.0;
    V sum(0.0f);
    int64_t j = 0;
    while (j + W <= count) {
      const int64_t stop = min64(count - W, j + 64 * W);
      for (; j <= stop; j += W) {
        __builtin_prefetch(s.x + j + kPrefetchAhead);
        __builtin_prefetch(s.t + j + kPrefetchAhead);
        const V x = V::load(s.x + j), t = V::load(s.t + j);
        if (!simd::all_lanes((t == V(0.0f)) | (t == V(1.0f)))) break;
        const math::LossAndSlope<V> r = math::AsymmetricPolicy::hard_targets(x, t, clip, gp, gn, detach);
        if (s.grad_out) (r.slope * V(s.scale)).store(s.grad_out + j);
        sum += r.loss;
      }
      if (j <= stop) {  // a vector with a target in (0, 1) (or NaN)
        sum += element_step<2>(e, s, j);
        j += W;
      }
      total += simd::hsum(sum);
      sum = V(0.0f);
    }
    if (j < count) total += simd::hsum(element_tail(e, s, j, count - j));
    return total;
  }

  static double run_span(const ElementParams& e, const Span& s, int64_t count) {
    if (s.w || s.pw || s.rw || s.sw || s.go || s.loss_out) return element_run<0>(e, s, count);
    switch (e.kind) {
      case LossKind::BCEWithLogits:
        return element_run<1>(e, s, count);
      case LossKind::SigmoidFocal:
        return e.k.gamma == 2.0f ? element_run<3>(e, s, count) : element_run<2>(e, s, count);
      case LossKind::FocalBinary:
        return element_run<2>(e, s, count);
      case LossKind::Asymmetric:
        if (e.k.gamma_pos_int < 0) return element_run<2>(e, s, count);
        if (e.k.gamma_neg_int == 4 && e.k.gamma_pos_int <= 1 && e.k.clip > 0.0f && !e.k.detach_focusing) {
          return e.k.gamma_pos_int == 1 ? asymmetric_run<true, 1>(e, s, count) : asymmetric_run<true, 0>(e, s, count);
        }
        return asymmetric_run<false>(e, s, count);
      case LossKind::CrossEntropy:
      case LossKind::FocalSoftmax:
      case LossKind::Poly:
        break;  // row losses: never here (rows() sends them to the row layouts)
    }
    return std::numeric_limits<double>::quiet_NaN();
  }

  // The span of the problem's arrays that starts at element i.
  static Span offset(Span s, int64_t i) {
    s.x += i;
    if (s.t) s.t += i;
    if (s.sw) s.sw += i;
    if (s.go) s.go += i;
    if (s.loss_out) s.loss_out += i;
    if (s.grad_out) s.grad_out += i;
    return s;
  }

  static double elements(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end) {
    const int64_t C = p.classes;
    const ElementParams e = element_params(p, ctx);
    Span base{};
    base.x = p.logits;
    base.t = p.targets;
    base.go = ctx.per_element ? p.grad_output : nullptr;
    // Sample weights ("Per-call options" in docs/semantics.md): one per element go with the span; one per
    // row join the row weights.
    const float* row_sample = p.sample_weight && !p.sample_weight_per_element ? p.sample_weight : nullptr;
    base.sw = p.sample_weight_per_element ? p.sample_weight : nullptr;
    const bool row_factor = e.by_row || row_sample != nullptr;
    auto row_weight = [&](int64_t n) {
      return (e.by_row ? static_cast<float>(balance_row_weight(p, n)) : 1.0f) * (row_sample ? row_sample[n] : 1.0f);
    };
    base.loss_out = p.loss_out;
    base.grad_out = p.grad_out;
    base.scale = static_cast<float>(ctx.reduced_scale);
    const bool class_factor = ctx.class_weight || e.by_column;
    alignas(64) float w_tile[kTile];
    alignas(64) float pw_tile[kTile];
    alignas(64) float rw_tile[kTile];
    alignas(64) float t_tile[kTile];
    double total = 0.0;

    if (C >= kWideElements) {
      // Wide rows: the class vectors line up with each row; one row at a time.
      float* cf = class_factor ? w_tile : nullptr;
      for (int64_t n = begin; n < end; ++n) {
        const float rw = row_weight(n);
        for (int64_t c0 = 0; c0 < C; c0 += kTile) {
          const int64_t len = min64(kTile, C - c0);
          Span s = offset(base, n * C + c0);
          if (cf) {
            for (int64_t j = 0; j < len; ++j) {
              cf[j] = class_weight(ctx, c0 + j) * (e.by_column ? ctx.balance_weight[c0 + j] : 1.0f) * rw;
            }
            s.w = cf;
          } else if (row_factor) {
            for (int64_t j = 0; j < len; ++j) rw_tile[j] = rw;
            s.w = rw_tile;
          }
          s.pw = ctx.pos_weight ? ctx.pos_weight + c0 : nullptr;
          if (p.labels) {
            for (int64_t j = 0; j < len; ++j) t_tile[j] = 0.0f;
            const int64_t y = p.labels[n] - c0;
            if (y >= 0 && y < len) t_tile[y] = 1.0f;
            s.t = t_tile;
          }
          total += run_span(e, s, len);
        }
      }
      return total;
    }

    // Narrow rows: blocks of whole rows (a multiple of W rows, so the block is whole vectors), with
    // the class factors tiled over the block once.
    const int64_t rows_per_block = max64(1, kTile / C / W * W);
    const int64_t tile_len = rows_per_block * C;
    if (class_factor) {
      for (int64_t j = 0; j < tile_len; ++j) {
        const int64_t c = j % C;
        w_tile[j] = class_weight(ctx, c) * (e.by_column ? ctx.balance_weight[c] : 1.0f);
      }
    }
    if (ctx.pos_weight) {
      for (int64_t j = 0; j < tile_len; ++j) pw_tile[j] = ctx.pos_weight[j % C];
    }
    for (int64_t n0 = begin; n0 < end; n0 += rows_per_block) {
      const int64_t rows = min64(rows_per_block, end - n0);
      Span s = offset(base, n0 * C);
      s.w = class_factor ? w_tile : nullptr;
      s.pw = ctx.pos_weight ? pw_tile : nullptr;
      if (row_factor) {
        for (int64_t r = 0; r < rows; ++r) {
          const float rw = row_weight(n0 + r);
          for (int64_t c = 0; c < C; ++c) rw_tile[r * C + c] = rw;
        }
        s.rw = rw_tile;
      }
      if (p.labels) {
        for (int64_t j = 0; j < rows * C; ++j) t_tile[j] = 0.0f;
        for (int64_t r = 0; r < rows; ++r) t_tile[r * C + p.labels[n0 + r]] = 1.0f;
        s.t = t_tile;
      }
      total += run_span(e, s, rows * C);
    }
    return total;
  }
};

}  // namespace cpu
}  // namespace cbloss
