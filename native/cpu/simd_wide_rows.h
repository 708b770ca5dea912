// The SIMD layout of rows of C > 8W classes: one row at a time, in blocks (kernels_simd.h).
#pragma once

#include <new>

#include "simd_common.h"

namespace cbloss {
namespace cpu {

template <int W>
struct WideRows : SimdCommon<W> {
  CBLOSS_SIMD_COMMON_NAMES(W);

  static constexpr int64_t kBlock = 4096;

  // A gradient too large for the caches: each row's is formed in this thread's scratch row (its
  // exponentials parked there) and handed, a block at a time, to the span's LineStream, which writes
  // every line once, with non-temporal stores — no read for ownership of its lines (bench/RESULTS.md,
  // "Design measurements").
  static double rows(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end) {
    float* const scratch = p.grad_out && ctx.stream_gradient && p.classes <= kStreamMaxC ? scratch_row(p.classes) : nullptr;
    if (!scratch) return rows_of(p, ctx, begin, end, nullptr, nullptr);
    LineStream stream(p.grad_out + begin * p.classes);
    const double total = rows_of(p, ctx, begin, end, scratch, &stream);
    stream.finish();
    return total;
  }

  static double rows_of(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end, float* scratch, LineStream* stream) {
    double total = 0.0;
    if (ctx.map_bias_only) {
      for (int64_t n = begin; n < end; ++n) total += wide_row<BiasedRow>(p, ctx, n, scratch, stream);
    } else if (ctx.map_logits) {
      for (int64_t n = begin; n < end; ++n) total += wide_row<MappedRow>(p, ctx, n, scratch, stream);
    } else {
      for (int64_t n = begin; n < end; ++n) total += wide_row<PlainRow>(p, ctx, n, scratch, stream);
    }
    return total;
  }

  // The logits of one row as the wide-row loops read them: as stored (PlainRow), or through the logit map
  // (MappedRow, core/logit_map.h). A loop over a block at column c0 of the row takes `from(c0)`, and
  // reads vector c of the block with at(z, c) (z: the block's logits). Templates, so that a call without
  // a map runs the loops it ran before, untouched.
  struct BiasedRow {  // (the map without margin and scale: ((z + b) - 0) 1 = z + b exactly)
    const float* bias;
    BiasedRow from(int64_t c0) const { return {bias + c0}; }
    V at(const float* z, int64_t c) const { return V::load(z + c) + V::load(bias + c); }
  };
  struct MappedRow {
    const float* bias;  // the block's bias values (the class vector offset like the logits)
    int64_t label;      // the label's column relative to the block (any value outside it: none)
    float margin;       // m_y
    float scale;
    MappedRow from(int64_t c0) const { return {bias + c0, label - c0, margin, scale}; }
    V at(const float* z, int64_t c) const {
      V margin_here(0.0f);
      const int64_t lane = label - c;
      if (static_cast<uint64_t>(lane) < static_cast<uint64_t>(W)) {
        // W - lane ones from `lane` on, minus those from lane + 1 on: 1.0 at the label's lane only
        margin_here = (V::load(kStep.v + W - lane) - V::load(kStep.v + W - lane - 1)) * V(margin);
      }
      return math::mapped_logit(V::load(z + c), V::load(bias + c), margin_here, V(scale));
    }
  };
  static PlainRow row_reader(const RunContext&, int64_t, PlainRow*) { return {}; }
  static BiasedRow row_reader(const RunContext& ctx, int64_t, BiasedRow*) { return {ctx.logit_bias}; }
  static MappedRow row_reader(const RunContext& ctx, int64_t y, MappedRow*) {
    return {ctx.logit_bias, y, y >= 0 ? ctx.margin[y] : 0.0f, ctx.logit_scale};
  }

  // Four running maxima: one chain of vmax (4 cycles each) took 4 cycles a vector, where loading
  // and comparing take 1 (bench/RESULTS.md, "Design measurements").
  template <class Row>
  static float span_max(const Row& row, const float* z, int64_t len) {
    V m0 = row.at(z, 0), m1 = m0, m2 = m0, m3 = m0;
    const int64_t full = len / W * W;
    int64_t c = W;
    for (; c + 4 * W <= full; c += 4 * W) {
      m0 = simd::vmax(m0, row.at(z, c));
      m1 = simd::vmax(m1, row.at(z, c + W));
      m2 = simd::vmax(m2, row.at(z, c + 2 * W));
      m3 = simd::vmax(m3, row.at(z, c + 3 * W));
    }
    for (; c < full; c += W) m0 = simd::vmax(m0, row.at(z, c));
    if (full < len) m0 = simd::vmax(m0, row.at(z, len - W));
    return simd::hmax(simd::vmax(simd::vmax(m0, m1), simd::vmax(m2, m3)));
  }

  struct BlockSums {
    double sum = 0.0;     // sum_c e_c, e_c = exp(z_c - block max)
    double linear = 0.0;  // sum_c a_c (block max - z_c), a_c the loss weight of class c
    double mass = 0.0;    // sum_c a_c
  };

  // Pass 1 over one block: e = exp(z - mb) summed, and parked in `park` when given; with kLinear the
  // loss weights a_c = w_c (kProbs: w_c t'_c) of the linear terms. `park` may be `z` itself: every
  // vector of z is loaded before its e is stored (the overlapping last vector first of all).
  template <bool kPark, bool kLinear, bool kProbs, bool kWeighted, class Row>
  static BlockSums exp_block(const Row& row, const float* z, float* park, const float* w, const float* t, int64_t len,
                             float mb, float one_minus_eps, float smooth) {
    const V vmb(mb);
    V s(0.0f), lin(0.0f), mass(0.0f);
    auto weight = [&](int64_t c) __attribute__((always_inline)) {
      V a = kWeighted ? V::load(w + c) : V(1.0f);
      if (kProbs) a = a * (V(one_minus_eps) * V::load(t + c) + V(smooth));
      return a;
    };
    const int64_t full = len / W * W;
    const bool overlap = full < len;
    const int64_t last = len - W;
    const V z_last = row.at(z, last);  // before any e is parked
    for (int64_t c = 0; c < full; c += W) {
      // The next block is read next (its max pass): ask for it now, while this one computes.
      __builtin_prefetch(z + c + len, 0, 3);
      if (kPark) __builtin_prefetch(park + c + len, 1, 3);
      const V d = vmb - row.at(z, c);
      const V e = simd::m_exp_neg(d);
      s += e;
      if (kLinear) {
        const V a = weight(c);
        lin += a * d;
        mass += a;
      }
      if (kPark) e.store(park + c);
    }
    if (overlap) {
      const V fresh = fresh_lanes(len);
      const V d = vmb - z_last;
      const V e = simd::m_exp_neg(d);
      s += e * fresh;
      if (kLinear) {
        const V a = weight(last) * fresh;
        lin += a * d;
        mass += a;
      }
      if (kPark) e.store(park + last);
    }
    BlockSums out;
    out.sum = simd::hsum(s);
    if (kLinear) {
      out.linear = simd::hsum(lin);
      out.mass = simd::hsum(mass);
    }
    return out;
  }

  // Pass 2 over one block: g = f e - k q_c, with e parked in g itself; q_c = 0 (kQ 0), smooth w_c
  // (kQ 1), or w_c t'_c (kQ 2).
  template <int kQ, bool kWeighted>
  static void grad_block(const float* e, float* g, const float* w, const float* t, int64_t len, float f, float k,
                         float one_minus_eps, float smooth) {
    const V vf(f), vk(k);
    auto out = [&](int64_t c) __attribute__((always_inline)) {
      V r = vf * V::load(e + c);
      if (kQ != 0) {
        V q = kWeighted ? V::load(w + c) : V(1.0f);
        q = kQ == 1 ? q * V(smooth) : q * (V(one_minus_eps) * V::load(t + c) + V(smooth));
        r = r - vk * q;
      }
      return r;
    };
    const int64_t last = len - W;
    const int64_t full = len / W * W;
    const V tail = out(last);  // before the whole vectors overwrite its lanes (e may be g)
    for (int64_t c = 0; c < full; c += W) out(c).store(g + c);
    if (full < len) tail.store(g + last);
  }

  template <bool kPark, bool kLinear, bool kProbs, class Row>
  static BlockSums exp_block_w(bool weighted, const Row& row, const float* z, float* park, const float* w,
                               const float* t, int64_t len, float mb, float ome, float smooth) {
    return weighted ? exp_block<kPark, kLinear, kProbs, true>(row, z, park, w, t, len, mb, ome, smooth)
                    : exp_block<kPark, kLinear, kProbs, false>(row, z, park, w, t, len, mb, ome, smooth);
  }

  template <class Row>
  static BlockSums exp_block_any(bool park, bool linear, bool probs, bool weighted, const Row& row, const float* z,
                                 float* g, const float* w, const float* t, int64_t len, float mb, float ome,
                                 float smooth) {
    if (probs) {
      return park ? exp_block_w<true, true, true>(weighted, row, z, g, w, t, len, mb, ome, smooth)
                  : exp_block_w<false, true, true>(weighted, row, z, g, w, t, len, mb, ome, smooth);
    }
    if (linear) {
      return park ? exp_block_w<true, true, false>(weighted, row, z, g, w, t, len, mb, ome, smooth)
                  : exp_block_w<false, true, false>(weighted, row, z, g, w, t, len, mb, ome, smooth);
    }
    return park ? exp_block_w<true, false, false>(weighted, row, z, g, w, t, len, mb, ome, smooth)
                : exp_block_w<false, false, false>(weighted, row, z, g, w, t, len, mb, ome, smooth);
  }

  static void grad_block_q(int q, bool weighted, const float* e, float* g, const float* w, const float* t, int64_t len,
                           float f, float k, float ome, float smooth) {
    if (q == 0) return grad_block<0, false>(e, g, w, t, len, f, k, ome, smooth);
    if (q == 1) {
      return weighted ? grad_block<1, true>(e, g, w, t, len, f, k, ome, smooth)
                      : grad_block<1, false>(e, g, w, t, len, f, k, ome, smooth);
    }
    return weighted ? grad_block<2, true>(e, g, w, t, len, f, k, ome, smooth)
                    : grad_block<2, false>(e, g, w, t, len, f, k, ome, smooth);
  }

  // A row of n floats owned by this thread, aligned for vectors, grown on demand and freed when the
  // thread ends; null when it cannot be allocated (the caller then parks in the gradient).
  static float* scratch_row(int64_t n) {
    struct Scratch {
      float* data = nullptr;
      int64_t size = 0;
      ~Scratch() { ::operator delete[](data, std::align_val_t(64)); }
    };
    thread_local Scratch scratch;
    if (scratch.size < n) {
      ::operator delete[](scratch.data, std::align_val_t(64));
      scratch.data = static_cast<float*>(
          ::operator new[](static_cast<size_t>(n) * sizeof(float), std::align_val_t(64), std::nothrow));
      scratch.size = scratch.data ? n : 0;
    }
    return scratch.data;
  }

  // Rows up to this many classes can be streamed (a 4 MB scratch row per thread at most).
  static constexpr int64_t kStreamMaxC = int64_t{1} << 20;

  // below_max over a wide row's blocks: a block whose max is below the row's adds all of its sum. Out of
  // line (cold): inlined, it slowed the wide rows' hot loops though never called (bench/RESULTS.md,
  // "Design measurements").
  template <class Row>
  __attribute__((noinline, cold)) static double wide_row_below(const Row& row, const float* z, const float* park,
                                                               int64_t C, int64_t block, int64_t blocks,
                                                               const double* block_max, const double* block_sum,
                                                               double m) {
    double below = 0.0;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * block;
      const int64_t len = b == blocks - 1 ? C - c0 : block;
      if (block_max[b] != m) {
        below += block_sum[b] * std::exp(block_max[b] - m);
      } else {
        const V keep = len % W == 0 ? V(1.0f) : fresh_lanes(len);
        below += park ? below_max(park + c0, len, keep)
                      : Common::template below_max<true>(z + c0, len, keep, static_cast<float>(m), row.from(c0));
      }
    }
    return below;
  }

  // One row of C > 2W logits (so every block holds at least W), read as Row says (PlainRow, MappedRow).
  // (With `stream`, the gradient is formed in `scratch` and streamed a block at a time: rows().)
  template <class Row>
  static double wide_row(const Problem& p, const RunContext& ctx, int64_t n, float* scratch, LineStream* stream) {
    const int64_t C = p.classes;
    const float* z = p.logits + n * C;
    float* const g = stream ? scratch : p.grad_out ? p.grad_out + n * C : nullptr;
    const float* tr = p.targets ? p.targets + n * C : nullptr;
    const double eps = p.label_smoothing;
    const float ome = static_cast<float>(1.0 - eps);
    const float smooth = static_cast<float>(eps / static_cast<double>(C));
    const float* w = ctx.class_weight;

    if (ignored(p, n)) {
      const double zero = zero_row(p, n, g);
      if (stream) stream->put(g, C);
      return zero;
    }
    const int32_t y = p.labels ? p.labels[n] : -1;
    const double zy = y >= 0 ? static_cast<double>(mapped_label_logit(ctx, z, y)) : 0.0;  // before g may overwrite z
    const Row reader = row_reader(ctx, y, static_cast<Row*>(nullptr));

    // Blocks of `block` logits; a last block shorter than W joins the one before it.
    constexpr int64_t kMaxBlocks = 1024;
    const int64_t block = max64(kBlock, ((C + kMaxBlocks - 1) / kMaxBlocks + W - 1) / W * W);
    int64_t blocks = (C + block - 1) / block;
    if (blocks > 1 && C - (blocks - 1) * block < W) --blocks;
    auto block_len = [&](int64_t b) { return b == blocks - 1 ? C - b * block : block; };

    const bool linear = tr != nullptr || eps != 0.0;
    double block_max[kMaxBlocks];
    double block_sum[kMaxBlocks];
    double block_mass[kMaxBlocks];
    double linear_sum = 0.0;
    double mass = 0.0;
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * block;
      const int64_t len = block_len(b);
      const Row block_row = reader.from(c0);
      const float mb = span_max(block_row, z + c0, len);  // a NaN reaches the sum through exp(z - mb)
      const BlockSums bs = exp_block_any(g != nullptr, linear, tr != nullptr, w != nullptr, block_row, z + c0,
                                         g ? g + c0 : nullptr, w ? w + c0 : nullptr, tr ? tr + c0 : nullptr,
                                         len, mb, ome, smooth);
      block_max[b] = mb;
      block_sum[b] = bs.sum;
      block_mass[b] = bs.mass;
      linear_sum += bs.linear;
      mass += bs.mass;
      m = b == 0 || mb > m ? mb : m;
    }
    double S = 0.0;
    for (int64_t b = 0; b < blocks; ++b) {
      if (blocks == 1) {  // one block: its max is the row's, no rescaling
        S = block_sum[b];
        break;
      }
      const double shift = m - block_max[b];
      S += block_sum[b] * std::exp(-shift);
      linear_sum += shift * block_mass[b];  // (m - z) = (m_b - z) + (m - m_b)
    }
    // (math::log_row_sum; below = 0 when S >= 2 takes log S)
    const double below = S < 2.0 ? wide_row_below(reader, z, g, C, block, blocks, block_max, block_sum, m) : 0.0;
    const double log_s = math::log_row_sum(S, below);

    const double upstream = ctx.per_element ? static_cast<double>(p.grad_output[n]) : ctx.reduced_scale;
    const math::RowEnd<double> end = math::finish_row(
        p.loss, tr != nullptr, math::SoftmaxSums<double>{m - zy, log_s, linear_sum, mass}, 1.0 / S,
        y >= 0 && w ? static_cast<double>(w[y]) : 1.0, y >= 0 && ctx.alpha ? static_cast<double>(ctx.alpha[y]) : ctx.row_double.alpha,
        ctx.row_double, p.balance != Balance::Off ? balance_row_weight(p, n) : 1.0,
        p.sample_weight ? static_cast<double>(p.sample_weight[n]) : 1.0, upstream, p.logit_scale);
    if (p.loss_out) p.loss_out[n] = static_cast<float>(end.loss);
    if (!g) return end.loss;

    // Pass 2: g = kc e_b exp(m_b - m) - k q_c, and the label's own value (math::label_minus_sum, in
    // double); a streamed row goes out a block at a time, while the block is in L1.
    float label_value = 0.0f;
    if (y >= 0) {
      const double smooth_y = eps != 0.0 ? ctx.row_double.smooth * (w ? static_cast<double>(w[y]) : 1.0) : 0.0;
      label_value = static_cast<float>(end.label(math::label_minus_sum(std::exp(zy - m), S, below), smooth_y));
    }
    const float k = static_cast<float>(end.k);
    const int q = tr ? 2 : (eps != 0.0 ? 1 : 0);
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * block;
      const int64_t len = block_len(b);
      const double rescale = blocks > 1 ? std::exp(block_max[b] - m) : 1.0;
      const float f = static_cast<float>(end.kc() * rescale);
      const float* wb = w ? w + c0 : nullptr;
      const float* tb = tr ? tr + c0 : nullptr;
      grad_block_q(q, w != nullptr, g + c0, g + c0, wb, tb, len, f, k, ome, smooth);
      if (y >= c0 && y < c0 + len) g[y] = label_value;
      if (stream) stream->put(g + c0, len);
    }
    return end.loss;
  }

};

}  // namespace cpu
}  // namespace cbloss
