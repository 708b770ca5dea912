// Stand-in for probe.cu when the addon is built without nvcc: CUDA is reported as not compiled.
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

}  // namespace cbloss
