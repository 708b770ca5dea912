// A CPU emulator of the small part of CUDA that cbloss uses, so that the CUDA sources — kernels and
// host code alike — compile with the C++ compiler and run in the test suite on machines without a
// GPU (the CBLOSS_CUDA_EMULATION build, `npm run build:emulated`). It checks logic, not speed:
//   * Every thread of a block is a fiber (ucontext) on the launching thread; blocks run one after
//     another and launches are serialized process-wide, so `__shared__` can be a static variable.
//   * __syncthreads() waits for every live thread of the block, a warp shuffle for the 32 lanes of
//     its warp. A barrier or shuffle that not all of them reach (divergent code, a lane that has
//     returned) is reported and aborts: on a GPU it would hang or read garbage.
//   * Clusters of blocks (sm_90): the blocks of a cluster take turns, switching at the cluster barrier;
//     shared memory that other blocks of the cluster read is one copy per block (CBLOSS_CLUSTER_SHARED).
//     A cooperative launch runs as one cluster of all its blocks (its grid barrier the cluster's), and
//     is refused, as on a GPU, beyond the blocks the occupancy query says fit on the multiprocessors.
//     A static shared array is poisoned again each time another block reaches it, so a block that
//     relies on one across a grid barrier reads NaNs; dynamic shared memory is each block's own.
//   * Two devices, of compute capability 9.0 (CBLOSS_EMULATED_COMPUTE_CAPABILITY sets others). Streams
//     run lazily: an asynchronous copy or memset, or a wait for an event, runs only when something
//     waits for it (a stream or event synchronization, a stream that waits for one of its events,
//     cudaFree/cudaFreeHost, a kernel launched after it on its stream — kernels run at launch), so
//     host code that reads results or refills a staging buffer without the synchronization CUDA
//     requires sees the wrong bytes. Under CBLOSS_EMULATED_SCHEDULE=reverse kernels wait too, and a
//     host wait runs every other stream's work first, the newest stream first: a stream that needs
//     another's work without waiting for its event runs before it; under =shuffle the streams run in
//     a seeded random order (CBLOSS_EMULATED_SEED). A cudaMemcpy to the device from pageable host
//     memory lands only when the default stream is synchronized (or runs its next copy, or memory is
//     freed), as CUDA allows: kernels launched on other streams before then read the old bytes.
//   * "Device memory" is host memory with a byte budget (CBLOSS_EMULATED_DEVICE_MEMORY, default
//     1 GiB) so that out-of-memory paths can be tested, as is
//     "pinned" host memory (CBLOSS_EMULATED_PINNED_MEMORY, default 1 GiB: a leak shows); both put
//     every array between inaccessible pages, its end at the second (an access past it faults), with
//     a canary around it checked after every launch (a write just outside it is reported); static
//     shared arrays filled with NaN bytes at each block's start, dynamic shared memory too (a block's
//     static and dynamic shared memory together at most 48 KB, as a GPU launches it, unless the
//     kernel's dynamic limit was raised); and
//     CBLOSS_EMULATED_LAUNCH_FAILURE=1 makes every kernel launch fail (cudaErrorLaunchFailure, as a
//     faulting kernel or a lost device does) so that the failure paths can be tested too.
//   * Memory traffic (CBLOSS_EMULATED_TRAFFIC=file, read at each launch): every global load and store
//     the kernels make through their access helpers (kernels/access.cuh) is counted per warp memory
//     instruction — the lanes' accesses from one source site in the n-th instance of that site
//     since the warp's last shuffle or barrier, as the lanes of a warp issue it together on a GPU —
//     as bytes requested, bytes used (their union) and distinct 32-byte sectors, per buffer named by
//     the host code (name_buffer); each launch appends one JSON line to the file: the kernel's name,
//     grid, block, cluster and shared memory, and per buffer the read and written counts. Under
//     CBLOSS_EMULATED_TRAFFIC_PLAN=1 launches are recorded but run no block (device memory is then
//     left uncommitted, without canaries), so that the launch shapes of a full-size problem come out
//     in milliseconds; CBLOSS_EMULATED_MULTIPROCESSORS sets the devices' multiprocessors (default 1).
// Beyond that it does not model the memory model, races between threads, caches or timing. Never part
// of a shipped build.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__
#define __launch_bounds__(...)

struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInsufficientDriver = 35,
  cudaErrorInvalidDevice = 101,
  cudaErrorLaunchFailure = 719,
  cudaErrorCooperativeLaunchTooLarge = 720,
  cudaErrorNotSupported = 801,
  cudaErrorInvalidResourceHandle = 400,
};

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

struct CUstream_st;
struct CUevent_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;

constexpr unsigned cudaStreamNonBlocking = 1;
constexpr unsigned cudaEventDisableTiming = 2;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major;
  int minor;
  int multiProcessorCount;
  size_t sharedMemPerBlockOptin;
};

const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaGetLastError();
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream);
cudaError_t cudaEventSynchronize(cudaEvent_t event);

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};
cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attribute, int value);  // per device
template <class Kernel>
cudaError_t cudaFuncSetAttribute(Kernel* kernel, cudaFuncAttribute attribute, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attribute, value);
}

// Blocks of `kernel` an SM holds at once with `block_size` threads and `shared_bytes` of dynamic shared
// memory a block, as sm_90 counts them from threads (2048 an SM, 32 blocks) and shared memory (228 KB
// an SM, 1 KB of it reserved per block; beyond the kernel's allowed dynamic shared memory: none) —
// registers and static shared memory are not modelled (npm run gpu:model reads them from ptxas).
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void* kernel, int block_size,
                                                          size_t shared_bytes);
template <class Kernel>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, Kernel* kernel, int block_size,
                                                          size_t shared_bytes) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks, reinterpret_cast<const void*>(kernel), block_size,
                                                       shared_bytes);
}

namespace cbloss_emu {

struct Coordinates {
  dim3 thread;
  dim3 block;
};

const Coordinates& coordinates();  // of the fiber running now
const dim3& block_dim();
const dim3& grid_dim();
void sync_block();
uint64_t warp_exchange(uint64_t bits, unsigned source_lane);  // every lane sends, reads source_lane's
void launch(dim3 grid, dim3 block, cudaStream_t stream, const std::function<void()>& body);
// A launch with `shared_bytes` of dynamic shared memory (each block gets it filled with 0xff bytes, NaN
// floats, so that a read before the block's own write shows); more than 48 KB needs the kernel's
// cudaFuncAttributeMaxDynamicSharedMemorySize raised on the device first, as on a GPU.
void launch_shared(dim3 grid, dim3 block, size_t shared_bytes, const void* kernel, cudaStream_t stream,
                   const std::function<void()>& body);
void* dynamic_shared();  // the running block's
// A static shared array (CBLOSS_BLOCK_SHARED, CBLOSS_CLUSTER_SHARED) is one variable for every block
// here; on a GPU each block's starts as garbage. The first thread of a block to reach its declaration
// fills it with 0xff bytes (NaN floats), so that a read of what this block did not write shows.
void poison_for_block(void* shared, size_t bytes, uint64_t* stamp);

// Thread block clusters (sm_90): `cluster` consecutive blocks along x run together; the blocks of a
// cluster take turns, each running until all its threads wait at the cluster barrier. Each block has
// `shared_bytes` of dynamic shared memory, as launch_shared gives.
constexpr unsigned kMaxClusterBlocks = 16;
void launch_cluster(dim3 grid, dim3 block, unsigned cluster, size_t shared_bytes, const void* kernel,
                    cudaStream_t stream, const std::function<void()>& body);
unsigned cluster_rank();
void sync_cluster();

// A cooperative launch (grid.y = grid.z = 1): every block resident at once, as the occupancy above
// allows on the device's multiprocessors (else cudaErrorCooperativeLaunchTooLarge, returned and
// recorded, nothing run); run as one cluster of all its blocks, sync_cluster() its grid-wide barrier.
cudaError_t launch_cooperative(dim3 grid, dim3 block, size_t shared_bytes, const void* kernel, cudaStream_t stream,
                               const std::function<void()>& body);

// A vector access (float4, uint2, uint4) must be aligned to its size on a GPU ("misaligned address");
// x86 does not care, so the emulator checks.
[[noreturn]] void misaligned_access(const void* address, size_t bytes);
inline void check_aligned(const void* address, size_t bytes) {
  if (reinterpret_cast<uintptr_t>(address) % bytes != 0) misaligned_access(address, bytes);
}

// Traffic accounting (see the header comment). A site is where in the source an access is made
// (CBLOSS_SITE, kernels/access.cuh): the lanes' n-th accesses from one site between two of the warp's
// shuffles or barriers are one warp instruction.
struct Site {
  const char* file;
  int line;
};
extern bool counting_traffic;  // true while a launch that records its traffic runs
// (bytes 0: a lane that skips its turn at the site — the warp's instruction, predicated off for it)
void count_access(const void* address, unsigned bytes, bool store, Site site);
inline void global_access(const void* address, unsigned bytes, bool store, Site site) {
  if (counting_traffic) count_access(address, bytes, store, site);
}
// Names the device memory [address, address + bytes) for the traffic of the launches that follow (a
// range that overlaps an earlier one replaces it). Accesses to device memory outside every named
// range count as "unnamed". forget_buffer_names: a new call's names start from none.
void name_buffer(const char* name, const void* address, size_t bytes);
void forget_buffer_names();

}  // namespace cbloss_emu

#define threadIdx (::cbloss_emu::coordinates().thread)
#define blockIdx (::cbloss_emu::coordinates().block)
#define blockDim (::cbloss_emu::block_dim())
#define gridDim (::cbloss_emu::grid_dim())

inline void __syncthreads() { cbloss_emu::sync_block(); }
// A memory fence for the grid: one fiber at a time sees every write at once here.
inline void __threadfence() {}
inline void __syncwarp(unsigned /*mask*/ = 0xffffffffu) { cbloss_emu::warp_exchange(0, threadIdx.x & 31u); }

template <class T>
T __shfl_xor_sync(unsigned /*mask*/, T value, int lane_mask, int width = 32) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "shuffled values are at most 8 bytes");
  const unsigned lane = threadIdx.x & 31u;
  const unsigned source = (lane & ~static_cast<unsigned>(width - 1)) |
                          ((lane ^ static_cast<unsigned>(lane_mask)) & static_cast<unsigned>(width - 1));
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = cbloss_emu::warp_exchange(bits, source);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

inline float __uint_as_float(unsigned v) {
  float f;
  std::memcpy(&f, &v, sizeof f);
  return f;
}

// A store with a cache policy: a plain store here.
template <class T>
void __stwb(T* address, T value) {
  *address = value;
}

// Integer atomics (the emulator runs one fiber at a time, so a plain update is atomic).
inline unsigned atomicAdd(unsigned* address, unsigned value) {
  const unsigned old = *address;
  *address = old + value;
  return old;
}
inline unsigned long long atomicMin(unsigned long long* address, unsigned long long value) {
  const unsigned long long old = *address;
  if (value < old) *address = value;
  return old;
}
