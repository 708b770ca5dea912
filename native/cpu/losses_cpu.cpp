// CPU backend: the driver (reduction divisor, per-call constants, chunks spread over the thread pool,
// choice of kernel level) and the scalar kernels in double precision, which serve as the 'scalar'
// level and as a check of the SIMD levels (kernels_simd.h).
//
// Row losses: the row sums of native/core/losses/row_terms.h, turned into the loss and gradient by
// the kind's policy (math::row_terms). Pass 1 stores e_c in the gradient row (the row is then in
// cache), pass 2 turns it into the gradient; neither pass reads z after writing it, so the gradient
// may overwrite the logits. Element losses: math::element_terms at each element.
//
// Reductions are accumulated in double over chunks of rows whose size depends on the shape only;
// the chunks' sums are added in order, so the result does not depend on the number of threads.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "../core/backend.h"
#include "../core/logit_map.h"
#include "../core/loss_terms.h"
#include "../core/reductions.h"
#include "cpu_internal.h"
#include "row_epilogue.h"
#include "thread_pool.h"

namespace cbloss {

double balance_row_weight(const Problem& p, int64_t n) {
  return balance_row_weight(p.loss, p.balance_weight, p.labels, p.targets, p.classes, p.ignore_index, n);
}

namespace cpu {

// The passes over the labels before a kernel (the label check, the count of ignored rows; on one
// thread a fifth of a CE call at C = 2: bench/RESULTS.md, "Design measurements"): part(begin, end) over [0, n)
// in blocks of 64K on the thread pool, the results in block order; one part over all of [0, n) for
// a small batch or a single thread.
template <class Part>
std::vector<int64_t> label_blocks(int64_t n, Part part) {
  const int64_t block = int64_t{1} << 16;
  const int64_t blocks = (n + block - 1) / block;
  if (blocks <= 1 || ThreadPool::instance().threads() == 1) return {part(0, n)};
  std::vector<int64_t> results(static_cast<size_t>(blocks), 0);
  ThreadPool::instance().run(
      blocks, [&](int64_t b) { results[static_cast<size_t>(b)] = part(b * block, std::min(n, (b + 1) * block)); });
  return results;
}

namespace {

// How many of the n labels equal `label` (a loop the compiler vectorizes).
int64_t count_label(const int32_t* labels, int64_t n, int32_t label) {
  int64_t total = 0;
  for (const int64_t k : label_blocks(n, [&](int64_t begin, int64_t end) {
         int64_t found = 0;
         for (int64_t i = begin; i < end; ++i) found += labels[i] == label;
         return found;
       })) {
    total += k;
  }
  return total;
}

// The divisor of the reduction (core/reductions.h), the ignored rows counted over the threads.
double reduction_divisor(const Problem& p) { return divisor_of(p, count_label); }

// Upstream gradient of output element i.
inline double grad_scale(const Problem& p, const RunContext& s, int64_t i) {
  return s.per_element ? static_cast<double>(p.grad_output[i]) : s.reduced_scale;
}

// The sample weight (docs/semantics.md, "Per-call options") at index i of the problem's array (a row, or
// an element), 1 without.
inline double sample_weight(const Problem& p, int64_t i) {
  return p.sample_weight ? static_cast<double>(p.sample_weight[i]) : 1.0;
}

// One softmax row: returns its weighted loss (row weight and sample weight); writes the upstream
// gradient times d loss / d z to g when g is not null.
double softmax_row(const Problem& p, const RunContext& scaling, int64_t n, float* g) {
  const RowScalars<double>& call = scaling.row_double;
  const int64_t C = p.classes;
  const float* z = p.logits + n * C;
  const double eps = p.label_smoothing;
  const double* w = p.class_weight;
  const int32_t y = p.labels ? p.labels[n] : -1;
  const float* t = p.targets ? p.targets + n * C : nullptr;

  if (row_ignored(p.loss, p.labels, p.ignore_index, n)) {
    if (g) std::fill(g, g + C, 0.0f);
    return 0.0;
  }

  // The logit of class c, through the logit map when the call has one (docs/semantics.md, "Logit maps";
  // core/logit_map.h): in float, as every other layout and backend (and PyTorch's composed s * (x + b -
  // m) in float32) forms it, so that all of them take the loss at the same z'.
  const bool map = maps_logits(p);
  const auto logit = [&](int64_t c) {
    if (!map) return static_cast<double>(z[c]);
    const float margin_here = p.margin && c == y ? static_cast<float>(p.margin[y]) : 0.0f;
    const float bias = p.logit_bias ? static_cast<float>(p.logit_bias[c]) : 0.0f;
    return static_cast<double>(math::mapped_logit(z[c], bias, margin_here, static_cast<float>(p.logit_scale)));
  };
  double m = logit(0);
  for (int64_t c = 1; c < C; ++c) {
    const double v = logit(c);
    m = v > m ? v : m;  // a NaN anywhere reaches S below
  }
  const double zy = y >= 0 ? logit(y) : 0.0;

  // Pass 1: S, and the linear terms of the loss; e_c parked in the gradient row.
  double S = 0.0;
  double below = 0.0;  // the part of S from logits below the max (log_row_sum)
  double linear = 0.0;  // sum_c (weight of class c in the loss) * (m - z_c)
  double target_mass = 0.0;  // probabilities: T = sum_c w_c t'_c
  for (int64_t c = 0; c < C; ++c) {
    const double d = m - logit(c);
    const double e = std::exp(-d);
    S += e;
    if (d != 0.0) below += e;  // (a NaN d is added: it must reach the loss)
    if (t) {  // probability targets (CrossEntropy): the per-class target term
      const double tc = (1.0 - eps) * static_cast<double>(t[c]) + eps / static_cast<double>(C);
      const double wt = (w ? w[c] : 1.0) * tc;
      target_mass += wt;
      linear += wt * d;
    } else if (eps != 0.0) {
      linear += (w ? w[c] : 1.0) * d;
    }
    if (g) g[c] = static_cast<float>(e);
  }
  const double log_s = math::log_row_sum(S, below);

  const double smooth = call.smooth;
  const math::RowEnd<double> end = math::finish_row(
      p.loss, t != nullptr, math::SoftmaxSums<double>{m - zy, log_s, linear, target_mass}, 1.0 / S,
      y >= 0 && w ? w[y] : 1.0, y >= 0 && p.alpha ? p.alpha[y] : call.alpha, call,
      p.balance != Balance::Off ? balance_row_weight(p, n) : 1.0, sample_weight(p, n), grad_scale(p, scaling, n),
      p.logit_scale);
  if (g) {
    const double kc = end.kc();
    for (int64_t c = 0; c < C; ++c) {
      const double wc = w ? w[c] : 1.0;
      double q = 0.0;
      if (t) q = wc * ((1.0 - eps) * static_cast<double>(t[c]) + smooth);
      else if (eps != 0.0) q = smooth * wc;
      g[c] = static_cast<float>(kc * static_cast<double>(g[c]) - end.k * q - (c == y ? end.kh() : 0.0));
    }
  }
  return end.loss;
}

// Loss and slope of one element of an element-wise loss, with its class weight (before class-balanced
// weights).
inline math::LossAndSlope<double> element_loss(const Problem& p, const math::ElementScalars<double>& k, int64_t c,
                                               double x, double t) {
  const double pw = p.pos_weight ? p.pos_weight[c] : 1.0;
  const double w = p.class_weight ? p.class_weight[c] : 1.0;
  const math::LossAndSlope<double> r = math::element_terms(p.loss, x, t, pw, k);
  return {w * r.loss, w * r.slope};
}

}  // namespace

double rows_scalar(const Problem& p, const RunContext& scaling, int64_t begin, int64_t end) {
  const int64_t C = p.classes;
  double total = 0.0;
  if (is_row_loss(p.loss)) {
    for (int64_t n = begin; n < end; ++n) {
      float* g = p.grad_out ? p.grad_out + n * C : nullptr;
      const double loss = softmax_row(p, scaling, n, g);
      if (p.loss_out) p.loss_out[n] = static_cast<float>(loss);
      total += loss;
    }
    return total;
  }
  const math::ElementScalars<double> scalars = math::element_scalars<double>(p);
  for (int64_t n = begin; n < end; ++n) {
    const bool by_row = p.balance == Balance::Row || reads_target_pairs(p.loss);
    const double rw = p.balance != Balance::Off && by_row ? balance_row_weight(p, n) : 1.0;
    const int32_t y = p.labels ? p.labels[n] : -1;
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = n * C + c;
      const double x = static_cast<double>(p.logits[i]);
      const double t = p.labels ? (c == y ? 1.0 : 0.0) : static_cast<double>(p.targets[i]);
      const double bw = (p.balance == Balance::Column && !by_row ? p.balance_weight[c] : rw) *
                        sample_weight(p, p.sample_weight_per_element ? i : n);
      const math::LossAndSlope<double> r = element_loss(p, scalars, c, x, t);
      const double loss = bw * r.loss;
      if (p.grad_out) p.grad_out[i] = static_cast<float>(grad_scale(p, scaling, i) * bw * r.slope);
      if (p.loss_out) p.loss_out[i] = static_cast<float>(loss);
      total += loss;
    }
  }
  return total;
}

// ---- kernel level ----------------------------------------------------------------------------------

namespace {

SimdLevel detect_best_level() {
#if defined(CBLOSS_X86)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
    return SimdLevel::Avx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::Avx2;
#endif
  return SimdLevel::Vec128;
}

std::atomic<int>& current_level() {
  static std::atomic<int> level([] {
    SimdLevel l = best_simd_level();
    SimdLevel requested;
    const char* env = std::getenv("CBLOSS_SIMD");
    if (env && parse_simd_level(env, &requested) && requested < l) l = requested;
    return static_cast<int>(l);
  }());
  return level;
}

RowsFn rows_function(SimdLevel level) {
  switch (level) {
#if defined(CBLOSS_X86)
    case SimdLevel::Avx512:
      return rows_avx512;
    case SimdLevel::Avx2:
      return rows_avx2;
#else
    case SimdLevel::Avx512:
    case SimdLevel::Avx2:
#endif
    case SimdLevel::Vec128:
      return rows_vec128;
    case SimdLevel::Scalar:
      break;
  }
  return rows_scalar;
}

// Rows per reduction chunk: a function of the shape only, so partial sums (and their order) are the
// same whatever the number of threads.
int64_t chunk_rows(const Problem& p) {
  const int64_t target_elements = 32768;
  return std::max<int64_t>(1, target_elements / std::max<int64_t>(1, p.classes));
}

// Below this many logits a call stays on the calling thread (waking workers costs more).
constexpr int64_t kParallelThreshold = 65536;

}  // namespace
}  // namespace cpu

SimdLevel best_simd_level() {
  static const SimdLevel best = cpu::detect_best_level();
  return best;
}

SimdLevel simd_level() { return static_cast<SimdLevel>(cpu::current_level().load()); }

SimdLevel set_simd_level(SimdLevel level) {
  const SimdLevel l = level > best_simd_level() ? best_simd_level() : level;
  cpu::current_level().store(static_cast<int>(l));
  return l;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar:
      return "scalar";
    case SimdLevel::Vec128:
#if defined(CBLOSS_X86)
      return "sse2";
#else
      return "vec128";
#endif
    case SimdLevel::Avx2:
      return "avx2";
    case SimdLevel::Avx512:
      return "avx512";
  }
  return "scalar";
}

bool parse_simd_level(const char* name, SimdLevel* out) {
  struct Entry {
    const char* name;
    SimdLevel level;
  };
  static const Entry entries[] = {{"scalar", SimdLevel::Scalar}, {"sse2", SimdLevel::Vec128},
                                  {"vec128", SimdLevel::Vec128}, {"neon", SimdLevel::Vec128},
                                  {"avx2", SimdLevel::Avx2},     {"avx512", SimdLevel::Avx512}};
  for (const Entry& e : entries) {
    if (std::strcmp(name, e.name) == 0) {
      *out = e.level;
      return true;
    }
  }
  return false;
}

double reduction_divisor(const Problem& p) { return cpu::reduction_divisor(p); }

namespace {

// The first label in [begin, end) out of [0, classes) and not ignore_index, or -1: branch-free
// blocks (the compiler vectorizes them), the exact position only after a failure.
int64_t first_invalid_in(const int32_t* labels, int64_t begin, int64_t end, uint32_t limit, bool use_ignore,
                         int32_t ignore_index) {
  const int64_t block = 4096;
  for (int64_t b = begin; b < end; b += block) {
    const int64_t stop = std::min(end, b + block);
    int bad = 0;
    for (int64_t i = b; i < stop; ++i) {
      const int32_t y = labels[i];
      bad |= static_cast<uint32_t>(y) >= limit && !(use_ignore && y == ignore_index);
    }
    if (!bad) continue;
    for (int64_t i = b; i < stop; ++i) {
      const int32_t y = labels[i];
      if (static_cast<uint32_t>(y) >= limit && !(use_ignore && y == ignore_index)) return i;
    }
  }
  return -1;
}

}  // namespace

int64_t first_invalid_label(const int32_t* labels, int64_t n, int64_t classes, bool use_ignore,
                            int32_t ignore_index) {
  // The first bad block wins, so the row reported does not depend on the thread count.
  const uint32_t limit = static_cast<uint32_t>(classes);
  for (const int64_t i : cpu::label_blocks(n, [&](int64_t begin, int64_t end) {
         return first_invalid_in(labels, begin, end, limit, use_ignore, ignore_index);
       })) {
    if (i >= 0) return i;
  }
  return -1;
}

void parallel_copy(float* dst, const float* src, size_t n) {
  const size_t chunk = 1 << 16;
  const int64_t chunks = static_cast<int64_t>((n + chunk - 1) / chunk);
  cpu::ThreadPool::instance().run(chunks, [&](int64_t i) {
    const size_t begin = static_cast<size_t>(i) * chunk;
    std::memcpy(dst + begin, src + begin, std::min(chunk, n - begin) * sizeof(float));
  });
}

int cpu_threads() { return cpu::ThreadPool::instance().threads(); }

void set_cpu_threads(int n) { cpu::ThreadPool::instance().set_threads(n); }

double run_cpu(const Problem& p) {
  using cpu::RunContext;
  const double divisor = cpu::reduction_divisor(p);
  RunContext ctx;
  if (p.divisor == Divisor::None) {
    ctx.per_element = p.grad_output != nullptr;
    ctx.reduced_scale = p.grad_output_scalar;
  } else {
    // A zero divisor (empty batch, every row ignored) gives a NaN loss and, as in PyTorch, a zero
    // gradient rather than 0 * inf.
    ctx.reduced_scale = divisor != 0.0 ? p.grad_output_scalar / divisor : 0.0;
  }
  ctx.stream_gradient = p.grad_out != nullptr && p.rows * p.classes * int64_t{4} >= cpu::kStreamGradientBytes;
  ctx.row_float = row_scalars<float>(p);
  ctx.row_double = row_scalars<double>(p);

  const SimdLevel level = simd_level();
  if (level != SimdLevel::Scalar) {
    // float copies of the per-class vectors, laid out one after another in one buffer
    const int64_t C = p.classes;
    const int64_t pair = reads_target_pairs(p.loss) ? 2 : C;
    std::vector<float>& s = ctx.storage;
    s.reserve(static_cast<size_t>(4 * C + 2 * pair));
    auto copy = [&](const double* src, int64_t n) -> size_t {
      const size_t at = s.size();
      for (int64_t i = 0; i < n; ++i) s.push_back(static_cast<float>(src[i]));
      return at;
    };
    const size_t cw = p.class_weight ? copy(p.class_weight, C) : SIZE_MAX;
    const size_t pw = p.pos_weight ? copy(p.pos_weight, C) : SIZE_MAX;
    const size_t al = p.alpha ? copy(p.alpha, pair) : SIZE_MAX;
    const size_t bw = p.balance_weight ? copy(p.balance_weight, pair) : SIZE_MAX;
    // The logit map: bias and margin as floats, zeros where absent, so that the kernels
    // that map read both without a test.
    ctx.map_logits = maps_logits(p);
    const std::vector<double> zeros(ctx.map_logits ? static_cast<size_t>(C) : 0, 0.0);
    const size_t lb = ctx.map_logits ? copy(p.logit_bias ? p.logit_bias : zeros.data(), C) : SIZE_MAX;
    const size_t mg = ctx.map_logits ? copy(p.margin ? p.margin : zeros.data(), C) : SIZE_MAX;
    ctx.logit_scale = static_cast<float>(p.logit_scale);
    ctx.map_bias_only = ctx.map_logits && p.margin == nullptr && p.logit_scale == 1.0;
    ctx.class_weight = cw == SIZE_MAX ? nullptr : s.data() + cw;
    ctx.pos_weight = pw == SIZE_MAX ? nullptr : s.data() + pw;
    ctx.alpha = al == SIZE_MAX ? nullptr : s.data() + al;
    ctx.balance_weight = bw == SIZE_MAX ? nullptr : s.data() + bw;
    ctx.logit_bias = lb == SIZE_MAX ? nullptr : s.data() + lb;
    ctx.margin = mg == SIZE_MAX ? nullptr : s.data() + mg;
  }
  const cpu::RowsFn rows = cpu::rows_function(level);

  const int64_t step = cpu::chunk_rows(p);
  const int64_t chunks = (p.rows + step - 1) / step;
  double total = 0.0;
  if (chunks <= 1) {
    total = rows(p, ctx, 0, p.rows);
  } else {
    std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
    auto task = [&](int64_t i) {
      const int64_t begin = i * step;
      partial[static_cast<size_t>(i)] = rows(p, ctx, begin, std::min(p.rows, begin + step));
    };
    if (p.rows * p.classes < cpu::kParallelThreshold) {
      for (int64_t i = 0; i < chunks; ++i) task(i);
    } else {
      cpu::ThreadPool::instance().run(chunks, task);
    }
    for (double v : partial) total += v;
  }
  if (p.divisor == Divisor::None) return total;
  if (divisor == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return total / divisor;
}

}  // namespace cbloss
