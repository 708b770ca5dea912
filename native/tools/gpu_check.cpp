// The GPU check without Node: the native core's CUDA backend against its CPU backend on random
// problems (host arrays and device-resident data, every loss), then the time of device-resident
// cross-entropy beside the minimum bytes it must move. The fallback of scripts/gpu-check.sh for a
// GPU machine where the carried Node does not start. Build: `npx cmake-js compile
// --CDCBLOSS_TOOLS=ON` (then build/cbloss_gpu_check); CBLOSS_GPU_CHECK_QUICK=1 for small shapes
// (CI runs it so on the CUDA emulator). Prints `N passed, M failed`; exit 1 on a failure.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/backend.h"
#include "core/problem.h"

namespace {

using cbloss::DeviceMemory;
using cbloss::LossKind;
using cbloss::Problem;

int checked_device = 0;  // the first device the kernels run on (main)
int passed = 0;
int failed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++passed;
  } else {
    ++failed;
    std::printf("FAIL %s\n", what.c_str());
  }
}

// Runs one comparison or timing: an exception is a failure with its message, and the check goes on
// (a first run on a GPU may be the only one).
template <class F>
void attempt(const std::string& what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    check(false, what + ": " + e.what());
  }
}

// A small deterministic generator (the check must not depend on the platform's rand()).
struct Random {
  uint64_t state;
  double next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(state >> 11) / 9007199254740992.0;
  }
};

bool close(double a, double b) {
  if (std::isnan(b)) return std::isnan(a);
  return std::fabs(a - b) <= std::max(1e-5 * std::fabs(b), 1e-6);
}

// docs/semantics.md, "Precision": max|g - g_ref| <= 1e-5 max|g_ref| + 1e-7.
bool grad_close(const std::vector<float>& g, const std::vector<float>& ref) {
  double max_ref = 0.0;
  for (float v : ref) max_ref = std::max(max_ref, static_cast<double>(std::fabs(v)));
  const double tol = 1e-5 * max_ref + 1e-7;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!(std::fabs(static_cast<double>(g[i]) - ref[i]) <= tol)) return false;
  }
  return true;
}

struct Case {
  const char* name;
  LossKind loss;
  double gamma;
  double smoothing;
  bool labels;
};

// A row kernel other than the default, chosen by the switches it sets while a WithKernelChoice lives
// ("0" turns a kernel off, "1" on: native/cuda/losses_cuda.cu). For long rows (the default: shared memory
// in one block or in clusters of up to 4 blocks, 2 for 16-bit logits, else the two-kernel slices):
// registers in clusters; shared memory in clusters of any size; without clusters, one block a row
// holding it in shared memory where it fits (as before sm_90), else the slices; and the slices alone.
// For rows of 17-256 columns (the default: groups of 8 or 16 lanes): a warp a row.
struct KernelChoice {
  const char* how;
  std::vector<std::pair<const char*, const char*>> switches;
};
const KernelChoice kWarpRows{"a warp a row", {{"CBLOSS_CUDA_SMALL_GROUPS", "0"}}};
const KernelChoice kLongRowKernels[] = {
    {"in registers", {{"CBLOSS_CUDA_REGISTER_CLUSTERS", "1"}}},
    {"in shared memory", {{"CBLOSS_CUDA_SHARED_ROWS", "1"}}},
    {"without clusters", {{"CBLOSS_CUDA_CLUSTERS", "0"}}},
    {"in slices", {{"CBLOSS_CUDA_CLUSTERS", "0"}, {"CBLOSS_CUDA_SHARED_ROWS", "0"}}},
};

// The other kernels a row of C columns can run in.
std::vector<KernelChoice> other_kernels(int64_t C) {
  if (C > 16 && C <= 256) return {kWarpRows};
  if (C > 8192) return {std::begin(kLongRowKernels), std::end(kLongRowKernels)};
  return {};
}

struct WithKernelChoice {
  const KernelChoice& kernel;
  explicit WithKernelChoice(const KernelChoice& k) : kernel(k) {
    for (const auto& [name, value] : k.switches) setenv(name, value, 1);
  }
  ~WithKernelChoice() {
    for (const auto& s : kernel.switches) unsetenv(s.first);
  }
  WithKernelChoice(const WithKernelChoice&) = delete;
  WithKernelChoice& operator=(const WithKernelChoice&) = delete;
};

std::shared_ptr<DeviceMemory> upload(const void* data, size_t bytes) {
  auto m = DeviceMemory::allocate(checked_device, bytes);
  m->copy_from_host(data, bytes);
  return m;
}

void compare(const Case& c, int64_t N, int64_t C, Random& rng) {
  const size_t M = static_cast<size_t>(N * C);
  std::vector<float> x(M), t(M);
  std::vector<int32_t> y(static_cast<size_t>(N));
  for (float& v : x) v = static_cast<float>((rng.next() - 0.5) * 8.0);
  for (float& v : t) v = rng.next() < 0.2 ? 1.0f : 0.0f;
  for (int32_t& v : y) v = static_cast<int32_t>(rng.next() * static_cast<double>(C));
  Problem p;
  p.loss = c.loss;
  p.rows = N;
  p.classes = C;
  p.logits = x.data();
  if (c.labels) p.labels = y.data();
  else p.targets = t.data();
  p.gamma = c.gamma;
  p.label_smoothing = c.smoothing;
  p.divisor = cbloss::Divisor::Elements;
  std::vector<float> g_cpu(M), g_gpu(M), g_dev(M);
  p.grad_out = g_cpu.data();
  const double l_cpu = cbloss::run_cpu(p);
  p.grad_out = g_gpu.data();
  const double l_gpu = cbloss::run_cuda(p, checked_device);

  // The same problem with every array on the device.
  Problem d = p;
  auto dx = upload(x.data(), M * sizeof(float));
  auto dy = upload(y.data(), y.size() * sizeof(int32_t));
  auto dt = upload(t.data(), M * sizeof(float));
  auto dg = DeviceMemory::allocate(checked_device, M * sizeof(float));
  d.device_memory = true;
  d.logits = static_cast<const float*>(dx->data());
  d.labels = c.labels ? static_cast<const int32_t*>(dy->data()) : nullptr;
  d.targets = c.labels ? nullptr : static_cast<const float*>(dt->data());
  d.grad_out = static_cast<float*>(dg->data());
  const double l_dev = cbloss::run_cuda(d, checked_device);
  dg->copy_to_host(g_dev.data(), M * sizeof(float));

  const std::string what = std::string(c.name) + " " + std::to_string(N) + "x" + std::to_string(C);
  check(close(l_gpu, l_cpu) && grad_close(g_gpu, g_cpu), what + " host arrays: " + std::to_string(l_gpu) + " vs " + std::to_string(l_cpu));
  check(close(l_dev, l_cpu) && grad_close(g_dev, g_cpu), what + " device arrays: " + std::to_string(l_dev) + " vs " + std::to_string(l_cpu));
  if (c.labels && C > 4096) {
    for (const KernelChoice& k : kLongRowKernels) {
      const WithKernelChoice chosen(k);
      const double l_other = cbloss::run_cuda(d, checked_device);
      dg->copy_to_host(g_dev.data(), M * sizeof(float));
      check(close(l_other, l_cpu) && grad_close(g_dev, g_cpu),
            what + " " + k.how + ": " + std::to_string(l_other) + " vs " + std::to_string(l_cpu));
    }
  }
}

double median_ms(const std::vector<double>& samples) {
  std::vector<double> s = samples;
  std::sort(s.begin(), s.end());
  return s[s.size() / 2];
}

// The median wall time of `reps` calls of run_cuda(p) after one warm-up call, in milliseconds.
double median_call_ms(const Problem& p, int reps) {
  cbloss::run_cuda(p, checked_device);
  std::vector<double> samples;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    cbloss::run_cuda(p, checked_device);
    samples.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return median_ms(samples);
}

void time_cross_entropy(int64_t N, int64_t C, int reps) {
  const size_t M = static_cast<size_t>(N * C);
  std::vector<float> block(std::min<size_t>(M, size_t{1} << 24));
  Random rng{7};
  for (float& v : block) v = static_cast<float>((rng.next() - 0.5) * 8.0);
  auto dx = DeviceMemory::allocate(checked_device, M * sizeof(float));
  for (size_t at = 0; at < M; at += block.size()) {
    const size_t n = std::min(block.size(), M - at);
    dx->copy_from_host(block.data(), n * sizeof(float), at * sizeof(float));
  }
  std::vector<int32_t> y(static_cast<size_t>(N));
  for (int32_t& v : y) v = static_cast<int32_t>(rng.next() * static_cast<double>(C));
  auto dy = upload(y.data(), y.size() * sizeof(int32_t));
  auto dg = DeviceMemory::allocate(checked_device, M * sizeof(float));
  Problem p;
  p.loss = LossKind::CrossEntropy;
  p.rows = N;
  p.classes = C;
  p.device_memory = true;
  p.logits = static_cast<const float*>(dx->data());
  p.labels = static_cast<const int32_t*>(dy->data());
  p.grad_out = static_cast<float*>(dg->data());
  p.divisor = cbloss::Divisor::LabelWeight;
  const double bytes = static_cast<double>(M) * 8.0 + static_cast<double>(N) * 4.0;
  const auto report = [&](const char* how) {
    const double ms = median_call_ms(p, reps);
    std::printf("%10lldx%-7lld CE fp32 device-resident%s: %9.3f ms per call (syncs included), %7.1f GB/s of minimum bytes\n",
                static_cast<long long>(N), static_cast<long long>(C), how, ms, bytes / ms / 1e6);
  };
  report("");
  for (const KernelChoice& k : other_kernels(C)) {
    const WithKernelChoice chosen(k);
    report((std::string(", ") + k.how).c_str());
  }
}

// Host arrays through the pipeline: ordinary (staged through pinned buffers by the CPU) and in pinned
// memory (allocate_pinned: straight to and from the device); the two gradients must agree exactly.
void time_host_arrays(int64_t N, int64_t C, int reps) {
  const size_t M = static_cast<size_t>(N * C);
  struct Pinned {
    float* data;
    explicit Pinned(size_t n) : data(static_cast<float*>(cbloss::allocate_pinned(n * sizeof(float)))) {}
    Pinned(const Pinned&) = delete;
    Pinned& operator=(const Pinned&) = delete;
    ~Pinned() { cbloss::free_pinned(data); }
  };
  const Pinned x_pinned(M), g_pinned(M);
  std::vector<float> x(M), g(M);
  Random rng{11};
  for (size_t i = 0; i < M; ++i) x[i] = x_pinned.data[i] = static_cast<float>((rng.next() - 0.5) * 8.0);
  std::vector<int32_t> y(static_cast<size_t>(N));
  for (int32_t& v : y) v = static_cast<int32_t>(rng.next() * static_cast<double>(C));
  Problem p;
  p.loss = LossKind::CrossEntropy;
  p.rows = N;
  p.classes = C;
  p.labels = y.data();
  p.divisor = cbloss::Divisor::LabelWeight;
  const auto time = [&](const float* logits, float* grad) {
    p.logits = logits;
    p.grad_out = grad;
    return median_call_ms(p, reps);
  };
  const double ordinary = time(x.data(), g.data());
  const double pinned = time(x_pinned.data, g_pinned.data);
  check(std::equal(g.begin(), g.end(), g_pinned.data), "host arrays: pinned and ordinary give the same gradient");
  const double bus = static_cast<double>(M) * 8.0;  // logits up, gradient down
  std::printf("%10lldx%-7lld CE fp32 host arrays: %9.3f ms ordinary, %9.3f ms pinned (%.1f GB/s of logits and gradient)\n",
              static_cast<long long>(N), static_cast<long long>(C), ordinary, pinned, bus / pinned / 1e6);
}

}  // namespace

int main() {
  setenv("CBLOSS_CUDA_LOG", "1", 0);  // the backend says which cluster sizes run on this GPU
  const cbloss::CudaStatus& status = cbloss::cuda_status();
  std::printf("CUDA compiled %d, available %d%s%s\n", status.compiled, status.available, status.available ? "" : ": ",
              status.reason.c_str());
  for (const cbloss::CudaDevice& d : status.devices) {
    std::printf("cuda:%d %s, %.1f GiB, compute capability %d.%d, %d SMs%s%s\n", d.index, d.name.c_str(),
                static_cast<double>(d.total_memory) / 1073741824.0, d.major, d.minor, d.multiprocessors,
                d.unusable.empty() ? "" : ": not usable, ", d.unusable.c_str());
  }
  if (!status.available) {
    std::printf("0 passed, 1 failed\n");
    return 1;
  }
  while (!status.devices[static_cast<size_t>(checked_device)].unusable.empty()) ++checked_device;
  std::printf("checking cuda:%d\n", checked_device);
  const bool quick = std::getenv("CBLOSS_GPU_CHECK_QUICK") && std::strcmp(std::getenv("CBLOSS_GPU_CHECK_QUICK"), "1") == 0;
  const Case cases[] = {
      {"CE smoothing", LossKind::CrossEntropy, 0.0, 0.1, true},
      {"focal gamma=2", LossKind::FocalSoftmax, 2.0, 0.0, true},
      {"BCE", LossKind::BCEWithLogits, 0.0, 0.0, false},
      {"sigmoid focal", LossKind::SigmoidFocal, 2.0, 0.0, false},
  };
  using Shapes = std::vector<std::array<int64_t, 2>>;
  const Shapes shapes = quick ? Shapes{{64, 10}, {8, 1000}, {2, 40000}, {2, 300000}}
                              : Shapes{{4096, 10}, {2048, 1000}, {16, 20000}, {4, 131072}, {4, 256000}, {4, 262208}};
  Random rng{2026};
  for (const Case& c : cases) {
    for (const auto& s : shapes) {
      attempt(std::string(c.name) + " " + std::to_string(s[0]) + "x" + std::to_string(s[1]),
              [&] { compare(c, s[0], s[1], rng); });
    }
  }
  if (quick) {
    attempt("timing 512x128", [] { time_cross_entropy(512, 128, 2); });
    attempt("timing 2x40000", [] { time_cross_entropy(2, 40000, 2); });
    attempt("timing host arrays 64x1000", [] { time_host_arrays(64, 1000, 2); });
  } else {
    attempt("timing host arrays 65536x1000", [] { time_host_arrays(65536, 1000, 5); });
    attempt("timing 1Mx128", [] { time_cross_entropy(int64_t{1} << 20, 128, 10); });
    attempt("timing 65536x1000", [] { time_cross_entropy(65536, 1000, 10); });
    attempt("timing 8192x131072", [] { time_cross_entropy(8192, 131072, 10); });
    attempt("timing 16384x32000", [] { time_cross_entropy(16384, 32000, 10); });
    attempt("timing 4096x262208", [] { time_cross_entropy(4096, 262208, 10); });
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
