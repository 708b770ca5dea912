// Row weights, ignored rows and the terms of the data-dependent reduction divisors, written once for
// every backend (`__host__ __device__` under nvcc): the CPU sums them on the host, the CUDA backend in
// divisor_terms_kernel for arrays on the device. W is the type of the weight vectors (double on the
// host, float on the device).
#pragma once

#include <cstdint>

#include "loss_kinds.h"
#include "math.h"
#include "problem.h"

namespace cbloss {

// Row n is ignored: its kind honours ignore_index and its label is it.
CBL_HD bool row_ignored(LossKind kind, const int32_t* labels, int32_t ignore_index, int64_t n) {
  return labels && uses_ignore_index(kind) && labels[n] == ignore_index;
}

// The class-balanced weight of row n (Cui et al.; docs/semantics.md, "Class-balanced weights and
// reductions"): w[y_n] for class indices (0 when the row is ignored), sum_c w_c t_nc for element or
// probability targets, and for the binary focal loss (one logit a row) w_0 (1 - t) + w_1 t.
template <class W>
CBL_HD double balance_row_weight(LossKind kind, const W* w, const int32_t* labels, const float* targets,
                                 int64_t classes, int32_t ignore_index, int64_t n) {
  if (reads_target_pairs(kind)) {
    const double t = targets[n];
    return static_cast<double>(w[0]) * (1.0 - t) + static_cast<double>(w[1]) * t;
  }
  if (labels) return row_ignored(kind, labels, ignore_index, n) ? 0.0 : static_cast<double>(w[labels[n]]);
  const float* t = targets + n * classes;
  double sum = 0.0;
  for (int64_t c = 0; c < classes; ++c) sum += static_cast<double>(w[c]) * static_cast<double>(t[c]);
  return sum;
}

// What row n adds to the divisor of CrossEntropy's 'mean' (Divisor::LabelWeight): the class weight at
// its label (1 unweighted), 0 when ignored; 1 for probability targets.
template <class W>
CBL_HD double label_weight_term(LossKind kind, const W* class_weight, const int32_t* labels, int32_t ignore_index,
                                int64_t n) {
  if (!labels) return 1.0;
  if (row_ignored(kind, labels, ignore_index, n)) return 0.0;
  return class_weight ? static_cast<double>(class_weight[labels[n]]) : 1.0;
}

// The divisor of a reduction over host arrays, from the targets alone (known before any gradient is
// written: every gradient element is scaled by 1 / divisor), or the call's avg_factor (docs/semantics.md,
// "Per-call options"). count_ignored(labels, n, ignore_index): how many of n labels equal ignore_index
// (the CPU counts over its threads). Host code; device arrays sum label_weight_term / balance_row_weight
// in a kernel (cuda/kernels/sums.cuh).
template <class CountIgnored>
double divisor_of(const Problem& p, CountIgnored count_ignored) {
  if (p.avg_factor > 0.0 && p.divisor != Divisor::None && p.divisor != Divisor::One) return p.avg_factor;
  switch (p.divisor) {
    case Divisor::None:
    case Divisor::One:
      return 1.0;
    case Divisor::Elements:
      return static_cast<double>(output_elements(p));
    case Divisor::Rows:
      return static_cast<double>(p.rows);
    case Divisor::LabelWeight: {
      if (!p.labels) return static_cast<double>(p.rows);
      if (!p.class_weight && uses_ignore_index(p.loss)) {
        return static_cast<double>(p.rows - count_ignored(p.labels, p.rows, p.ignore_index));
      }
      double sum = 0.0;
      for (int64_t n = 0; n < p.rows; ++n) {
        sum += label_weight_term(p.loss, p.class_weight, p.labels, p.ignore_index, n);
      }
      return sum;
    }
    case Divisor::BalanceWeight: {
      double sum = 0.0;
      for (int64_t n = 0; n < p.rows; ++n) {
        sum += balance_row_weight(p.loss, p.balance_weight, p.labels, p.targets, p.classes, p.ignore_index, n);
      }
      return sum;
    }
  }
  return 1.0;
}

}  // namespace cbloss
