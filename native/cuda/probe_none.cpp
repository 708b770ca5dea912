// Stand-in for the CUDA backend when the addon is built without nvcc: CUDA is reported as not
// compiled, and every CUDA entry point throws that reason.
#include <stdexcept>

#include "../core/backend.h"

namespace cbloss {

const CudaStatus& cuda_status() {
  static const CudaStatus status = [] {
    CudaStatus s;
    s.reason = "this build of cbloss was compiled without CUDA (nvcc was not found at build time)";
    return s;
  }();
  return status;
}

double run_cuda(const Problem&, int) { throw std::runtime_error(cuda_status().reason); }

std::shared_ptr<DeviceMemory> DeviceMemory::allocate(int, size_t) { throw std::runtime_error(cuda_status().reason); }
std::shared_ptr<DeviceMemory> DeviceMemory::borrow(int, void*, size_t) { throw std::runtime_error(cuda_status().reason); }
DeviceMemory::~DeviceMemory() = default;
void DeviceMemory::copy_from_host(const void*, size_t, size_t) { throw std::runtime_error(cuda_status().reason); }
void DeviceMemory::copy_to_host(void*, size_t) const { throw std::runtime_error(cuda_status().reason); }

void* allocate_pinned(size_t) { throw std::runtime_error(cuda_status().reason); }
void free_pinned(void*) {}
bool is_pinned(const void*, size_t) { return false; }
void* hold_pinned(const void*, size_t) { return nullptr; }
void release_pinned(void*) {}

}  // namespace cbloss
