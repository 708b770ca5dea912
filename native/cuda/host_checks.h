// Host-side helpers of the CUDA backend's two host files (losses_cuda.cu, launch.cu): CUDA errors
// turned into exceptions with a readable message, and integer rounding.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda_api.h"

namespace cbloss {
namespace cuda {

inline std::string describe(cudaError_t err) {
  return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
}

// Throws "CUDA <what> failed (<error name>: <text>)" on an error.
inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so that later calls start clean
    throw std::runtime_error(std::string("CUDA ") + what + " failed (" + describe(err) + ")");
  }
}

inline void check_launch() { check(cudaGetLastError(), "kernel launch"); }

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace cuda
}  // namespace cbloss
