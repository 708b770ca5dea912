// The SIMD kernels instantiated for vec128 (W = 4 float lanes). This file is compiled with the
// instruction-set flags of its level (CMakeLists.txt) and is only called after the CPU was checked.
#define CBLOSS_MATH_NS math_vec128
#include "kernels_simd.h"

namespace cbloss {
namespace cpu {

double rows_vec128(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end) {
  return SimdKernels<4>::rows(p, ctx, begin, end);
}

}  // namespace cpu
}  // namespace cbloss
