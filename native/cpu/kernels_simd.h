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
// Three layouts of the row losses, one header each (the row scalars of the first two end in
// simd_common.h's lane_terms; all three share row_epilogue.h with the scalar rows):
//   * few classes (C <= W, and beyond while the transposes are cheap — with AVX-512 up to 28: LaneRows::takes;
//     simd_lane_rows.h): W rows at a time, one row per lane — the rows are transposed into a small column-major tile,
//     every row statistic (max, S, log S, focal factor) is one vector operation, and the gradient tile is transposed back;
//   * from there to C <= 8W (simd_register_rows.h): W rows at a time, two rows held in registers at once (max, exponentials
//     and sums), then the row scalars of the W rows as vectors, as above, then each row's gradient:
//     read once, gradient written once;
//   * more classes (simd_wide_rows.h): one row at a time in blocks of kBlock logits. Pass 1 takes each block's max,
//     parks e = exp(z - block max) in the gradient row (still in cache) and sums it; the blocks'
//     (max, sum) pairs merge into (m, S) without another exp per element; pass 2 rescales the parked
//     values into the gradient. A row is read once from memory (the second read is of the gradient
//     buffer, in cache for all but the largest rows), and z is never read after the gradient is
//     written, so the gradient may overwrite the logits.
//
// Element-wise losses (BCE, SigmoidFocal, FocalBinary, Asymmetric; simd_elements.h) run over flat blocks of whole rows with the
// per-class factors tiled to the block, so that every vector is full whatever C is.
#pragma once

#include "simd_elements.h"
#include "simd_lane_rows.h"
#include "simd_register_rows.h"
#include "simd_wide_rows.h"

namespace cbloss {
namespace cpu {

template <int W>
struct SimdKernels {
  static double rows(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end) {
    if (!is_row_loss(p.loss)) return ElementSpans<W>::elements(p, ctx, begin, end);
    if (LaneRows<W>::takes(p.classes)) return LaneRows<W>::rows(p, ctx, begin, end);
    if (p.classes <= RegisterRows<W>::kRegisterRowsMaxC) return RegisterRows<W>::rows(p, ctx, begin, end);
    return WideRows<W>::rows(p, ctx, begin, end);
  }
};

}  // namespace cpu
}  // namespace cbloss
