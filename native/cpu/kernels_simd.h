// SIMD kernels of the CPU backend, templated on the vector width W and instantiated once per
// instruction set (kernels_avx512.cpp, kernels_avx2.cpp, kernels_vec128.cpp). Float arithmetic on
// the elements and, for up to 8W classes, on the per-row scalars (as vectors of W rows); wide rows'
// scalars and every sum over rows in double (float lanes flushed to double every few vectors). The
// per-element formulas are those of native/core/math.h, evaluated on vectors.
//
// Row losses (CrossEntropy, FocalSoftmax, Poly). With m = max_c z_c, e_c = exp(z_c - m), S = sum e_c,
// s_c = e_c / S, every gradient is k * (coef * s_c - q_c); the layouts compute the row sums of
// native/core/losses/row_terms.h and the kind's policy gives the loss, coef and hit (math::row_terms).
//
// Three layouts:
//   * few classes (C <= 2W): W rows at a time, one row per lane — the rows are transposed into a
//     small column-major tile, every row statistic (max, S, log S, focal factor) is one vector
//     operation, and the gradient tile is transposed back;
//   * 2W < C <= 8W: W rows at a time, each row held in registers in turn (its max, exponentials
//     and sums), then the row scalars of the W rows as vectors, as above, then each row's gradient:
//     read once, gradient written once;
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
#include <new>

#include "../core/logit_map.h"
#include "../core/loss_terms.h"
#include "../core/reductions.h"
#include "cpu_internal.h"
#include "lane_tile.h"
#include "simd.h"

namespace cbloss {
namespace cpu {

template <int W>
struct SimdKernels {
  using V = simd::Vec<W>;
  static constexpr int64_t kLaneRowsMaxC = 2 * W;
  static constexpr int64_t kBlock = 4096;
  // W zeros, W ones, W zeros: a window of W into it is a lane mask of 0.0 / 1.0.
  struct StepTable {
    float v[3 * W];
    constexpr StepTable() : v() {
      for (int i = 0; i < 3 * W; ++i) v[i] = i >= W && i < 2 * W ? 1.0f : 0.0f;
    }
  };
  static constexpr StepTable kStep{};
  static constexpr int64_t kTile = 4096;         // elements per tile of per-class factors
  static constexpr int64_t kWideElements = 512;  // element losses with C >= this go row by row
  // Streams read once are prefetched this many floats (1 KB) ahead, and the gradient rows of the
  // row kernels too, for writing (prefetchw: their lines are fetched for ownership before the stores
  // wait on them): beyond the caches the hardware prefetchers alone left the loops waiting on memory
  // (the element losses' gradient gained nothing) (bench/RESULTS.md, "Design measurements").
  static constexpr int64_t kPrefetchAhead = 256;

  static double rows(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end) {
    if (!is_row_loss(p.loss)) return elements(p, ctx, begin, end);
    if (p.classes <= kLaneRowsMaxC) {
      const LaneRowsFn lanes = p.classes <= kFixedLaneClasses ? kLaneRowsByC.fn[p.classes] : &lane_rows<0>;
      return lanes(p, ctx, begin, end);
    }
    if (p.classes <= kRegisterRowsMaxC) {
      const int64_t nv = (p.classes + W - 1) / W;
      const bool linear = p.targets != nullptr || ctx.row_float.label_smoothing != 0.0f;
      return (linear ? register_rows_fn<true>(nv) : register_rows_fn<false>(nv))(p, ctx, begin, end);
    }
    double total = 0.0;
    if (ctx.map_bias_only) {
      for (int64_t n = begin; n < end; ++n) total += wide_row<BiasedRow>(p, ctx, n);
    } else if (ctx.map_logits) {
      for (int64_t n = begin; n < end; ++n) total += wide_row<MappedRow>(p, ctx, n);
    } else {
      for (int64_t n = begin; n < end; ++n) total += wide_row<PlainRow>(p, ctx, n);
    }
    return total;
  }

  // ---- middling rows: W rows at a time, each held in registers --------------------------------

  // A row of 2W < C <= 8W logits is held in NV = ceil(C / W) vectors (the last one ends at C and
  // overlaps the one before; its repeated lanes are masked out of the sums): read once, gradient
  // written once. Rows go W at a time: each row's max, exponentials (parked in a stack tile, in L1)
  // and sums one after another, then the row scalars of all W rows in the lanes of vectors — log S,
  // the loss terms, the focal factor, the gradient scales — as the one-row-per-lane layout computes
  // them, then each row's gradient. Per row that replaced a double log, the scalar loss terms and a
  // call (bench/RESULTS.md, "Design measurements").
  static constexpr int64_t kRegisterRowsMaxC = 8 * W;
  using RowsFn = double (*)(const Problem&, const RunContext&, int64_t, int64_t);

  // kLinear: the rows have linear terms (probability targets or label smoothing); without them the
  // loops test nothing per vector.
  template <bool kLinear>
  static RowsFn register_rows_fn(int64_t nv) {
    switch (nv) {
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
    return sum_tiles(begin, end, [&](int64_t n, int64_t valid) { return register_group<NV, kLinear>(p, ctx, n, valid); });
  }

  // The losses of rows n0 .. n0 + valid - 1 (valid <= W), one per lane (0 in the other lanes);
  // writes their gradient.
  template <int NV, bool kLinear>
  static V register_group(const Problem& p, const RunContext& ctx, int64_t n0, int64_t valid) {
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

    // Pass 1, row by row: max, e = exp(z - m) parked, the values at the label; the sums a vector a
    // row, reduced for all W rows at once afterwards (a horizontal sum per row was a chain of
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
    for (int r = 0; r < valid; ++r) {
      const int64_t n = n0 + r;
      const float* z = p.logits + n * C;
      const float* t = probs ? p.targets + n * C : nullptr;
      prefetch_ahead(z, C);
      if (p.grad_out) prefetch_ahead<true>(p.grad_out + n * C, C);
      V v[NV];
#pragma GCC unroll 8
      for (int i = 0; i < NV; ++i) v[i] = V::load(z + at(i));
      if (ctx.map_bias_only) {  // z + b, what the logit map below gives without margin and scale
#pragma GCC unroll 8
        for (int i = 0; i < NV; ++i) v[i] = v[i] + V::load(ctx.logit_bias + at(i));
      } else if (ctx.map_logits) {  // the logit map (core/logit_map.h)
        const float y = label[r];
        const float margin_y = y >= 0.0f ? ctx.margin[static_cast<int64_t>(y)] : 0.0f;
#pragma GCC unroll 8
        for (int i = 0; i < NV; ++i) {
          const V column = V::load(kIota.v) + V(static_cast<float>(at(i)));
          const V margin = simd::select(column == V(y), V(margin_y), V(0.0f));
          v[i] = math::mapped_logit(v[i], V::load(ctx.logit_bias + at(i)), margin, V(ctx.logit_scale));
        }
      }
      V m = v[0];
#pragma GCC unroll 8
      for (int i = 1; i < NV; ++i) m = simd::vmax(m, v[i]);
      const float mr = simd::hmax(m);
      V S(0.0f), lin(0.0f), mass(0.0f), bw(0.0f);
#pragma GCC unroll 8
      for (int i = 0; i < NV; ++i) {
        const V keep = i == NV - 1 ? fresh : V(1.0f);
        const V d = V(mr) - v[i];
        const V e = simd::m_exp_neg(d);
        S += e * keep;
        e.store(park[r] + i * W);
        if (kLinear) {
          V a = w ? V::load(w + at(i)) : V(1.0f);
          if (probs) a = a * (V(1.0f - eps) * V::load(t + at(i)) + V(smooth));
          a = a * keep;
          lin += a * d;
          mass += a;
        }
        if (balance && probs) bw += V::load(ctx.balance_weight + at(i)) * V::load(t + at(i)) * keep;
      }
      mf[r] = mr;
      S.store(lane_sum[r]);
      if (kLinear) {
        lin.store(lane_linear[r]);
        mass.store(lane_mass[r]);
      }
      const int32_t y = static_cast<int32_t>(label[r]);  // -1: ignored, or no labels
      if (y >= 0) {
        zyf[r] = mapped_label_logit(ctx, z, y);
        if (w) wyf[r] = w[y];
        if (ctx.alpha) ayf[r] = ctx.alpha[y];
        if (balance) rwf[r] = ctx.balance_weight[y];
      } else if (balance) {
        rwf[r] = probs ? static_cast<float>(simd::hsum(bw)) : 0.0f;
      }
    }

    const auto add = [](V a, V b) { return a + b; };
    simd::transpose_reduce<W>(lane_sum[0], add).store(sf);
    if (kLinear) {
      simd::transpose_reduce<W>(lane_linear[0], add).store(lf);
      simd::transpose_reduce<W>(lane_mass[0], add).store(massf);
    }
    for (int r = 0; r < valid; ++r) {
      if (sf[r] < kHeldConfidentS) {  // (see below_max) from the row's exponentials, still in L1
        V below(0.0f);
#pragma GCC unroll 8
        for (int i = 0; i < NV; ++i) {
          const V e = V::load(park[r] + i * W);
          below += simd::select(e != V(1.0f), e, V(0.0f)) * (i == NV - 1 ? fresh : V(1.0f));
        }
        bf[r] = simd::hsum_float(below);
      }
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
    for (int r = 0; r < valid; ++r) {
      const int64_t n = n0 + r;
      float* g = p.grad_out + n * C;
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
    return terms.loss;
  }

  // ---- helpers ------------------------------------------------------------------------------------

  // Asks for the cache lines of [from, from + len), kPrefetchAhead floats further on; kWrite: lines
  // about to be written (prefetchw: fetched for ownership before the stores need them).
  template <bool kWrite = false>
  static void prefetch_ahead(const float* from, int64_t len) {
    constexpr int64_t kLineFloats = 64 / sizeof(float);
    for (int64_t c = 0; c < len; c += kLineFloats) __builtin_prefetch(from + kPrefetchAhead + c, kWrite ? 1 : 0);
  }

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

  // The logits of one row as the wide-row loops read them: as stored (PlainRow), or through the logit map
  // (MappedRow, core/logit_map.h). A loop over a block at column c0 of the row takes `from(c0)`, and
  // reads vector c of the block with at(z, c) (z: the block's logits). Templates, so that a call without
  // a map runs the loops it ran before, untouched.
  struct PlainRow {
    PlainRow from(int64_t) const { return *this; }
    V at(const float* z, int64_t c) const { return V::load(z + c); }
  };
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

  // ---- few classes: one row per lane ------------------------------------------------------------

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

  template <int kC>
  static double lane_rows(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end) {
    return sum_tiles(begin, end, [&](int64_t n, int64_t valid) {
      const int64_t C = kC ? kC : p.classes;
      prefetch_ahead(p.logits + n * C, W * C);
      if (p.grad_out) prefetch_ahead<true>(p.grad_out + n * C, W * C);
      return lane_tile<kC>(p, ctx, n, valid);
    });
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
    const math::RowParams<V, float> params(wy, ay, ctx.row_float);
    const V inv_s = V(1.0f) / S;
    const math::SoftmaxSums<V> sums{m - zy, math::log_row_sum(S, below, inv_s), linear, mass};
    const math::SoftmaxRow<V> row = math::row_terms(p.loss, p.targets != nullptr, sums, params);
    const auto counted = live != V(0.0f);
    if (p.sample_weight) rw = rw * (valid == W ? V::load(p.sample_weight + n0) : load_tail(p.sample_weight + n0, valid, 0.0f));
    LaneTerms out;
    out.loss = simd::select(counted, rw * row.loss, V(0.0f));
    if (p.loss_out) {
      if (valid == W) {
        out.loss.store(p.loss_out + n0);
      } else {
        store_tail(p.loss_out + n0, out.loss, valid);
      }
    }
    V go(static_cast<float>(ctx.reduced_scale));
    if (ctx.per_element) go = load_tail(p.grad_output + n0, valid, 0.0f);
    out.k = simd::select(counted, go * rw * V(ctx.logit_scale), V(0.0f));  // (d z' / d z = scale)
    out.kc = out.k * row.coef * inv_s;
    out.kh = out.k * row.hit;
    if (p.labels) {
      out.confident = simd::select((zy == m) & (S < V(1.5f)), V(1.0f), V(0.0f));
      out.label = out.k * (row.coef - row.hit) - out.kc * below;
      if (ctx.row_float.label_smoothing != 0.0f) out.label = out.label - out.k * V(ctx.row_float.smooth) * wy;
    }
    return out;
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

  // A span of len >= W floats is covered by whole vectors at 0, W, 2W, ... and, when len is not a
  // multiple of W, one more vector ending at len that overlaps the previous one. fresh_lanes(len)
  // masks that last vector to the lanes no earlier vector covered (1.0 / 0.0); only meaningful when
  // len is not a multiple of W.
  static V fresh_lanes(int64_t len) { return V::load(kStep.v + len % W); }

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

  // Pass 2 over one block: g = f e - k q_c, with e parked in g itself or (kStream) in a scratch row;
  // q_c = 0 (kQ 0), smooth w_c (kQ 1), or w_c t'_c (kQ 2). kStream writes the whole vectors with
  // non-temporal stores, which must be aligned: the first vector (up to the first aligned address) and
  // the overlapping last one are ordinary stores of the same values.
  template <int kQ, bool kWeighted, bool kStream>
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
    if constexpr (kStream) {
      constexpr uintptr_t kAlign = sizeof(typename V::raw_t);
      const int64_t head = static_cast<int64_t>((kAlign - reinterpret_cast<uintptr_t>(g) % kAlign) % kAlign / sizeof(float));
      int64_t c = 0;
      if (head != 0) {
        out(0).store(g);
        c = head;
      }
      for (; c + W <= len; c += W) simd::stream_store(out(c), g + c);
      if (c < len) out(last).store(g + last);
    } else {
      const int64_t full = len / W * W;
      const V tail = out(last);  // before the whole vectors overwrite its lanes (e may be g)
      for (int64_t c = 0; c < full; c += W) out(c).store(g + c);
      if (full < len) tail.store(g + last);
    }
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

  template <bool kStream>
  static void grad_block_q(int q, bool weighted, const float* e, float* g, const float* w, const float* t, int64_t len,
                           float f, float k, float ome, float smooth) {
    if (q == 0) return grad_block<0, false, kStream>(e, g, w, t, len, f, k, ome, smooth);
    if (q == 1) {
      return weighted ? grad_block<1, true, kStream>(e, g, w, t, len, f, k, ome, smooth)
                      : grad_block<1, false, kStream>(e, g, w, t, len, f, k, ome, smooth);
    }
    return weighted ? grad_block<2, true, kStream>(e, g, w, t, len, f, k, ome, smooth)
                    : grad_block<2, false, kStream>(e, g, w, t, len, f, k, ome, smooth);
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

  // Orders this thread's non-temporal stores before its later stores (x86: they are weakly ordered).
  static void store_fence() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_sfence();
#endif
  }

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

  // below_max of a row held in registers (its exponentials parked on the stack) is summed in place,
  // and only for S < 1.5: S is a float sum with at most 8 additions a lane and 4 across lanes after the
  // max's 1 (~7e-7 absolute), so from S = 1.5 (log S >= 0.4) log S is good to 2e-6 relative as it is —
  // and on random logits 7% of the rows at C = 40 reach the second sum, not 21%. (With LDAM's scale of
  // 30 nearly every row does: out of line, the call cost LDAM ~10%: bench/RESULTS.md.)
  static constexpr float kHeldConfidentS = 1.5f;

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
                      : below_max<true>(z + c0, len, keep, static_cast<float>(m), row.from(c0));
      }
    }
    return below;
  }

  // One row of C > 2W logits (so every block holds at least W), read as Row says (PlainRow, MappedRow).
  template <class Row>
  static double wide_row(const Problem& p, const RunContext& ctx, int64_t n) {
    const int64_t C = p.classes;
    const float* z = p.logits + n * C;
    float* g = p.grad_out ? p.grad_out + n * C : nullptr;
    const float* tr = p.targets ? p.targets + n * C : nullptr;
    const double eps = p.label_smoothing;
    const float ome = static_cast<float>(1.0 - eps);
    const float smooth = static_cast<float>(eps / static_cast<double>(C));
    const float* w = ctx.class_weight;

    if (ignored(p, n)) return zero_row(p, n, g);
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
    // A gradient too large for the caches: e is parked in this thread's scratch row instead of the
    // gradient, which is then written once, with non-temporal stores — no read for ownership of its
    // lines (bench/RESULTS.md, "Design measurements").
    float* const scratch = g != nullptr && ctx.stream_gradient && C <= kStreamMaxC ? scratch_row(C) : nullptr;
    const bool stream = scratch != nullptr;
    float* const park = stream ? scratch : g;
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
      const BlockSums bs = exp_block_any(park != nullptr, linear, tr != nullptr, w != nullptr, block_row, z + c0,
                                         park ? park + c0 : nullptr, w ? w + c0 : nullptr, tr ? tr + c0 : nullptr,
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
    const double below = S < 2.0 ? wide_row_below(reader, z, park, C, block, blocks, block_max, block_sum, m) : 0.0;
    const double log_s = math::log_row_sum(S, below);

    const math::RowParams<double, double> params(y >= 0 && w ? static_cast<double>(w[y]) : 1.0,
                                                 y >= 0 && ctx.alpha ? static_cast<double>(ctx.alpha[y]) : ctx.row_double.alpha,
                                                 ctx.row_double);
    const math::SoftmaxRow<double> row =
        math::row_terms(p.loss, tr != nullptr, math::SoftmaxSums<double>{m - zy, log_s, linear_sum, mass}, params);
    const double loss = row.loss;
    const double coef = row.coef;
    const double hit = row.hit;
    const double rw = (p.balance != Balance::Off ? balance_row_weight(p, n) : 1.0) *
                      (p.sample_weight ? static_cast<double>(p.sample_weight[n]) : 1.0);
    if (p.loss_out) p.loss_out[n] = static_cast<float>(rw * loss);
    if (!g) return rw * loss;

    // Pass 2: g = k (coef s - q) with s = e_b exp(m_b - m) / S (and d z' / d z = scale).
    const double k = row_scale(p, ctx, n, rw) * p.logit_scale;
    const int q = tr ? 2 : (eps != 0.0 ? 1 : 0);
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * block;
      const double rescale = blocks > 1 ? std::exp(block_max[b] - m) : 1.0;
      const float f = static_cast<float>(k * coef * rescale / S);
      const float* wb = w ? w + c0 : nullptr;
      const float* tb = tr ? tr + c0 : nullptr;
      if (stream) {
        grad_block_q<true>(q, w != nullptr, park + c0, g + c0, wb, tb, block_len(b), f, static_cast<float>(k), ome, smooth);
      } else {
        grad_block_q<false>(q, w != nullptr, g + c0, g + c0, wb, tb, block_len(b), f, static_cast<float>(k), ome, smooth);
      }
    }
    if (stream) store_fence();
    if (y >= 0) {  // (math::label_minus_sum, in double)
      const double gap = math::label_minus_sum(std::exp(zy - m), S, below);
      const double smooth_y = eps != 0.0 ? ctx.row_double.smooth * (w ? static_cast<double>(w[y]) : 1.0) : 0.0;
      g[y] = static_cast<float>(k * coef * gap / S + k * (coef - hit) - k * smooth_y);
    }
    return rw * loss;
  }

  // 1.0 in the first n lanes (0 <= n <= W), 0.0 in the others.
  static V live_lanes(int64_t n) { return V::load(kStep.v + 2 * W - n); }

  // ---- element-wise losses -----------------------------------------------------------------------

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

  static double run_span(const ElementParams& e, const Span& s, int64_t count) {
    if (s.w || s.pw || s.rw || s.sw || s.go || s.loss_out) return element_run<0>(e, s, count);
    switch (e.kind) {
      case LossKind::BCEWithLogits:
        return element_run<1>(e, s, count);
      case LossKind::SigmoidFocal:
        return e.k.gamma == 2.0f ? element_run<3>(e, s, count) : element_run<2>(e, s, count);
      case LossKind::FocalBinary:
      case LossKind::Asymmetric:
        return element_run<2>(e, s, count);
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
