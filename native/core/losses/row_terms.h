// What every softmax-row layout hands a row loss's policy, and what it gets back (CPU: scalar, one row
// per lane, register groups, wide rows; CUDA: every row kernel through kernels/softmax_rows.cuh).
//
// A layout computes, for row n with max m, S = sum_c exp(z_c - m) and s = softmax(z), the sums below;
// the policy turns them into the row's loss and the two scales of its gradient, which every row loss
// writes as  d loss / d z_c = coef * s_c - q_c,  q_c = hit at the label plus, for the kinds with a
// per-class target term (label smoothing, probability targets: CrossEntropy), a term the layouts add
// themselves (see cross_entropy.h).
#pragma once

#include "../math.h"
#include "../row_scalars.h"

namespace cbloss {
namespace CBLOSS_MATH_NAMESPACE_NAME {

template <class T>
struct SoftmaxRow {
  T loss;
  T coef;
  T hit;
};

template <class T>
struct SoftmaxSums {
  T gap_y;   // m - z_y (unused for probabilities)
  T log_s;   // log S (log_row_sum)
  T linear;  // sum_c a_c (m - z_c), a_c the loss weight of class c (0 when the kind has no target term)
  T mass;    // sum_c a_c (probability targets)
};

// log S, from S = sum_c e^(z_c - m) and `below`, the part of S from the logits strictly below the max m
// (S = ties + below: each of the ties >= 1 logits at the max adds e^0 = 1). With one max, log S =
// log1p(below): exact for a confident row, whose small loss log S would otherwise be rounded away with
// S to 1 (the loss of logits [8, 1, 1] at label 0 was 5.5e-5 off in float, and below ~1e-7 it was 0).
// With several maxima S >= 2, and log S loses nothing. (Scalar T: float, double.)
template <class T>
CBL_HD T log_row_sum(T S, T below) {
  return S - below < T(1.5) ? m_log1p(below) : m_log(S);
}

// The same where a layout has 1/S anyway (no division of its own): log S plus the first-order
// correction (1 + below - S) / S for what rounding S lost — exact for S = 1, and otherwise off by the
// square of S's rounding error (~1e-14 absolute, while S > 1 means below > ~6e-8).
template <class T>
CBL_HD T log_row_sum(T S, T below, T inv_s) {
  return m_log(S) + select(S - below < T(1.5), (below - (S - T(1))) * inv_s, T(0));
}

// e_y - S for the gradient at the label, which every layout writes as
//   d loss / d z_y = k coef (e_y - S) / S + k (coef - hit) - k q'_y
// (the same as k (coef e_y / S - hit) - k q'_y, q'_y the per-class target term): for a confident row whose
// label holds the max (e_y = 1, S < 1.5), 1 - S cancels in float — and so did coef / S - hit, which left
// the label's gradient ~6e-8 k off where it is ~1e-3 k small (a scaled logit map makes k large) — so
// there it is -below, exact (S < 1.5: one max, S = 1 + below). Scalar T; the SIMD lanes select the same.
template <class T>
CBL_HD T label_minus_sum(T e_y, T S, T below) {
  return e_y == T(1) && S < T(1.5) ? -below : e_y - S;
}

// What a row policy may read: the call's scalars (row_scalars.h, filled once a call by row_scalars)
// and the two per-row values each layout gathers at the label. The constructor takes all three, so a
// layout cannot leave one unset.
template <class T, class G>
struct RowParams {
  CBL_HD RowParams(T w_y_, T alpha_y_, const RowScalars<G>& call_) : w_y(w_y_), alpha_y(alpha_y_), call(call_) {}
  T w_y;                       // class weight at the label (1 without weights)
  T alpha_y;                   // focal alpha at the label (the call's alpha without an alpha vector)
  RowScalars<G> call;          // per call (a copy: on CUDA a reference into the kernel's parameters
                               // would take their address)
};

}  // namespace CBLOSS_MATH_NAMESPACE_NAME
}  // namespace cbloss
