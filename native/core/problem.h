// The backend-neutral description of one loss evaluation: plain pointers and sizes, no Node types.
// The N-API binding fills a Problem from JavaScript arguments that lib/ has already validated; a
// backend (CPU now, CUDA later) evaluates it: loss and gradient in one pass over the logits.
#pragma once

#include <cstdint>

#include "call_description.h"
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

// How many elements a call's array has (CBLOSS_CALL_ARRAYS; array_elements below).
enum class CallExtent : int32_t {
  LogitElements,  // rows * classes, of the logit type
  Elements,       // rows * classes
  Rows,
  Classes,
  ClassesOrPair,  // classes, or 2 for the kinds that read target pairs (the binary focal loss)
  Outputs,        // the unreduced loss's elements (output_elements)
  SampleWeights,  // rows, or rows * classes with sample_weight_per_element
};

// What a call's array is (CBLOSS_CALL_ARRAYS).
enum class CallArrayKind : int32_t {
  DataIn,   // the call's data, read: host memory, or (device_memory) the device's
  DataOut,  // the call's data, written
  Option,   // a loss's vector, host float64
};

// Whether a call's array may be absent (null or undefined) (CBLOSS_CALL_ARRAYS).
enum class ArrayPresence : int32_t { Required, Optional };

struct Problem {
  LossKind loss = LossKind::CrossEntropy;
  int64_t rows = 0;     // N
  int64_t classes = 1;  // C: logits per row (1 for the binary focal loss)

  // Every data array is host memory, or (device_memory, CUDA only) memory of the CUDA device the
  // problem runs on. With a LogitType other than Float32, `logits` and `grad_out` point to 16-bit
  // values of that type.
  bool device_memory = false;
  LogitType logit_type = LogitType::Float32;

  // The call's arrays (core/call_description.h), null when absent.
#define CBLOSS_PROBLEM_ARRAY(argument, member, type, extent, kind, presence, traffic) type* member = nullptr;
  CBLOSS_CALL_ARRAYS(CBLOSS_PROBLEM_ARRAY)
#undef CBLOSS_PROBLEM_ARRAY

  // The call's scalars (core/call_description.h). Notes on some:
  // - logit_scale (docs/semantics.md, logit maps; kinds with takes_logit_maps): the loss is taken at
  //   z' = logit_scale (z + logit_bias - margin[y] e_y), and the gradient is logit_scale times its
  //   derivative in z' (core/logit_map.h).
  // - avg_factor (docs/semantics.md, per-call options): > 0 replaces the divisor of the mean reductions
  //   (Elements, Rows, LabelWeight, BalanceWeight). Sample weights multiply each output element's loss
  //   and gradient after every other weight and leave the divisors alone; one per row, or (element
  //   kinds, sample_weight_per_element) one per logit.
  // - grad_output_scalar: the upstream gradient when the loss is reduced (grad_output, one per output
  //   element, with Divisor::None).
#define CBLOSS_PROBLEM_REAL(slot, member, initial) double member = initial;
#define CBLOSS_PROBLEM_FLAG(slot, member) bool member = false;
#define CBLOSS_PROBLEM_CHECKED(slot)
  CBLOSS_CONFIG_SLOTS(CBLOSS_PROBLEM_CHECKED, CBLOSS_PROBLEM_REAL, CBLOSS_PROBLEM_FLAG)
#undef CBLOSS_PROBLEM_REAL
#undef CBLOSS_PROBLEM_FLAG
#undef CBLOSS_PROBLEM_CHECKED
  int32_t ignore_index = -100;  // kinds with uses_ignore_index (CrossEntropy, Poly)

  // Class-balanced weighting (balance_weight: C normalized weights, 2 for FocalBinary).
  Balance balance = Balance::Off;
  Divisor divisor = Divisor::Elements;
};

// Number of output elements of the unreduced loss: one per row for softmax losses, one per logit
// for element-wise losses.
inline int64_t output_elements(const Problem& p) {
  return is_row_loss(p.loss) ? p.rows : p.rows * p.classes;
}

// The logits go through the logit map (docs/semantics.md; an identity map is not applied).
inline bool maps_logits(const Problem& p) {
  return p.logit_bias != nullptr || p.margin != nullptr || p.logit_scale != 1.0;
}


// The elements a row has in a call's array of this extent (the call's data goes row by row), or 0
// for the per-class extents.
inline int64_t row_elements(const Problem& p, CallExtent extent) {
  switch (extent) {
    case CallExtent::LogitElements:
    case CallExtent::Elements:
      return p.classes;
    case CallExtent::Rows:
      return 1;
    case CallExtent::Outputs:
      return is_row_loss(p.loss) ? 1 : p.classes;
    case CallExtent::SampleWeights:
      return p.sample_weight_per_element ? p.classes : 1;
    case CallExtent::Classes:
    case CallExtent::ClassesOrPair:
      break;
  }
  return 0;
}

// The element count of a call's array of this extent (CBLOSS_CALL_ARRAYS).
inline int64_t array_elements(const Problem& p, CallExtent extent) {
  if (extent == CallExtent::Classes) return p.classes;
  if (extent == CallExtent::ClassesOrPair) return reads_target_pairs(p.loss) ? 2 : p.classes;
  return p.rows * row_elements(p, extent);
}

// The bytes of a call's array of this extent and element size (16-bit logit types: 2 a logit).
inline int64_t array_bytes(const Problem& p, CallExtent extent, int64_t element_bytes) {
  const bool logit_typed = extent == CallExtent::LogitElements && p.logit_type != LogitType::Float32;
  return array_elements(p, extent) * (logit_typed ? 2 : element_bytes);
}

}  // namespace cbloss
