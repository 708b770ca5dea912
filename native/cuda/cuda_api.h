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
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

// CBLOSS_LAUNCH(kernel, grid, block, stream, args...): `kernel` is a __global__ function or a
// pointer to one (a template instance goes through a variable, because of the commas).
#if defined(CBLOSS_CUDA_EMULATION)
#define CBLOSS_LAUNCH(kernel, grid, block, stream, ...)                                         \
  ::cbloss_emu::launch_shared(grid, block, 0, reinterpret_cast<const void*>(kernel), stream, [=] { \
    kernel(__VA_ARGS__);                                                                         \
  })
#else
#define CBLOSS_LAUNCH(kernel, grid, block, stream, ...) kernel<<<grid, block, 0, stream>>>(__VA_ARGS__)
#endif

// CBLOSS_LAUNCH_SHARED(kernel, grid, block, bytes, stream, args...): with `bytes` of dynamic shared
// memory, which the kernel finds through CBLOSS_DYNAMIC_SHARED(type, name): `type* name`, 16-byte
// aligned (one array per kernel: it is all the dynamic shared memory of the block).
#if defined(CBLOSS_CUDA_EMULATION)
#define CBLOSS_LAUNCH_SHARED(kernel, grid, block, bytes, stream, ...)                                   \
  ::cbloss_emu::launch_shared(grid, block, bytes, reinterpret_cast<const void*>(kernel), stream, [=] { \
    kernel(__VA_ARGS__);                                                                               \
  })
#define CBLOSS_DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::cbloss_emu::dynamic_shared())
#else
#define CBLOSS_LAUNCH_SHARED(kernel, grid, block, bytes, stream, ...) \
  kernel<<<grid, block, bytes, stream>>>(__VA_ARGS__)
#define CBLOSS_DYNAMIC_SHARED(type, name)                    \
  extern __shared__ float4 cbloss_dynamic_shared_memory[]; \
  type* name = reinterpret_cast<type*>(cbloss_dynamic_shared_memory)
#endif

// CBLOSS_BLOCK_SHARED(type, name, n): `__shared__ type name[n]` (in the emulator, filled with 0xff bytes
// when a block first reaches it: a read of what the block did not write shows).
#if defined(CBLOSS_CUDA_EMULATION)
#define CBLOSS_BLOCK_SHARED(type, name, n) \
  static type name[n];                     \
  static uint64_t name##_block = 0;        \
  ::cbloss_emu::poison_for_block(name, sizeof(name), &name##_block)
#else
#define CBLOSS_BLOCK_SHARED(type, name, n) __shared__ type name[n]
#endif

// Thread block clusters (sm_90; the kernels that use them compile to nothing for older GPUs, and the
// host launches them only on a GPU of compute capability 9 or more):
//   CBLOSS_CLUSTERS: defined where cluster code is compiled (sm_90+ device code, host code, emulator);
//   CBLOSS_CLUSTER_SHARED(type, name, n): `type name[n]` in shared memory that the other blocks of
//     the cluster read (the emulator gives each block its own copy);
//   cluster_rank(), cluster_sync(), cluster_peer(p, rank, n): p (in a CBLOSS_CLUSTER_SHARED array of
//     n) in the shared memory of block `rank` of the cluster.
#if defined(CBLOSS_CUDA_EMULATION)
#define CBLOSS_CLUSTERS 1
#define CBLOSS_CLUSTER_SHARED(type, name, n)                                                  \
  static type name##_of_block[::cbloss_emu::kMaxClusterBlocks][n];                         \
  static uint64_t name##_block[::cbloss_emu::kMaxClusterBlocks] = {};                      \
  type* name = name##_of_block[::cbloss_emu::cluster_rank()];                              \
  ::cbloss_emu::poison_for_block(name, sizeof(type) * (n), &name##_block[::cbloss_emu::cluster_rank()])
#define CBLOSS_LAUNCH_CLUSTER(kernel, grid, block, cluster, shared_bytes, stream, ...)                       \
  ::cbloss_emu::launch_cluster(grid, block, cluster, shared_bytes, reinterpret_cast<const void*>(kernel), stream, \
                               [=] { kernel(__VA_ARGS__); })
#elif !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
#define CBLOSS_CLUSTERS 1
#define CBLOSS_CLUSTER_SHARED(type, name, n) __shared__ type name[n]
#endif

// Cooperative launches: every block of the grid resident at once, so that they can wait for each other.
//   CBLOSS_LAUNCH_COOPERATIVE(kernel, grid, block, shared_bytes, stream, args...): a cudaError_t (a
//     grid larger than the GPU holds at once is refused, not run);
//   grid_sync(): a barrier for every thread of the grid; what was written before it, anywhere in the
//     grid, is seen after it (read it with read_after_grid_sync: not from a stale L1 line).
// The emulator runs such a launch as one cluster of all its blocks (each with its own dynamic shared
// memory), the blocks taking turns up to each barrier.
#if defined(CBLOSS_CUDA_EMULATION)
#define CBLOSS_LAUNCH_COOPERATIVE(kernel, grid, block, shared_bytes, stream, ...)                            \
  ::cbloss_emu::launch_cooperative(grid, block, shared_bytes, reinterpret_cast<const void*>(kernel), stream, \
                                   [=] { kernel(__VA_ARGS__); })
#else
#define CBLOSS_LAUNCH_COOPERATIVE(kernel, grid, block, shared_bytes, stream, ...) \
  ::cbloss::cuda::launch_cooperative(kernel, grid, block, shared_bytes, stream, __VA_ARGS__)
#endif

// CBLOSS_CHECK_ALIGNED(p, bytes) before a vector access of `bytes` at p: checked by the emulator (a GPU
// faults on a misaligned one, x86 does not), nothing under nvcc.
#if defined(CBLOSS_CUDA_EMULATION)
#define CBLOSS_CHECK_ALIGNED(p, bytes) ::cbloss_emu::check_aligned(p, bytes)
#else
#define CBLOSS_CHECK_ALIGNED(p, bytes) ((void)0)
#endif

// Where a kernel reads or writes global memory (kernels/access.cuh): in the emulator, each access is
// counted with its source site for the traffic accounting (CBLOSS_EMULATED_TRAFFIC); under nvcc the
// site is an empty struct and the count nothing.
//   CBLOSS_SITE: the site of the call where it is a default argument (the caller's file and line);
//   CBLOSS_COUNT_ACCESS(address, bytes, store, site); CBLOSS_NAME_BUFFER(name, address, bytes): the
//   buffer the host code passes to the launches that follow, by what it holds (after
//   CBLOSS_FORGET_BUFFER_NAMES(), at the start of a call).
#if defined(CBLOSS_CUDA_EMULATION)
#define CBLOSS_SITE (::cbloss_emu::Site{__builtin_FILE(), __builtin_LINE()})
#define CBLOSS_COUNT_ACCESS(address, bytes, store, site) ::cbloss_emu::global_access(address, bytes, store, site)
#define CBLOSS_NAME_BUFFER(name, address, bytes) ::cbloss_emu::name_buffer(name, address, bytes)
#define CBLOSS_FORGET_BUFFER_NAMES() ::cbloss_emu::forget_buffer_names()
#else
#define CBLOSS_SITE (::cbloss::cuda::AccessSite{})
#define CBLOSS_COUNT_ACCESS(address, bytes, store, site) ((void)0)
#define CBLOSS_NAME_BUFFER(name, address, bytes) ((void)0)
#define CBLOSS_FORGET_BUFFER_NAMES() ((void)0)
#endif

// CBLOSS_UNROLL before a loop of a constant count over a small array: unrolled, the array lives in
// registers (ptxas puts an array indexed by a loop variable on the stack, in local memory).
#if defined(CBLOSS_CUDA_EMULATION)
#define CBLOSS_UNROLL
#else
#define CBLOSS_UNROLL _Pragma("unroll")
#endif

// CBLOSS_NOINLINE: a device function kept out of line (nvcc's __noinline__; libstdc++ spells its own
// attribute with that name, so the emulator cannot define it).
#if defined(CBLOSS_CUDA_EMULATION)
#define CBLOSS_NOINLINE __attribute__((noinline))
#else
#define CBLOSS_NOINLINE __noinline__
#endif

namespace cbloss {
namespace cuda {

#if defined(CBLOSS_CUDA_EMULATION)
using AccessSite = ::cbloss_emu::Site;
#else
struct AccessSite {};
#endif

#if defined(CBLOSS_CUDA_EMULATION)
inline void grid_sync() { ::cbloss_emu::sync_cluster(); }
#else
__device__ __forceinline__ void grid_sync() { cooperative_groups::this_grid().sync(); }
template <class Kernel, class... Args>
cudaError_t launch_cooperative(Kernel* kernel, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                               const Args&... args) {
  cudaLaunchAttribute cooperative;
  cooperative.id = cudaLaunchAttributeCooperative;
  cooperative.val.cooperative = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = &cooperative;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, args...);
}
#endif

#if defined(CBLOSS_CLUSTERS)
#if defined(CBLOSS_CUDA_EMULATION)
inline unsigned cluster_rank() { return ::cbloss_emu::cluster_rank(); }
inline void cluster_sync() { ::cbloss_emu::sync_cluster(); }
// (each block's copy of a CBLOSS_CLUSTER_SHARED array of n is n elements after the previous one)
template <class T>
T* cluster_peer(T* local, unsigned rank, int n) {
  const long offset = (static_cast<long>(rank) - static_cast<long>(cluster_rank())) * n;
  return local + offset;
}
#else
__device__ __forceinline__ unsigned cluster_rank() { return cooperative_groups::this_cluster().block_rank(); }
__device__ __forceinline__ void cluster_sync() { cooperative_groups::this_cluster().sync(); }
template <class T>
__device__ __forceinline__ T* cluster_peer(T* local, unsigned rank, int /*n: the emulator's*/) {
  return cooperative_groups::this_cluster().map_shared_rank(local, rank);
}
#endif
#endif

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
