// CrossEntropy (PyTorch nn.CrossEntropyLoss; docs/semantics.md, "Cross entropy"): the row policy.
//
// With m the row max, S = sum_c exp(z_c - m), s = softmax(z), weight w, smoothing eps, smooth = eps/C,
// W = sum_c w_c:
//   Index targets y:  q_c = (1-eps) w_y [c=y] + smooth w_c,  Q = sum_c q_c = (1-eps) w_y + smooth W
//     loss = sum_c q_c (LSE - z_c) = (1-eps) w_y (m - z_y + log S) + smooth (linear + W log S),
//            linear = sum_c w_c (m - z_c)
//     grad = Q s - q:  coef = Q, hit = (1-eps) w_y, and the layouts subtract smooth w_c at every column
//   Probability targets t:  t'_c = (1-eps) t_c + eps/C,  T = sum_c w_c t'_c (mass),
//     loss = -sum_c w_c t'_c log s_c = sum_c w_c t'_c (m - z_c) + T log S,
//     grad = T s - w (.) t':  coef = T, hit = 0, and the layouts subtract w_c t'_c at every column
// Writing (m - z_c) + log S instead of LSE - z_c keeps every summed term non-negative: no cancellation
// for large logits.
#pragma once

#include "row_terms.h"

namespace cbloss {
namespace CBLOSS_MATH_NAMESPACE_NAME {

struct CrossEntropyPolicy {
  template <class T, class G>
  CBL_HD static SoftmaxRow<T> index_row(const SoftmaxSums<T>& s, const RowParams<T, G>& p) {
    const T hit = T(p.call.one_minus_eps) * p.w_y;
    const T smooth(p.call.smooth), weight_sum(p.call.weight_sum);
    return {hit * (s.gap_y + s.log_s) + smooth * (s.linear + weight_sum * s.log_s), hit + smooth * weight_sum, hit};
  }
  template <class T, class G>
  CBL_HD static SoftmaxRow<T> probability_row(const SoftmaxSums<T>& s, const RowParams<T, G>&) {
    return {s.linear + s.mass * s.log_s, s.mass, T(0)};
  }
};

}  // namespace CBLOSS_MATH_NAMESPACE_NAME
}  // namespace cbloss
