// CUDA device probe, compiled only when CMake finds nvcc (or for the CUDA emulator build). The CUDA
// runtime is linked statically and loads the driver (libcuda) itself at the first call, so this file
// works, and answers "no driver", on machines without a GPU; the addon never links the driver library.
#include "cuda_api.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "../core/backend.h"

namespace cbloss {
namespace {

std::string describe(const char* what, cudaError_t err) {
  return std::string(what) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
}

#if !defined(CBLOSS_CUDA_ARCHITECTURES)
#error "CMake passes the architectures the kernels were built for (CBLOSS_CUDA_ARCHITECTURES)"
#endif

// Whether the kernels, built for `architectures` (CMake's CUDA_ARCHITECTURES, commas between), run on
// a GPU of compute capability major.minor: machine code for the same major and a minor no higher
// ("80-real" runs on 8.0 to 8.9), or PTX for a virtual architecture no higher than the GPU's, which the
// driver compiles ("90-virtual" for 9.0 and every later GPU); "90" is both. An entry of another form
// ("native", "all", an arch-specific "90a") cannot be judged here: then every GPU is taken to run them
// (a GPU that does not fails at its first launch, with the driver's message).
bool kernels_run_on(int major, int minor, const std::string& architectures) {
  const int device = 10 * major + minor;
  size_t at = 0;
  while (at <= architectures.size()) {
    const size_t comma = std::min(architectures.find(',', at), architectures.size());
    const std::string entry = architectures.substr(at, comma - at);
    at = comma + 1;
    size_t digits = 0;
    while (digits < entry.size() && std::isdigit(static_cast<unsigned char>(entry[digits]))) ++digits;
    const std::string kind = entry.substr(digits);
    if (digits == 0 || (kind != "" && kind != "-real" && kind != "-virtual")) return true;
    const int arch = std::stoi(entry.substr(0, digits));
    if (kind != "-virtual" && arch / 10 == major && arch <= device) return true;  // machine code
    if (kind != "-real" && arch <= device) return true;                           // PTX
  }
  return false;
}

// "cuda:0 (NAME), cuda:1 (NAME): WHY" — devices with the same reason named together.
std::string why_none_usable(const std::vector<CudaDevice>& devices) {
  std::vector<std::pair<std::string, std::string>> groups;  // (reason, the devices it applies to)
  for (const CudaDevice& d : devices) {
    const std::string name = "cuda:" + std::to_string(d.index) + " (" + d.name + ")";
    auto same = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == d.unusable; });
    if (same == groups.end()) groups.emplace_back(d.unusable, name);
    else same->second += ", " + name;
  }
  std::string out;
  for (const auto& [reason, names] : groups) out += (out.empty() ? "" : "; ") + names + ": " + reason;
  return out;
}

CudaStatus probe() {
  CudaStatus s;
  s.compiled = true;
  s.architectures = CBLOSS_CUDA_ARCHITECTURES;
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
    CudaDevice d;  // (every device has its entry, indexed by its ordinal: 'cuda:N' is entry N)
    d.index = i;
    cudaDeviceProp prop{};
    const cudaError_t err = cudaGetDeviceProperties(&prop, i);
    if (err != cudaSuccess) {
      d.name = "CUDA device " + std::to_string(i);
      d.unusable = describe("cudaGetDeviceProperties failed", err);
    } else {
      d.name = prop.name;
      d.total_memory = prop.totalGlobalMem;
      d.major = prop.major;
      d.minor = prop.minor;
      d.multiprocessors = prop.multiProcessorCount;
      d.shared_per_block = prop.sharedMemPerBlockOptin;
      if (!kernels_run_on(d.major, d.minor, CBLOSS_CUDA_ARCHITECTURES)) {
        const std::string arch = std::to_string(d.major) + std::to_string(d.minor);
        d.unusable = "compute capability " + std::to_string(d.major) + "." + std::to_string(d.minor) +
                     ", and this addon's kernels were built for CUDA architectures " CBLOSS_CUDA_ARCHITECTURES
                     " (`npx cmake-js rebuild --CDCMAKE_CUDA_ARCHITECTURES=" + arch + "` builds them for it, " +
                     "with a CUDA toolkit that supports sm_" + arch + ")";
      }
    }
    if (d.unusable.empty()) s.available = true;
    s.devices.push_back(d);
  }
  if (!s.available) s.reason = why_none_usable(s.devices);
  return s;
}

}  // namespace

const CudaStatus& cuda_status() {
  static const CudaStatus status = probe();  // thread-safe one-time initialization
  return status;
}

}  // namespace cbloss
