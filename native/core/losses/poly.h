// PolyLoss, Poly-1 (Leng et al., ICLR 2022; docs/semantics.md, "Poly-1"): the row policy.
//   loss = CE + eps (1 - s_y),  CE = m - z_y + log S,  1 - s_y = -expm1(-CE) (no cancellation near s_y = 1)
//   d/dz_c = (s_c - [c=y]) + eps * (-d s_y/dz_c) = (s_c - [c=y]) + eps s_y (s_c - [c=y])
//          = (1 + eps s_y)(s_c - [c=y]):  coef = hit = 1 + eps s_y
// (d s_y / d z_c = s_y ([c=y] - s_c).) Ignored rows and every reduction are those of CrossEntropy.
#pragma once

#include "row_terms.h"

namespace cbloss {
namespace CBLOSS_MATH_NAMESPACE_NAME {

struct PolyPolicy {
  template <class T, class G>
  CBL_HD static SoftmaxRow<T> row(const SoftmaxSums<T>& s, const RowParams<T, G>& p) {
    const T ce = s.gap_y + s.log_s;
    const T u = -m_expm1(-ce);  // 1 - s_y
    const T eps(p.call.poly_epsilon);
    const T k = T(1) + eps * (T(1) - u);
    return {ce + eps * u, k, k};
  }
};

}  // namespace CBLOSS_MATH_NAMESPACE_NAME
}  // namespace cbloss
