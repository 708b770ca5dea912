// Constants every kernel shares, and how a kernel reaches its arrays: typed and vector loads and
// stores, the columns of a row a thread owns, the upstream gradient factor.
// (Part of kernels.cuh, whose header comment has the overview.)
#pragma once

#include <cstdint>
#include <type_traits>

#include "../../core/math.h"
#include "../../core/problem.h"
#include "../../core/reductions.h"
#include "../../core/logit_map.h"
#include "../../core/loss_terms.h"
#include "../cuda_api.h"
#include "../kernel_args.h"

namespace cbloss {
namespace cuda {

constexpr int kBlock = 256;
// Logits a thread holds in registers (held_rows_kernel) in runs of V: 32 float32 in runs of 4, else 16
// — the 16-bit types' unpacking and packing, and single-column runs' own addresses and bounds, take
// registers too: 32 spilled under the bound of held_min_blocks (ptxas-check.sh).
template <class T, int V>
constexpr int kMaxHeldValues = sizeof(T) == 4 && V == 4 ? 32 : 16;
constexpr int kSliceColumns = 16384;  // columns per block when a row takes several blocks
constexpr int kMaxGridX = 65535;

// Every global-memory access of a kernel goes through read_at / write_at or load_n / store_n, which
// the emulator counts per warp instruction (CBLOSS_EMULATED_TRAFFIC; nothing under nvcc): `site` is
// where they are called from. (Shared memory read through them is not counted: not device memory.)
template <class T>
__device__ __forceinline__ T read_at(const T* p, int64_t i, AccessSite site = CBLOSS_SITE) {
  CBLOSS_COUNT_ACCESS(p + i, sizeof(T), false, site);
  (void)site;
  return p[i];
}

template <class T>
__device__ __forceinline__ void write_at(T* p, int64_t i, T v, AccessSite site = CBLOSS_SITE) {
  CBLOSS_COUNT_ACCESS(p + i, sizeof(T), true, site);
  (void)site;
  p[i] = v;
}

// Whether this launch must do nothing (an invalid device label was found): the same for every
// thread of the grid, so returning at once keeps every barrier and shuffle convergent.
__device__ __forceinline__ bool skip_launch(const KernelArgs& a) {
  return a.invalid_label && read_at(a.invalid_label, 0) != ~0ull;
}

template <class T>
__device__ __forceinline__ float load(const void* base, int64_t i, AccessSite site = CBLOSS_SITE) {
  return to_float(read_at(static_cast<const T*>(base), i, site));
}

template <class T>
__device__ __forceinline__ void store(void* base, int64_t i, float v, AccessSite site = CBLOSS_SITE) {
  write_at(static_cast<T*>(base), i, from_float(v, static_cast<T*>(nullptr)), site);
}

// Two 16-bit values in one 32-bit word, the first in the low half (little-endian, as every GPU is).
template <class T>
__device__ __forceinline__ void unpack_pair(uint32_t word, float* out) {
  out[0] = to_float(T{static_cast<uint16_t>(word & 0xffffu)});
  out[1] = to_float(T{static_cast<uint16_t>(word >> 16)});
}

template <class T>
__device__ __forceinline__ uint32_t pack_pair(const float* in) {
  T* none = nullptr;
  const uint32_t lo = from_float(in[0], none).bits, hi = from_float(in[1], none).bits;
  return lo | (hi << 16);
}

// A load or store that some lanes of a warp skip, in a loop where the skipped turns are not all at the
// end (on a GPU the lanes' i-th turn is one instruction, predicated off for some): the emulator counts a
// skipped turn too, so that the lanes' n-th accesses from the site stay one warp instruction.
template <class T>
__device__ __forceinline__ float load_if(bool active, const void* base, int64_t i, AccessSite site = CBLOSS_SITE) {
  if (active) return load<T>(base, i, site);
  CBLOSS_COUNT_ACCESS(nullptr, 0, false, site);
  (void)site;
  return 0.0f;
}

template <class T>
__device__ __forceinline__ void store_if(bool active, void* base, int64_t i, float v, AccessSite site = CBLOSS_SITE) {
  if (active) return store<T>(base, i, v, site);
  CBLOSS_COUNT_ACCESS(nullptr, 0, true, site);
  (void)site;
}

// V consecutive values from element i in vector accesses: float32 V = 4 (8) is one (two) 16-byte
// access(es); 16-bit types V = 8 is one 16-byte access, V = 4 one 8-byte access. The caller guarantees
// the alignment (the host picks V > 1 only then, launch_compute). Stores go through __stwb (the default
// cache policy), which always emits the vector instruction: a plain float4 store was split into four
// 4-byte stores in some kernels (held rows with R = 8, the slice gradient).
template <class T, int V>
__device__ __forceinline__ void load_n(const void* base, int64_t i, float (&v)[V], AccessSite site = CBLOSS_SITE) {
  if constexpr (V == 1) {
    v[0] = load<T>(base, i, site);
  } else if constexpr (std::is_same<T, float>::value) {
    static_assert(V % 4 == 0, "float32 runs are whole float4s");
    const float4* q = reinterpret_cast<const float4*>(static_cast<const float*>(base) + i);
    CBLOSS_CHECK_ALIGNED(q, sizeof(float4));
    CBLOSS_UNROLL
    for (int k = 0; k < V / 4; ++k) {
      const float4 f = read_at(q, k, site);
      v[4 * k] = f.x, v[4 * k + 1] = f.y, v[4 * k + 2] = f.z, v[4 * k + 3] = f.w;
    }
  } else if constexpr (V == 4) {
    CBLOSS_CHECK_ALIGNED(static_cast<const T*>(base) + i, sizeof(uint2));
    const uint2 w = read_at(reinterpret_cast<const uint2*>(static_cast<const T*>(base) + i), 0, site);
    unpack_pair<T>(w.x, v), unpack_pair<T>(w.y, v + 2);
  } else {
    static_assert(V == 8, "16-bit runs are 4 or 8 values");
    CBLOSS_CHECK_ALIGNED(static_cast<const T*>(base) + i, sizeof(uint4));
    const uint4 w = read_at(reinterpret_cast<const uint4*>(static_cast<const T*>(base) + i), 0, site);
    unpack_pair<T>(w.x, v), unpack_pair<T>(w.y, v + 2), unpack_pair<T>(w.z, v + 4), unpack_pair<T>(w.w, v + 6);
  }
}

template <class T, int V>
__device__ __forceinline__ void store_n(void* base, int64_t i, const float (&v)[V], AccessSite site = CBLOSS_SITE) {
  if constexpr (V == 1) {
    store<T>(base, i, v[0], site);
  } else if constexpr (std::is_same<T, float>::value) {
    float4* q = reinterpret_cast<float4*>(static_cast<float*>(base) + i);
    CBLOSS_CHECK_ALIGNED(q, sizeof(float4));
    CBLOSS_UNROLL
    for (int k = 0; k < V / 4; ++k) {
      CBLOSS_COUNT_ACCESS(q + k, sizeof(float4), true, site);
      __stwb(q + k, float4{v[4 * k], v[4 * k + 1], v[4 * k + 2], v[4 * k + 3]});
    }
  } else if constexpr (V == 4) {
    uint2* q = reinterpret_cast<uint2*>(static_cast<T*>(base) + i);
    CBLOSS_CHECK_ALIGNED(q, sizeof(uint2));
    CBLOSS_COUNT_ACCESS(q, sizeof(uint2), true, site);
    __stwb(q, uint2{pack_pair<T>(v), pack_pair<T>(v + 2)});
  } else {
    uint4* q = reinterpret_cast<uint4*>(static_cast<T*>(base) + i);
    CBLOSS_CHECK_ALIGNED(q, sizeof(uint4));
    CBLOSS_COUNT_ACCESS(q, sizeof(uint4), true, site);
    __stwb(q, uint4{pack_pair<T>(v), pack_pair<T>(v + 2), pack_pair<T>(v + 4), pack_pair<T>(v + 6)});
  }
  (void)site;
}

// A value another block of a cooperative launch wrote before the grid_sync() this thread has passed:
// from L2 (ld.global.cg), never from a line this SM's L1 kept from before the barrier.
template <class T>
__device__ __forceinline__ T read_after_grid_sync(const T* p, int64_t i, AccessSite site = CBLOSS_SITE) {
  CBLOSS_COUNT_ACCESS(p + i, sizeof(T), false, site);
  (void)site;
#if defined(CBLOSS_CUDA_EMULATION)
  return p[i];
#else
  return __ldcg(p + i);
#endif
}

// The columns [begin, end) of row `row` (its first element's index) that thread `lane` of a group of
// G owns: every G-th run of V columns from begin + V lane, one vector access each ((end - begin) and
// the row start are multiples of V). A thread reads and writes only its own columns in every pass, so
// a gradient may overwrite its logits.
template <class T, int V, class F>
__device__ __forceinline__ void for_each_column(const void* base, int64_t row, int64_t begin, int64_t end, int lane,
                                                int G, F&& f) {
  for (int64_t c = begin + V * lane; c < end; c += static_cast<int64_t>(V) * G) {
    float v[V];
    load_n<T, V>(base, row + c, v);
    CBLOSS_UNROLL
    for (int k = 0; k < V; ++k) f(c + k, v[k]);
  }
}

// out[c] = f(c, in[c]) over the same columns.
template <class T, int V, class F>
__device__ __forceinline__ void transform_columns(const void* in, void* out, int64_t row, int64_t begin, int64_t end,
                                                  int lane, int G, F&& f) {
  for (int64_t c = begin + V * lane; c < end; c += static_cast<int64_t>(V) * G) {
    float v[V];
    load_n<T, V>(in, row + c, v);
    CBLOSS_UNROLL
    for (int k = 0; k < V; ++k) v[k] = f(c + k, v[k]);
    store_n<T, V>(out, row + c, v);
  }
}

// out[c] = 0 over the same columns.
template <class T, int V>
__device__ __forceinline__ void zero_columns(void* out, int64_t row, int64_t begin, int64_t end, int lane, int G) {
  const float zeros[V] = {};
  for (int64_t c = begin + V * lane; c < end; c += static_cast<int64_t>(V) * G) store_n<T, V>(out, row + c, zeros);
}

// The factor of every gradient of a call: the scalar upstream gradient / divisor (0 when the divisor
// is 0: the loss is then NaN, the gradient zero, as on the CPU), or the per-element upstream gradient
// of a 'none' call.
__device__ __forceinline__ float scalar_upstream(const KernelArgs& a) {
  const double d = read_at(a.divisor, 0);
  return d != 0.0 ? static_cast<float>(a.grad_output_scalar / d) : 0.0f;
}

__device__ __forceinline__ float upstream(const KernelArgs& a, int64_t output) {
  return a.grad_output ? read_at(a.grad_output, output) : scalar_upstream(a);
}

}  // namespace cuda
}  // namespace cbloss
