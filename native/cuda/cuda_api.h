// What the CUDA sources include instead of <cuda_runtime.h>: the real runtime and fp16/bf16 headers
// under nvcc, or the CPU emulator (emulator/cuda_emulator.h) in the CBLOSS_CUDA_EMULATION build that
// runs this same code in the test suite on machines without a GPU. Also the few things the two need
// to spell differently: kernel launches and the 16-bit float conversions.
#pragma once

#include <cstdint>

#if defined(CBLOSS_CUDA_EMULATION)
#include "emulator/cuda_emulator.h"
#include "../core/half.h"
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

// CBLOSS_LAUNCH(kernel, grid, block, stream, args...): `kernel` is a __global__ function or a
// pointer to one (a template instance goes through a variable, because of the commas).
#if defined(CBLOSS_CUDA_EMULATION)
#define CBLOSS_LAUNCH(kernel, grid, block, stream, ...) \
  ::cbloss_emu::launch(grid, block, stream, [&] { kernel(__VA_ARGS__); })
#else
#define CBLOSS_LAUNCH(kernel, grid, block, stream, ...) kernel<<<grid, block, 0, stream>>>(__VA_ARGS__)
#endif

// CBLOSS_UNROLL before a loop of a constant count over a small array: unrolled, the array lives in
// registers (ptxas puts an array indexed by a loop variable on the stack, in local memory).
#if defined(CBLOSS_CUDA_EMULATION)
#define CBLOSS_UNROLL
#else
#define CBLOSS_UNROLL _Pragma("unroll")
#endif

namespace cbloss {
namespace cuda {

// Storage of the 16-bit logit types: their bit patterns.
struct Float16 {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float from_float(float v, float*) { return v; }
#if defined(CBLOSS_CUDA_EMULATION)
__device__ __forceinline__ float to_float(Float16 v) { return half_bits_to_float(v.bits); }
__device__ __forceinline__ float to_float(BFloat16 v) { return bfloat16_bits_to_float(v.bits); }
__device__ __forceinline__ Float16 from_float(float v, Float16*) { return {float_to_half_bits(v)}; }
__device__ __forceinline__ BFloat16 from_float(float v, BFloat16*) { return {float_to_bfloat16_bits(v)}; }
#else
__device__ __forceinline__ float to_float(Float16 v) { return __half2float(__ushort_as_half(v.bits)); }
__device__ __forceinline__ float to_float(BFloat16 v) { return __uint_as_float(static_cast<uint32_t>(v.bits) << 16); }
__device__ __forceinline__ Float16 from_float(float v, Float16*) { return {__half_as_ushort(__float2half_rn(v))}; }
__device__ __forceinline__ BFloat16 from_float(float v, BFloat16*) {
  return {__bfloat16_as_ushort(__float2bfloat16_rn(v))};
}
#endif

}  // namespace cuda
}  // namespace cbloss
