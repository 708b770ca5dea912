// SIMD kernels of the CPU backend, templated on the vector width W and instantiated once per
// instruction set (kernels_avx512.cpp, kernels_avx2.cpp, kernels_vec128.cpp). Float arithmetic on
// the elements, per-row scalars and every sum in double. The per-element formulas are those of
// native/core/math.h, evaluated on vectors.
//
// Softmax losses (CrossEntropy, FocalSoftmax). With m = max_c z_c, e_c = exp(z_c - m), S = sum e_c,
// s_c = e_c / S, every gradient is k * (coef * s_c - q_c):
//   CE, index y:       loss = (1-eps) w_y (m - z_y + log S) + (eps/C)(sum_c w_c (m - z_c) + W log S)
//                      coef = Q = (1-eps) w_y + (eps/C) W,   q_c = (eps/C) w_c + (1-eps) w_y [c=y]
//   CE, probabilities: t'_c = (1-eps) t_c + eps/C,  T = sum_c w_c t'_c
//                      loss = sum_c w_c t'_c (m - z_c) + T log S,   coef = T,  q_c = w_c t'_c
//   Focal, index y:    ce = m - z_y + log S,  loss = alpha_y focal(ce),  coef = alpha_y focal'(ce),
//                      q_c = coef [c=y]
// (m - z_c) + log S instead of LSE - z_c keeps every summed term non-negative.
//
// Two layouts:
//   * few classes (C <= kLaneRowsMaxC): W rows at a time, one row per lane — the row is transposed
//     into a small column-major tile, every row statistic (max, S, log S, focal factor) is one
//     vector operation, and the gradient tile is transposed back;
//   * more classes: one row at a time in blocks of kBlock logits. Pass 1 takes each block's max,
//     parks e = exp(z - block max) in the gradient row (still in cache) and sums it; the blocks'
//     (max, sum) pairs merge into (m, S) without another exp per element; pass 2 rescales the parked
//     values into the gradient. A row is read once from memory (the second read is of the gradient
//     buffer, in cache for all but the largest rows), and z is never read after the gradient is
//     written, so the gradient may overwrite the logits.
//
// Element-wise losses (BCE, SigmoidFocal, FocalBinary) run over flat blocks of whole rows with the
// per-class factors tiled to the block, so that every vector is full whatever C is.
#pragma once

#include <cmath>
#include <cstring>
#include <limits>

#include "../core/math.h"
#include "cpu_internal.h"
#include "simd.h"

namespace cbloss {
namespace cpu {

template <int W>
struct SimdKernels {
  using V = simd::Vec<W>;
  static constexpr int64_t kLaneRowsMaxC = 2 * W;
  static constexpr int64_t kBlock = 4096;
  static constexpr int64_t kElementBlock = 2048;

  static double rows(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end) {
    if (!is_row_loss(p.loss)) return elements(p, ctx, begin, end);
    if (p.classes <= kLaneRowsMaxC) {
      double total = 0.0;
      for (int64_t n = begin; n < end; n += W) total += lane_rows(p, ctx, n, min64(W, end - n));
      return total;
    }
    double total = 0.0;
    for (int64_t n = begin; n < end; ++n) total += wide_row(p, ctx, n);
    return total;
  }

  // ---- helpers ------------------------------------------------------------------------------------

  static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
  static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

  static float class_weight(const RunContext& ctx, int64_t c) {
    return ctx.class_weight ? ctx.class_weight[c] : 1.0f;
  }

  // Upstream gradient times class-balanced weight of row n.
  static double row_scale(const Problem& p, const RunContext& ctx, int64_t n, double rw) {
    const double go = ctx.per_element ? static_cast<double>(p.grad_output[n]) : ctx.reduced_scale;
    return go * rw;
  }

  static bool ignored(const Problem& p, int64_t n) {
    return p.loss == LossKind::CrossEntropy && p.labels && p.labels[n] == p.ignore_index;
  }

  // ---- few classes: one row per lane ------------------------------------------------------------

  static double lane_rows(const Problem& p, const RunContext& ctx, int64_t n0, int64_t valid) {
    const int64_t C = p.classes;
    const float eps = static_cast<float>(p.label_smoothing);
    const float smooth = eps / static_cast<float>(C);
    const bool focal = p.loss == LossKind::FocalSoftmax;
    const bool probs = p.targets != nullptr;
    const bool grad = p.grad_out != nullptr;

    alignas(64) float z[kLaneRowsMaxC][W];
    alignas(64) float t[kLaneRowsMaxC][W];
    alignas(64) float lane_zy[W], lane_wy[W], lane_alpha[W], lane_scale[W], lane_valid[W];
    int32_t lane_y[W];
    double lane_rw[W];

    for (int l = 0; l < W; ++l) {
      const bool live = l < valid && !ignored(p, n0 + l);
      const int64_t n = n0 + l;
      lane_valid[l] = live ? 1.0f : 0.0f;
      const float* row = p.logits + n * C;
      if (l < valid) {
        for (int64_t c = 0; c < C; ++c) z[c][l] = row[c];
        if (probs) {
          for (int64_t c = 0; c < C; ++c) t[c][l] = p.targets[n * C + c];
        }
      } else {
        for (int64_t c = 0; c < C; ++c) z[c][l] = 0.0f;
        if (probs) {
          for (int64_t c = 0; c < C; ++c) t[c][l] = 0.0f;
        }
      }
      const int32_t y = live && p.labels ? p.labels[n] : -1;
      lane_y[l] = y;
      lane_zy[l] = y >= 0 ? row[y] : 0.0f;
      lane_wy[l] = y >= 0 ? class_weight(ctx, y) : 0.0f;
      lane_alpha[l] = y >= 0 && ctx.alpha ? ctx.alpha[y] : static_cast<float>(p.alpha_scalar);
      const double rw = live && p.balance != Balance::Off ? balance_row_weight(p, n) : 1.0;
      lane_rw[l] = rw;
      lane_scale[l] = live ? static_cast<float>(row_scale(p, ctx, n, rw)) : 0.0f;
    }

    // Pass 1: max, then e = exp(z - m) (kept in z) and the sums.
    V m = V::load(z[0]);
    for (int64_t c = 1; c < C; ++c) m = simd::vmax(m, V::load(z[c]));
    V S(0.0f), linear(0.0f), mass(0.0f);
    for (int64_t c = 0; c < C; ++c) {
      const V d = m - V::load(z[c]);
      const V e = simd::m_exp(-d);
      S += e;
      e.store(z[c]);
      if (probs) {
        const V wt = V(class_weight(ctx, c)) * (V(1.0f - eps) * V::load(t[c]) + V(smooth));
        mass += wt;
        linear += wt * d;
        wt.store(t[c]);  // keep w_c t'_c for the gradient
      } else if (eps != 0.0f) {
        linear += V(class_weight(ctx, c)) * d;
      }
    }
    const V log_s = simd::m_log(S);
    const V inv_s = V(1.0f) / S;
    const V zy = V::load(lane_zy);
    const V wy = V::load(lane_wy);

    V loss(0.0f), coef(0.0f);
    if (focal) {
      const V ce = (m - zy) + log_s;
      const math::FocalFactor<V> f = math::focal_factor(ce, static_cast<float>(p.gamma));
      const V a = V::load(lane_alpha);
      loss = a * f.loss;
      coef = a * f.dloss_dce;
    } else if (probs) {
      loss = linear + mass * log_s;
      coef = mass;
    } else {
      const float W_sum = static_cast<float>(ctx.class_weight_sum);
      loss = V(1.0f - eps) * wy * ((m - zy) + log_s) + V(smooth) * (linear + V(W_sum) * log_s);
      coef = V(1.0f - eps) * wy + V(smooth * W_sum);
    }

    double total = 0.0;
    for (int l = 0; l < valid; ++l) {
      const double value = lane_valid[l] != 0.0f ? lane_rw[l] * static_cast<double>(loss[l]) : 0.0;
      if (p.loss_out) p.loss_out[n0 + l] = static_cast<float>(value);
      total += value;
    }
    if (!grad) return total;

    // Pass 2: the gradient tile, then back to row-major.
    const V k = V::load(lane_scale);  // 0 on ignored and padding lanes
    const V live = V::load(lane_valid);
    const V kc = k * coef * inv_s;
    for (int64_t c = 0; c < C; ++c) {
      V g = kc * V::load(z[c]);
      if (probs) {
        g = g - k * V::load(t[c]);
      } else if (!focal && eps != 0.0f) {
        g = g - k * V(smooth * class_weight(ctx, c));
      }
      g = simd::select(live != V(0.0f), g, V(0.0f));  // ignored rows: 0, even with NaN logits
      g.store(z[c]);
    }
    for (int l = 0; l < valid; ++l) {
      float* out = p.grad_out + (n0 + l) * C;
      for (int64_t c = 0; c < C; ++c) out[c] = z[c][l];
      const int32_t y = lane_y[l];
      if (y >= 0 && !probs) {
        const float hit = focal ? coef[l] : (1.0f - eps) * lane_wy[l];
        out[y] -= lane_scale[l] * hit;
      }
    }
    return total;
  }

  // ---- many classes: one row at a time, in blocks ------------------------------------------------

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

  static double wide_row(const Problem& p, const RunContext& ctx, int64_t n) {
    const int64_t C = p.classes;
    const float* z = p.logits + n * C;
    float* g = p.grad_out ? p.grad_out + n * C : nullptr;
    const float* tr = p.targets ? p.targets + n * C : nullptr;
    const bool focal = p.loss == LossKind::FocalSoftmax;
    const double eps = p.label_smoothing;
    const float epsf = static_cast<float>(eps);
    const float smooth = static_cast<float>(eps / static_cast<double>(C));
    const float* w = ctx.class_weight;
    const bool weighted = w != nullptr;

    if (ignored(p, n)) {
      if (g) {
        for (int64_t c = 0; c < C; ++c) g[c] = 0.0f;
      }
      if (p.loss_out) p.loss_out[n] = 0.0f;
      return 0.0;
    }
    const int32_t y = p.labels ? p.labels[n] : -1;
    const double zy = y >= 0 ? static_cast<double>(z[y]) : 0.0;  // read before g may overwrite z

    // Pass 1, block by block: max, e = exp(z - block max) parked in g, sums.
    constexpr int64_t kMaxBlocks = 1024;
    double block_max[kMaxBlocks];
    double block_sum[kMaxBlocks];
    const int64_t block = max64(kBlock, (C + kMaxBlocks - 1) / kMaxBlocks);
    int64_t blocks = 0;
    double linear = 0.0;  // sum_c (loss weight of c) * (m - z_c), with m the block max for now
    double mass = 0.0;    // sum_c (loss weight of c): W for smoothing, T for probabilities
    double correction_weight[kMaxBlocks];
    const bool need_linear = tr != nullptr || eps != 0.0;
    for (int64_t c0 = 0; c0 < C; c0 += block, ++blocks) {
      const int64_t len = min64(block, C - c0);
      const float* zb = z + c0;
      V vm = V(-std::numeric_limits<float>::infinity());
      int64_t c = 0;
      for (; c + W <= len; c += W) vm = simd::vmax(vm, V::load(zb + c));
      float mb = simd::hmax(vm);
      for (; c < len; ++c) mb = zb[c] > mb ? zb[c] : mb;
      // A NaN anywhere reaches the sum below through exp(z - mb).
      const V vmb(mb);
      V s(0.0f), lin(0.0f), ms(0.0f);
      auto step = [&](V zc, V wt_raw, V tv, float* park, int64_t count) {
        const V d = vmb - zc;
        const V e = simd::m_exp(-d);
        V wt = wt_raw;
        if (tr) wt = wt * (V(1.0f - epsf) * tv + V(smooth));
        if (count == W) {
          s += e;
          if (need_linear) {
            lin += wt * d;
            ms += wt;
          }
          if (park) e.store(park);
        } else {
          const V live = live_lanes(count);
          s += e * live;
          if (need_linear) {
            lin += wt * d * live;
            ms += wt * live;
          }
          if (park) store_tail(park, e, count);
        }
      };
      c = 0;
      for (; c + W <= len; c += W) {
        step(V::load(zb + c), w ? V::load(w + c0 + c) : V(1.0f), tr ? V::load(tr + c0 + c) : V(0.0f),
             g ? g + c0 + c : nullptr, W);
      }
      if (c < len) {
        const int64_t rest = len - c;
        step(load_tail(zb + c, rest, mb), w ? load_tail(w + c0 + c, rest, 0.0f) : V(1.0f),
             tr ? load_tail(tr + c0 + c, rest, 0.0f) : V(0.0f), g ? g + c0 + c : nullptr, rest);
      }
      block_max[blocks] = mb;
      block_sum[blocks] = simd::hsum(s);
      linear += simd::hsum(lin);
      correction_weight[blocks] = simd::hsum(ms);
      mass += correction_weight[blocks];
    }
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t b = 0; b < blocks; ++b) m = block_max[b] > m || b == 0 ? block_max[b] : m;
    double S = 0.0;
    for (int64_t b = 0; b < blocks; ++b) {
      const double shift = m - block_max[b];
      S += block_sum[b] * std::exp(-shift);
      linear += shift * correction_weight[b];  // (m - z) = (m_b - z) + (m - m_b)
    }
    const double log_s = std::log(S);

    double loss = 0.0;
    double coef = 0.0;
    double hit = 0.0;  // subtracted from the gradient at the label
    if (focal) {
      const double ce = (m - zy) + log_s;
      const double a = ctx.alpha ? static_cast<double>(ctx.alpha[y]) : p.alpha_scalar;
      const math::FocalFactor<double> f = math::focal_factor(ce, p.gamma);
      loss = a * f.loss;
      coef = a * f.dloss_dce;
      hit = coef;
    } else if (tr) {
      loss = linear + mass * log_s;
      coef = mass;
    } else {
      const double wy = weighted ? static_cast<double>(w[y]) : 1.0;
      const double W_sum = ctx.class_weight_sum;
      const double sm = eps / static_cast<double>(C);
      loss = (1.0 - eps) * wy * ((m - zy) + log_s) + sm * (linear + W_sum * log_s);
      coef = (1.0 - eps) * wy + sm * W_sum;
      hit = (1.0 - eps) * wy;
    }
    const double rw = p.balance != Balance::Off ? balance_row_weight(p, n) : 1.0;
    if (p.loss_out) p.loss_out[n] = static_cast<float>(rw * loss);
    if (!g) return rw * loss;

    // Pass 2: g = k (coef e_b / S - q).
    const double k = row_scale(p, ctx, n, rw);
    for (int64_t b = 0, c0 = 0; b < blocks; ++b, c0 += block) {
      const int64_t len = min64(block, C - c0);
      const V f(static_cast<float>(k * coef * std::exp(block_max[b] - m) / S));
      const V kv(static_cast<float>(k));
      float* gb = g + c0;
      auto step = [&](V e, V wv, V tv) {
        V out = f * e;
        if (tr) {
          out = out - kv * wv * (V(1.0f - epsf) * tv + V(smooth));
        } else if (!focal && eps != 0.0) {
          out = out - kv * V(smooth) * wv;
        }
        return out;
      };
      int64_t c = 0;
      for (; c + W <= len; c += W) {
        step(V::load(gb + c), w ? V::load(w + c0 + c) : V(1.0f), tr ? V::load(tr + c0 + c) : V(0.0f)).store(gb + c);
      }
      if (c < len) {
        const int64_t rest = len - c;
        const V out = step(load_tail(gb + c, rest, 0.0f), w ? load_tail(w + c0 + c, rest, 0.0f) : V(1.0f),
                           tr ? load_tail(tr + c0 + c, rest, 0.0f) : V(0.0f));
        store_tail(gb + c, out, rest);
      }
    }
    if (y >= 0) g[y] -= static_cast<float>(k * hit);
    return rw * loss;
  }

  // 1.0 in the first n lanes, 0.0 in the others.
  static V live_lanes(int64_t n) {
    alignas(64) float tmp[W];
    for (int i = 0; i < W; ++i) tmp[i] = i < n ? 1.0f : 0.0f;
    return V::load(tmp);
  }

  // ---- element-wise losses -----------------------------------------------------------------------

  static double elements(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end) {
    const int64_t C = p.classes;
    // Rows per block: a multiple of W, so that every block but the last is whole vectors.
    const int64_t per_block = max64(W, (kElementBlock / max64(C, 1)) / W * W);
    alignas(64) float weight[kElementBlock + 64 * W];
    alignas(64) float pos[kElementBlock + 64 * W];
    alignas(64) float onehot[kElementBlock + 64 * W];
    const bool binary = p.loss == LossKind::FocalBinary;
    const bool by_column = p.balance == Balance::Column && !binary;
    const bool by_row = p.balance == Balance::Row && !binary;
    const bool bce = p.loss == LossKind::BCEWithLogits;

    double total = 0.0;
    for (int64_t n0 = begin; n0 < end; n0 += per_block) {
      const int64_t rows = min64(per_block, end - n0);
      // Element blocks larger than the buffers (C > kElementBlock) go a row at a time in slices.
      if (rows * C > kElementBlock + 64 * W) {
        for (int64_t n = n0; n < n0 + rows; ++n) {
          for (int64_t c0 = 0; c0 < C; c0 += kElementBlock) {
            const int64_t len = min64(kElementBlock, C - c0);
            total += element_span(p, ctx, n, 1, c0, len, weight, pos, onehot, by_row, by_column, bce, binary);
          }
        }
        continue;
      }
      total += element_span(p, ctx, n0, rows, 0, C, weight, pos, onehot, by_row, by_column, bce, binary);
    }
    return total;
  }

  // Elements [c0, c0 + len) of rows [n0, n0 + rows).
  static double element_span(const Problem& p, const RunContext& ctx, int64_t n0, int64_t rows, int64_t c0,
                             int64_t len, float* weight, float* pos, float* onehot, bool by_row, bool by_column,
                             bool bce, bool binary) {
    const int64_t C = p.classes;
    const int64_t count = rows * len;
    const bool contiguous = len == C;
    const bool weights = ctx.class_weight || by_row || by_column;
    for (int64_t r = 0; r < rows; ++r) {
      const float rw = by_row ? static_cast<float>(balance_row_weight(p, n0 + r)) : 1.0f;
      for (int64_t j = 0; j < len; ++j) {
        const int64_t c = c0 + j;
        float wv = class_weight(ctx, c) * rw;
        if (by_column) wv *= ctx.balance_weight[c];
        if (weights) weight[r * len + j] = wv;
        if (bce) pos[r * len + j] = ctx.pos_weight ? ctx.pos_weight[c] : 1.0f;
      }
      if (p.labels) {
        for (int64_t j = 0; j < len; ++j) onehot[r * len + j] = 0.0f;
        const int64_t y = p.labels[n0 + r] - c0;
        if (y >= 0 && y < len) onehot[r * len + y] = 1.0f;
      }
    }
    const float gamma = static_cast<float>(p.gamma);
    const float alpha = static_cast<float>(p.alpha_scalar);
    const bool alpha_pair = binary && ctx.alpha;
    const bool balance_pair = binary && p.balance != Balance::Off;
    V sum(0.0f);
    double total = 0.0;

    // Element j of the span: index i in the arrays of the problem.
    auto index = [&](int64_t j) { return contiguous ? n0 * C + j : n0 * C + c0 + j; };
    auto body = [&](int64_t j, int64_t live) {
      const int64_t i = index(j);
      auto ld = [&](const float* src, float pad) { return live == W ? V::load(src) : load_tail(src, live, pad); };
      const V x = ld(p.logits + i, 0.0f);
      const V t = p.labels ? ld(onehot + j, 0.0f) : ld(p.targets + i, 0.0f);
      math::LossAndSlope<V> r;
      if (bce) {
        r = math::bce_pos_weighted(x, t, ld(pos + j, 1.0f));
      } else if (binary) {
        r = math::binary_focal(x, t, gamma);
        V a(alpha);
        if (alpha_pair) a = V(ctx.alpha[0]) + V(ctx.alpha[1] - ctx.alpha[0]) * t;
        if (balance_pair) {
          a = a * (V(ctx.balance_weight[0]) + V(ctx.balance_weight[1] - ctx.balance_weight[0]) * t);
        }
        r.loss = a * r.loss;
        r.slope = a * r.slope;
      } else {
        r = math::sigmoid_focal(x, t, gamma);
        if (alpha >= 0.0f) {
          const V at = V(alpha) * t + V(1.0f - alpha) * (V(1.0f) - t);
          r.loss = at * r.loss;
          r.slope = at * r.slope;
        }
      }
      if (weights) {
        const V wv = ld(weight + j, 0.0f);
        r.loss = wv * r.loss;
        r.slope = wv * r.slope;
      }
      if (live < W) r.loss = r.loss * live_lanes(live);
      sum += r.loss;
      if (p.loss_out) {
        if (live == W) r.loss.store(p.loss_out + i);
        else store_tail(p.loss_out + i, r.loss, live);
      }
      if (p.grad_out) {
        const V go = ctx.per_element ? ld(p.grad_output + i, 0.0f) : V(static_cast<float>(ctx.reduced_scale));
        const V g = go * r.slope;
        if (live == W) g.store(p.grad_out + i);
        else store_tail(p.grad_out + i, g, live);
      }
    };

    if (contiguous) {
      int64_t j = 0;
      for (; j + W <= count; j += W) {
        body(j, W);
        if ((j & 1023) == 1024 - W) {  // flush the float lanes into double every 1024 elements
          total += simd::hsum(sum);
          sum = V(0.0f);
        }
      }
      if (j < count) body(j, count - j);
    } else {
      // A slice of one row (rows == 1): the same loop; index() adds the slice offset.
      int64_t j = 0;
      for (; j + W <= count; j += W) body(j, W);
      if (j < count) body(j, count - j);
    }
    return total + simd::hsum(sum);
  }
};

}  // namespace cpu
}  // namespace cbloss
