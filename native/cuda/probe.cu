// CUDA device probe, compiled only when CMake finds nvcc (or for the CUDA emulator build). The CUDA
// runtime is linked statically and loads the driver (libcuda) itself at the first call, so this file
// works, and answers "no driver", on machines without a GPU; the addon never links the driver library.
#include "cuda_api.h"

#include <string>

#include "../core/backend.h"

namespace cbloss {
namespace {

std::string describe(const char* what, cudaError_t err) {
  return std::string(what) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
}

CudaStatus probe() {
  CudaStatus s;
  s.compiled = true;
#if defined(CBLOSS_CUDA_EMULATION)
  s.emulated = true;
#endif
  cudaRuntimeGetVersion(&s.runtime_version);
  const cudaError_t driver_err = cudaDriverGetVersion(&s.driver_version);
  if (driver_err != cudaSuccess || s.driver_version == 0) {
    s.reason = "no CUDA driver found (libcuda.so.1 could not be loaded)";
    return s;
  }
  int count = 0;
  const cudaError_t count_err = cudaGetDeviceCount(&count);
  if (count_err == cudaErrorInsufficientDriver) {
    s.reason = "the CUDA driver (" + std::to_string(s.driver_version) +
               ") is older than the runtime this addon was built with (" +
               std::to_string(s.runtime_version) + ")";
    return s;
  }
  if (count_err != cudaSuccess) {
    s.reason = describe("cudaGetDeviceCount failed", count_err);
    return s;
  }
  if (count == 0) {
    s.reason = "the CUDA driver reports no device";
    return s;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    CudaDevice d;
    d.index = i;
    d.name = prop.name;
    d.total_memory = prop.totalGlobalMem;
    d.major = prop.major;
    d.minor = prop.minor;
    d.multiprocessors = prop.multiProcessorCount;
    d.shared_per_block = prop.sharedMemPerBlockOptin;
    s.devices.push_back(d);
  }
  s.available = !s.devices.empty();
  if (!s.available) s.reason = "no CUDA device could be queried";
  return s;
}

}  // namespace

const CudaStatus& cuda_status() {
  static const CudaStatus status = probe();  // thread-safe one-time initialization
  return status;
}

}  // namespace cbloss
