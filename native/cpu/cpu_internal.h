// Shared by the CPU driver (losses_cpu.cpp) and the kernel translation units (one per SIMD level).
#pragma once

#include <cstdint>
#include <vector>

#include "../core/backend.h"
#include "../core/problem.h"
#include "../core/row_scalars.h"

namespace cbloss {
namespace cpu {

// Per-call constants, computed once before the rows are spread over threads.
struct RunContext {
  double reduced_scale = 1.0;  // gradient factor of every element when the loss is reduced
  bool per_element = false;    // Divisor::None with a grad_output array
  RowScalars<float> row_float{};  // the call's row scalars for the float SIMD lanes
  RowScalars<double> row_double{};  // and for the double paths (scalar rows, wide rows)
  // float copies of the per-class vectors for the SIMD kernels (null when absent); the kernels read
  // these pointers only, so that no std:: template is instantiated in their translation units.
  const float* class_weight = nullptr;
  const float* pos_weight = nullptr;
  const float* alpha = nullptr;
  const float* balance_weight = nullptr;
  // The logit map (docs/semantics.md, "Logit maps"; core/logit_map.h): bias and margin (C floats each,
  // zeros where the call has none) and the scale, when map_logits.
  bool map_logits = false;
  bool map_bias_only = false;  // no margin, scale 1: z' = z + b (Balanced Softmax, logit adjustment)
  const float* logit_bias = nullptr;
  const float* margin = nullptr;
  float logit_scale = 1.0f;
  // The gradient is too large for the caches: the register and wide rows write it with non-temporal
  // stores (SimdCommon::LineStream).
  bool stream_gradient = false;
  std::vector<float> storage;
};

// Gradients from this size on are written past the caches by the register-row and wide-row kernels.
constexpr int64_t kStreamGradientBytes = int64_t{32} << 20;

// Evaluates rows [begin, end) and returns the sum of their (weighted) output elements.
using RowsFn = double (*)(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end);

double rows_scalar(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end);
#if defined(CBLOSS_X86)
double rows_avx512(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end);
double rows_avx2(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end);
#endif
double rows_vec128(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end);

}  // namespace cpu
}  // namespace cbloss
