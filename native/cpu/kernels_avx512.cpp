// The SIMD kernels instantiated for avx512 (W = 16 float lanes). This file is compiled with the
// instruction-set flags of its level (CMakeLists.txt) and is only called after the CPU was checked.
#define CBLOSS_MATH_NS math_avx512
#include "kernels_simd.h"

namespace cbloss {
namespace cpu {

double rows_avx512(const Problem& p, const RunContext& ctx, int64_t begin, int64_t end) {
  return SimdKernels<16>::rows(p, ctx, begin, end);
}

}  // namespace cpu
}  // namespace cbloss
