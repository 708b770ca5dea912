// CUDA backend, first version: every loss of the CPU backend, on host arrays (copied to the device,
// computed, copied back), with the per-element and per-row math of native/core/math.h.
//
//   * Softmax losses: one warp per row. Lanes stride over the row: max (warp-reduced), then
//     S = sum e^(z - m) and the linear terms, then the gradient k (coef * s - q) with the row
//     scalars of math::softmax_row_terms. Each lane reads and writes only its own columns, so the
//     gradient may overwrite the logits.
//   * Element-wise losses: a grid-stride loop over the logits.
//   * Reductions are deterministic: every block writes one partial sum (double) for a fixed set of
//     rows or elements (the grid depends on the shape only), and one block adds the partials in a
//     fixed order. No float atomics.
//
// Not yet here (see the issue notes): data resident on the device (DeviceTensor), pinned staging
// buffers with copies overlapped with compute, fp16/bf16 logits, several blocks per row for C >= 64k.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/backend.h"
#include "../core/math.h"

namespace cbloss {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxBlocks = 4096;

// What a kernel needs, by value: device pointers and scalars.
struct DeviceProblem {
  LossKind loss;
  int64_t rows;
  int64_t classes;
  const float* logits;
  const int32_t* labels;
  const float* targets;
  const float* class_weight;   // C, or null
  const float* pos_weight;     // C, or null
  const float* alpha;          // C (softmax focal) or 2 (binary focal), or null
  const float* balance_col;    // C: Balance::Column, or null
  const float* row_weight;     // N: class-balanced row weights (Balance::Row), or null
  const float* grad_output;    // per output element, or null
  float grad_scale;            // when grad_output is null
  float alpha_scalar;
  float gamma;
  float eps;
  float class_weight_sum;
  int32_t ignore_index;
  float* loss_out;             // per output element, or null
  float* grad_out;             // or null
};

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = other > v ? other : v;
  }
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sums one double per thread over the block in a fixed order; thread 0 gets the total.
__device__ double block_sum(double v) {
  __shared__ double partial[kThreads];
  partial[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  return partial[0];
}

__global__ void softmax_rows_kernel(DeviceProblem p, double* block_sums) {
  const int64_t C = p.classes;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const bool probs = p.targets != nullptr;
  const bool focal = p.loss == LossKind::FocalSoftmax;
  const math::SoftmaxForm form =
      focal ? math::SoftmaxForm::Focal : probs ? math::SoftmaxForm::Probabilities : math::SoftmaxForm::Index;
  const float smooth = p.eps / static_cast<float>(C);
  double mine = 0.0;  // lane 0's share of the loss

  for (int64_t n = static_cast<int64_t>(blockIdx.x) * kWarps + warp; n < p.rows;
       n += static_cast<int64_t>(gridDim.x) * kWarps) {
    const float* z = p.logits + n * C;
    float* g = p.grad_out ? p.grad_out + n * C : nullptr;
    const float* t = probs ? p.targets + n * C : nullptr;
    const int32_t y = p.labels ? p.labels[n] : -1;
    if (p.labels && !focal && y == p.ignore_index) {
      if (g) {
        for (int64_t c = lane; c < C; c += 32) g[c] = 0.0f;
      }
      if (lane == 0 && p.loss_out) p.loss_out[n] = 0.0f;
      continue;
    }
    float m = -INFINITY;
    for (int64_t c = lane; c < C; c += 32) m = z[c] > m ? z[c] : m;  // a NaN reaches S below
    m = warp_max(m);
    const float zy = y >= 0 ? z[y] : 0.0f;  // before g may overwrite z
    float S = 0.0f, linear = 0.0f, mass = 0.0f;
    for (int64_t c = lane; c < C; c += 32) {
      const float d = m - z[c];
      S += expf(-d);
      const float w = p.class_weight ? p.class_weight[c] : 1.0f;
      if (probs) {
        const float a = w * ((1.0f - p.eps) * t[c] + smooth);
        mass += a;
        linear += a * d;
      } else if (p.eps != 0.0f) {
        linear += w * d;
      }
    }
    S = warp_sum(S);
    linear = warp_sum(linear);
    mass = warp_sum(mass);
    const float wy = y >= 0 && p.class_weight ? p.class_weight[y] : 1.0f;
    const float ay = y >= 0 && p.alpha ? p.alpha[y] : p.alpha_scalar;
    const math::SoftmaxRow<float> row = math::softmax_row_terms(
        form, math::SoftmaxSums<float>{m - zy, logf(S), linear, mass}, wy, ay, 1.0f - p.eps, smooth,
        p.class_weight_sum, p.gamma);
    const float rw = p.row_weight ? p.row_weight[n] : 1.0f;
    if (lane == 0) {
      if (p.loss_out) p.loss_out[n] = rw * row.loss;
      mine += static_cast<double>(rw * row.loss);
    }
    if (!g) continue;
    const float k = (p.grad_output ? p.grad_output[n] : p.grad_scale) * rw;
    const float kc = k * row.coef / S;
    for (int64_t c = lane; c < C; c += 32) {
      float q = c == y ? row.hit : 0.0f;
      const float w = p.class_weight ? p.class_weight[c] : 1.0f;
      if (probs) q += w * ((1.0f - p.eps) * t[c] + smooth);
      else if (!focal) q += smooth * w;
      g[c] = kc * expf(z[c] - m) - k * q;
    }
  }
  const double total = block_sum(lane == 0 ? mine : 0.0);
  if (threadIdx.x == 0) block_sums[blockIdx.x] = total;
}

__global__ void elements_kernel(DeviceProblem p, double* block_sums) {
  const int64_t C = p.classes;
  const int64_t M = p.rows * C;
  double mine = 0.0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < M;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = i / C;
    const int64_t c = i - n * C;
    const float x = p.logits[i];
    const float t = p.labels ? (p.labels[n] == c ? 1.0f : 0.0f) : p.targets[i];
    float w = p.class_weight ? p.class_weight[c] : 1.0f;
    if (p.balance_col) w *= p.balance_col[c];
    if (p.row_weight) w *= p.row_weight[n];
    math::LossAndSlope<float> r;
    if (p.loss == LossKind::BCEWithLogits) {
      r = math::bce_pos_weighted(x, t, p.pos_weight ? p.pos_weight[c] : 1.0f);
    } else if (p.loss == LossKind::SigmoidFocal) {
      r = math::sigmoid_focal(x, t, p.gamma);
      if (p.alpha_scalar >= 0.0f) w *= p.alpha_scalar * t + (1.0f - p.alpha_scalar) * (1.0f - t);
    } else {  // FocalBinary
      r = math::binary_focal(x, t, p.gamma);
      w *= p.alpha ? p.alpha[0] * (1.0f - t) + p.alpha[1] * t : p.alpha_scalar;
    }
    const float loss = w * r.loss;
    if (p.loss_out) p.loss_out[i] = loss;
    if (p.grad_out) p.grad_out[i] = (p.grad_output ? p.grad_output[i] : p.grad_scale) * w * r.slope;
    mine += static_cast<double>(loss);
  }
  const double total = block_sum(mine);
  if (threadIdx.x == 0) block_sums[blockIdx.x] = total;
}

__global__ void final_sum_kernel(const double* block_sums, int blocks, double* out) {
  double v = 0.0;
  for (int i = threadIdx.x; i < blocks; i += kThreads) v += block_sums[i];
  const double total = block_sum(v);
  if (threadIdx.x == 0) *out = total;
}

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorName(err) + " (" +
                             cudaGetErrorString(err) + ")");
  }
}

// Device memory for one call, freed on every exit path.
class DeviceBuffers {
 public:
  ~DeviceBuffers() {
    for (void* ptr : owned_) cudaFree(ptr);
  }
  template <class T>
  T* alloc(size_t count) {
    if (count == 0) count = 1;
    void* ptr = nullptr;
    check(cudaMalloc(&ptr, count * sizeof(T)), "cudaMalloc");
    owned_.push_back(ptr);
    return static_cast<T*>(ptr);
  }
  template <class T>
  const T* upload(const T* host, size_t count) {
    if (!host) return nullptr;
    T* d = alloc<T>(count);
    if (count) check(cudaMemcpy(d, host, count * sizeof(T), cudaMemcpyHostToDevice), "copy to the device");
    return d;
  }
  const float* upload_floats(const double* host, size_t count) {
    if (!host) return nullptr;
    std::vector<float> f(host, host + count);
    return upload(f.data(), count);
  }

 private:
  std::vector<void*> owned_;
};

}  // namespace

double run_cuda(const Problem& p, int device) {
  const CudaStatus& status = cuda_status();
  if (!status.available) throw std::runtime_error("CUDA is not usable: " + status.reason);
  check(cudaSetDevice(device), "cudaSetDevice");

  const double divisor = reduction_divisor(p);
  const size_t N = static_cast<size_t>(p.rows);
  const size_t C = static_cast<size_t>(p.classes);
  const size_t M = N * C;
  const bool binary = p.loss == LossKind::FocalBinary;
  const size_t pair = binary ? 2 : C;
  const size_t outputs = static_cast<size_t>(output_elements(p));

  DeviceBuffers buf;
  DeviceProblem d{};
  d.loss = p.loss;
  d.rows = p.rows;
  d.classes = p.classes;
  d.logits = buf.upload(p.logits, M);
  d.labels = buf.upload(p.labels, N);
  d.targets = buf.upload(p.targets, M);
  d.class_weight = buf.upload_floats(p.class_weight, C);
  d.pos_weight = buf.upload_floats(p.pos_weight, C);
  d.alpha = buf.upload_floats(p.alpha, pair);
  if (p.balance == Balance::Column && !binary && !is_row_loss(p.loss)) {
    d.balance_col = buf.upload_floats(p.balance_weight, C);
  } else if (p.balance != Balance::Off) {
    std::vector<float> rw(N);
    for (size_t n = 0; n < N; ++n) rw[n] = static_cast<float>(balance_row_weight(p, static_cast<int64_t>(n)));
    d.row_weight = buf.upload(rw.data(), N);
  }
  d.grad_output = buf.upload(p.grad_output, outputs);
  d.grad_scale = static_cast<float>(p.divisor == Divisor::None ? p.grad_output_scalar
                                    : divisor != 0.0          ? p.grad_output_scalar / divisor
                                                              : 0.0);
  d.alpha_scalar = static_cast<float>(p.alpha_scalar);
  d.gamma = static_cast<float>(p.gamma);
  d.eps = static_cast<float>(p.label_smoothing);
  double weight_sum = static_cast<double>(C);
  if (p.class_weight) {
    weight_sum = 0.0;
    for (size_t c = 0; c < C; ++c) weight_sum += p.class_weight[c];
  }
  d.class_weight_sum = static_cast<float>(weight_sum);
  d.ignore_index = p.ignore_index;
  d.loss_out = p.loss_out ? buf.alloc<float>(outputs) : nullptr;
  d.grad_out = p.grad_out ? buf.alloc<float>(M) : nullptr;

  // The grid depends on the shape only, so the partial sums (and the result) do not depend on the GPU.
  const bool rows = is_row_loss(p.loss);
  const size_t work = rows ? (N + kWarps - 1) / kWarps : (M + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(work < 1 ? 1 : work > kMaxBlocks ? kMaxBlocks : work);
  double* block_sums = buf.alloc<double>(static_cast<size_t>(blocks));
  double* total = buf.alloc<double>(1);
  if (rows) softmax_rows_kernel<<<blocks, kThreads>>>(d, block_sums);
  else elements_kernel<<<blocks, kThreads>>>(d, block_sums);
  check(cudaGetLastError(), "kernel launch");
  final_sum_kernel<<<1, kThreads>>>(block_sums, blocks, total);
  check(cudaGetLastError(), "kernel launch");

  double sum = 0.0;
  check(cudaMemcpy(&sum, total, sizeof(double), cudaMemcpyDeviceToHost), "copy to the host");
  if (p.grad_out && M) check(cudaMemcpy(p.grad_out, d.grad_out, M * sizeof(float), cudaMemcpyDeviceToHost), "copy to the host");
  if (p.loss_out && outputs) {
    check(cudaMemcpy(p.loss_out, d.loss_out, outputs * sizeof(float), cudaMemcpyDeviceToHost), "copy to the host");
  }
  if (p.divisor == Divisor::None) return sum;
  if (divisor == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return sum / divisor;
}

}  // namespace cbloss
