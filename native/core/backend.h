// The interface every compute backend implements. Kept free of Node and CUDA headers so that the
// binding and the tests of the core see one plain C++ API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "problem.h"

namespace cbloss {

// Evaluates `p` on the CPU. Returns the reduced loss (NaN where the divisor is 0); with
// Divisor::None the per-element losses go to p.loss_out and the return value is their sum.
// Writes p.grad_out when it is not null. The caller has validated the problem: sizes agree,
// labels are in [0, C) or equal ignore_index.
double run_cpu(const Problem& p);

// Evaluates `p` on CUDA device `device`, with run_cpu's results up to float precision.
//  * Host arrays: the batch is cut into chunks of whole rows that are pipelined over streams (copy
//    in, compute, copy out overlap) through pinned staging buffers reused from call to call.
//  * p.device_memory: every array is already on the device; nothing but the reduced loss crosses
//    the bus. Labels are checked on the device first (InvalidLabel, nothing written).
// Throws std::runtime_error when CUDA is not compiled in, not usable, or a CUDA call fails. Memory
// is reserved before any output is written, so running out of it leaves the outputs untouched.
double run_cuda(const Problem& p, int device);

// A label outside [0, C) (and not ignore_index) found by the device-side check of run_cuda.
struct InvalidLabel : std::range_error {
  InvalidLabel(int64_t at, int32_t label)
      : std::range_error("label " + std::to_string(label) + " at row " + std::to_string(at) + " is out of range"),
        index(at),
        value(label) {}
  int64_t index;
  int32_t value;
};

// A block of CUDA device memory: owned (freed when the last reference goes) or borrowed from another
// library (never freed here). Calls in flight hold a reference, so a block outlives its last use
// even when its JavaScript owner disposes of it early. Throws std::runtime_error on CUDA failures
// (out of memory included) and when CUDA is not usable.
class DeviceMemory {
 public:
  static std::shared_ptr<DeviceMemory> allocate(int device, size_t bytes);
  static std::shared_ptr<DeviceMemory> borrow(int device, void* address, size_t bytes);
  ~DeviceMemory();
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  int device() const { return device_; }
  bool owned() const { return owned_; }
  void copy_from_host(const void* src, size_t bytes, size_t offset = 0);  // offset + bytes <= this->bytes()
  void copy_to_host(void* dst, size_t bytes) const;

 private:
  DeviceMemory(int device, void* data, size_t bytes, bool owned)
      : device_(device), data_(data), bytes_(bytes), owned_(owned) {}
  int device_;
  void* data_;
  size_t bytes_;
  bool owned_;
};

// Page-locked ("pinned") host memory for host arrays that go to the GPU: the host-array path sends
// arrays lying in it straight from (and gradients straight into) the caller's memory, with no staging
// copy on the CPU. allocate_pinned throws std::runtime_error when CUDA is not usable or the memory
// cannot be had; free_pinned takes what allocate_pinned returned.
void* allocate_pinned(size_t bytes);
void free_pinned(void* address);
bool is_pinned(const void* address, size_t bytes);  // [address, address + bytes) lies in one allocation
// An async call's hold on the block holding [address, address + bytes) while a worker thread uses it:
// free_pinned of a held block (its ArrayBuffer collected) waits for the last release. Returns the block
// to release, or null when the range is not pinned memory.
void* hold_pinned(const void* address, size_t bytes);
void release_pinned(void* block);

// Helpers both backends use, computed on the host from the targets.
double reduction_divisor(const Problem& p);                 // what the summed loss is divided by
double balance_row_weight(const Problem& p, int64_t n);      // class-balanced weight of row n

// Vector instruction level of the CPU kernels. Scalar is the double-precision reference path.
enum class SimdLevel : int { Scalar = 0, Vec128 = 1, Avx2 = 2, Avx512 = 3 };

SimdLevel best_simd_level();         // what this CPU supports
SimdLevel simd_level();              // what run_cpu uses (CBLOSS_SIMD or the best)
SimdLevel set_simd_level(SimdLevel); // clamped to what the CPU supports; returns the level set
const char* simd_level_name(SimdLevel);
bool parse_simd_level(const char* name, SimdLevel* out);

// Index of the first label outside [0, classes) that is not (when use_ignore) ignore_index, or -1.
int64_t first_invalid_label(const int32_t* labels, int64_t n, int64_t classes, bool use_ignore,
                            int32_t ignore_index);

// dst = src over the CPU threads (the memory roofline of the benchmarks).
void parallel_copy(float* dst, const float* src, size_t n);

int cpu_threads();             // threads a CPU call may use
void set_cpu_threads(int n);   // 1 = the calling thread only

struct CudaDevice {
  int index = 0;
  std::string name;
  size_t total_memory = 0;
  int major = 0;
  int minor = 0;
  int multiprocessors = 0;
  size_t shared_per_block = 0;  // shared memory a block may be given (asking beyond the default 48 KB)
  std::string unusable;         // why the kernels cannot run on it (empty when they can)
};

struct CudaStatus {
  bool compiled = false;   // the addon was built with nvcc (or with the CPU emulator of CUDA)
  bool emulated = false;   // the CUDA code runs on the test emulator (native/cuda/emulator), not a GPU
  bool available = false;  // a driver answered and at least one device runs the kernels
  std::string architectures;  // what the kernels were built for (CMake's CUDA_ARCHITECTURES), "" without CUDA
  int runtime_version = 0;
  int driver_version = 0;
  std::string reason;  // why not available (empty when available)
  std::vector<CudaDevice> devices;  // every device the driver reports, entry N for ordinal N
};

// Probes the CUDA driver once (cached): safe to call on machines without a driver or GPU.
const CudaStatus& cuda_status();

}  // namespace cbloss
