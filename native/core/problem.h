// The backend-neutral description of one loss evaluation: plain pointers and sizes, no Node types.
// The N-API binding fills a Problem from JavaScript arguments that lib/ has already validated; a
// backend (CPU now, CUDA later) evaluates it: loss and gradient in one pass over the logits.
#pragma once

#include <cstdint>

#include "loss_kinds.h"

namespace cbloss {

// What the summed loss is divided by ('none' keeps one value per output element).
enum class Divisor : int32_t {
  None = 0,           // reduction 'none'
  One = 1,            // 'sum'
  Elements = 2,       // 'mean' over the output's elements
  Rows = 3,           // 'batchmean': sum / N
  LabelWeight = 4,    // CrossEntropy 'mean': sum of weight[y] over rows not ignored (N for probabilities)
  BalanceWeight = 5,  // 'weightedmean': sum of the class-balanced row weights
};

// How class-balanced weights (Cui et al.) multiply the base loss.
enum class Balance : int32_t {
  Off = 0,
  Row = 1,     // output element of row n times w_n = sum_c w_c * t_nc (w[y_n] for index targets)
  Column = 2,  // element (n, c) of an element-wise loss times w_c
};

// Storage type of the logits (and of the gradient, which has the logits' type). Half types are
// their 16-bit patterns; only the CUDA backend takes them (the math is float32 either way).
enum class LogitType : int32_t {
  Float32 = 0,
  Float16 = 1,
  BFloat16 = 2,
};

struct Problem {
  LossKind loss = LossKind::CrossEntropy;
  int64_t rows = 0;     // N
  int64_t classes = 1;  // C: logits per row (1 for the binary focal loss)

  // Every pointer below is host memory, or (device_memory, CUDA only) memory of the CUDA device the
  // problem runs on. With a LogitType other than Float32, `logits` and `grad_out` point to 16-bit
  // values of that type.
  bool device_memory = false;
  LogitType logit_type = LogitType::Float32;

  const float* logits = nullptr;   // rows * classes
  const int32_t* labels = nullptr; // rows class indices (or ignore_index), or null
  const float* targets = nullptr;  // rows * classes probabilities / 0-1 targets, or null

  // Loss options. Vectors are null when absent.
  const double* class_weight = nullptr;  // C: CrossEntropy / BCE `weight`
  const double* pos_weight = nullptr;    // C: BCE `posWeight`
  const double* alpha = nullptr;         // FocalSoftmax: C values; FocalBinary: 2 values
  double alpha_scalar = 1.0;             // focal alpha; SigmoidFocal: < 0 disables alpha_t
  double gamma = 0.0;
  double label_smoothing = 0.0;
  int32_t ignore_index = -100;  // kinds with uses_ignore_index (CrossEntropy, Poly)
  double poly_epsilon = 1.0;    // Poly: the weight of (1 - s_y)
  double gamma_pos = 1.0;       // Asymmetric: focusing of the positive term
  double gamma_neg = 4.0;       // Asymmetric: focusing of the negative term
  double clip = 0.05;           // Asymmetric: probability shift of the negative term
  bool detach_focusing = false; // Asymmetric: the focusing factor held constant in the gradient

  // SPEC §3.6, kinds with takes_logit_maps: the loss is taken at z' = logit_scale (z + logit_bias -
  // margin[y] e_y) and the gradient is logit_scale times its derivative in z' (core/logit_map.h).
  const double* logit_bias = nullptr;  // C, or null
  const double* margin = nullptr;      // C (class-index targets), or null
  double logit_scale = 1.0;

  // SPEC §3.7, per call: sample weights multiply each output element's loss and gradient after every
  // other weight, and leave the divisors alone; avg_factor > 0 replaces the divisor of the mean
  // reductions (Elements, Rows, LabelWeight, BalanceWeight). `sample_weight` is float32, in host or
  // (device_memory) device memory like the logits: one per row, or (element kinds,
  // sample_weight_per_element) one per logit.
  const float* sample_weight = nullptr;
  bool sample_weight_per_element = false;
  double avg_factor = 0.0;

  // Class-balanced weighting: C normalized weights (2 for FocalBinary), or null.
  const double* balance_weight = nullptr;
  Balance balance = Balance::Off;

  Divisor divisor = Divisor::Elements;

  // Upstream gradient: one value per output element (Divisor::None), else the scalar.
  const float* grad_output = nullptr;
  double grad_output_scalar = 1.0;

  float* loss_out = nullptr;  // Divisor::None: one value per output element; else unused
  float* grad_out = nullptr;  // rows * classes, or null for a forward pass; may equal logits
};

// Number of output elements of the unreduced loss: one per row for softmax losses, one per logit
// for element-wise losses.
inline int64_t output_elements(const Problem& p) {
  return is_row_loss(p.loss) ? p.rows : p.rows * p.classes;
}

// The logits go through the map of SPEC §3.6 (an identity map is not applied).
inline bool maps_logits(const Problem& p) {
  return p.logit_bias != nullptr || p.margin != nullptr || p.logit_scale != 1.0;
}

}  // namespace cbloss
