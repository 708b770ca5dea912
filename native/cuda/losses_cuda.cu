// The CUDA backend's host side: run_cuda (host arrays pipelined through pinned staging buffers over
// streams, or arrays already on the device) and DeviceMemory. Which kernels run, and how, is
// launch.cu's business; the kernels are in kernels.cuh.
//
// Per device, one context (created at first use, kept for the life of the process) owns three
// streams, pinned host staging and device buffers for one chunk per stream, and scratch space; they
// grow when a call needs more and are reused by later calls. Calls on one device take its context's
// lock, so concurrent async calls queue there. Everything a call needs is reserved before any output
// is written: running out of device memory leaves the caller's buffers untouched.
//
// Host arrays: the batch is cut into chunks of whole rows (about kChunkElements logits). Chunk i goes
// to stream i % 3: its inputs are copied into that stream's pinned buffer, sent to the device, the
// kernels run, the outputs come back to pinned memory, and they are copied into the caller's arrays
// when the stream comes round again — so the CPU copies, both transfers and the kernels of different
// chunks overlap. Arrays in pinned memory (allocate_pinned: the JavaScript pinnedArray) skip the CPU
// copies: their chunks go straight between the caller's memory and the device. The reduction divisor is
// computed on the host from the targets.
//
// Device arrays: one launch sequence on one stream; the labels are checked on the device first and a
// data-dependent divisor is reduced on the device. Only the reduced loss comes back.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/backend.h"
#include "../core/loss_terms.h"
#include "cuda_api.h"
#include "host_checks.h"
#include "launch.h"

namespace cbloss {
namespace {

using cuda::ceil_div;
using cuda::check;
using cuda::describe;
using cuda::DeviceLaunch;
using cuda::KernelArgs;
using cuda::LaunchAnswers;

constexpr int kStreams = 3;
constexpr int64_t kChunkElements = int64_t{1} << 22;  // logits per pipelined chunk (16 MiB of float32)

// Logits per chunk: kChunkElements, or CBLOSS_CUDA_CHUNK_ELEMENTS (read at each call; the tests use
// small chunks so that the pipeline's many-chunk paths run on small inputs).
int64_t chunk_elements() {
  const char* env = std::getenv("CBLOSS_CUDA_CHUNK_ELEMENTS");
  const long long v = env ? std::atoll(env) : 0;
  return v > 0 ? static_cast<int64_t>(v) : kChunkElements;
}
constexpr size_t kAlign = 256;

size_t aligned(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// The two kinds of scratch memory a context keeps: device memory, and page-locked host memory
// (transfers from it run asynchronously).
struct DeviceKind {
  static cudaError_t allocate(void** p, size_t bytes) { return cudaMalloc(p, bytes); }
  static void release(void* p) { cudaFree(p); }
  static constexpr const char* kWhere = "on the device";
};
struct PinnedKind {
  static cudaError_t allocate(void** p, size_t bytes) { return cudaMallocHost(p, bytes); }
  static void release(void* p) { cudaFreeHost(p); }
  static constexpr const char* kWhere = "of pinned host memory";
};

// Memory that grows on demand (contents are not kept when it grows).
template <class Kind>
class GrowingArray {
 public:
  GrowingArray() = default;
  GrowingArray(const GrowingArray&) = delete;
  GrowingArray& operator=(const GrowingArray&) = delete;
  ~GrowingArray() { Kind::release(ptr_); }
  char* reserve(size_t bytes) {
    if (bytes <= bytes_) return ptr_;
    Kind::release(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
    void* p = nullptr;
    const cudaError_t err = Kind::allocate(&p, bytes);
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error("CUDA out of memory: could not allocate " + std::to_string(bytes) + " bytes " +
                               Kind::kWhere + " (" + describe(err) + ")");
    }
    ptr_ = static_cast<char*>(p);
    bytes_ = bytes;
    return ptr_;
  }
  char* data() const { return ptr_; }

 private:
  char* ptr_ = nullptr;
  size_t bytes_ = 0;
};

using DeviceArray = GrowingArray<DeviceKind>;
using PinnedArray = GrowingArray<PinnedKind>;

// Offsets of several arrays packed in one buffer, each aligned.
class Packing {
 public:
  size_t add(size_t bytes) {
    const size_t at = size_;
    size_ += aligned(bytes);
    return at;
  }
  size_t size() const { return size_ == 0 ? kAlign : size_; }

 private:
  size_t size_ = 0;
};

// Where a chunk's results go once its stream has finished.
struct PendingCopy {
  bool active = false;
  float* grad_dst = nullptr;
  size_t grad_bytes = 0;
  float* loss_dst = nullptr;
  size_t loss_bytes = 0;
  size_t grad_at = 0;  // offsets in the slot's pinned output
  size_t loss_at = 0;
};

struct Slot {
  cudaStream_t stream = nullptr;
  cudaEvent_t done = nullptr;
  PinnedArray host_in, host_out;
  DeviceArray device_in, device_out, work;
  PendingCopy pending;
};

struct DeviceContext {
  std::mutex mutex;
  int device = 0;
  bool initialized = false;
  Slot slots[kStreams];
  cudaEvent_t setup_done = nullptr;
  PinnedArray host_params;
  DeviceArray device_params;
  DeviceArray scratch;
  bool clusters = false;  // thread block clusters: compute capability 9 or more (the emulator's default)
  bool cooperative = false;  // the device runs cooperative launches (the one pass)
  int multiprocessors = 1;
  size_t shared_per_block = 0;  // what a block may be given, dynamic and static
  LaunchAnswers answers;  // (under `mutex`, like everything a call touches)

  void initialize() {
    if (initialized) return;
    const CudaDevice& props = cuda_status().devices[static_cast<size_t>(device)];
    clusters = props.major >= 9;
#if defined(CBLOSS_CUDA_EMULATION)
    cooperative = true;
#else
    int coop = 0;
    cooperative = cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, device) == cudaSuccess && coop != 0;
    cudaGetLastError();  // (not sticky)
#endif
    multiprocessors = props.multiprocessors > 0 ? props.multiprocessors : 1;
    shared_per_block = props.shared_per_block;
    for (Slot& s : slots) {
      check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "stream creation");
      check(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming), "event creation");
    }
    check(cudaEventCreateWithFlags(&setup_done, cudaEventDisableTiming), "event creation");
    initialized = true;
  }
  // Streams and events live as long as the process: destroying them at exit, after the driver may
  // have been unloaded, is not safe.
};

DeviceContext& context_for(int device) {
  const CudaStatus& status = cuda_status();
  if (!status.available) throw std::runtime_error("CUDA is not usable: " + status.reason);
  if (device < 0 || device >= static_cast<int>(status.devices.size())) {
    throw std::runtime_error("CUDA device " + std::to_string(device) + " does not exist (" +
                             std::to_string(status.devices.size()) + " device(s))");
  }
  const CudaDevice& props = status.devices[static_cast<size_t>(device)];
  if (!props.unusable.empty()) {
    throw std::runtime_error("CUDA device " + std::to_string(device) + " (" + props.name + ") is not usable: " + props.unusable);
  }
  static std::mutex registry_mutex;
  static std::vector<std::unique_ptr<DeviceContext>> contexts(status.devices.size());
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (!contexts[device]) {
    contexts[device] = std::make_unique<DeviceContext>();
    contexts[device]->device = device;
  }
  return *contexts[device];
}

// The small per-call parameters, packed: the divisor and result doubles, the label check, the counters
// of the blocks done of the launches that sum in their last block, and the option vectors as floats.
struct ParamLayout {
  size_t divisor = 0, sum = 0, first_bad = 0, blocks_done = 0, class_weight = 0, pos_weight = 0, alpha = 0, balance = 0;
  size_t logit_bias = 0, margin = 0;  // the logit map (both, when the call maps its logits)
  size_t bytes = 0;
};

ParamLayout param_layout(const Problem& p) {
  const size_t C = static_cast<size_t>(p.classes);
  const size_t pair = reads_target_pairs(p.loss) ? 2 : C;
  Packing pack;
  ParamLayout l;
  l.divisor = pack.add(sizeof(double));
  l.sum = pack.add(sizeof(double));
  l.first_bad = pack.add(sizeof(unsigned long long));
  l.blocks_done = pack.add(cuda::kCountedLaunches * sizeof(unsigned));
  l.class_weight = pack.add(p.class_weight ? C * sizeof(float) : 0);
  l.pos_weight = pack.add(p.pos_weight ? C * sizeof(float) : 0);
  l.alpha = pack.add(p.alpha ? pair * sizeof(float) : 0);
  l.balance = pack.add(p.balance_weight ? pair * sizeof(float) : 0);
  l.logit_bias = pack.add(maps_logits(p) ? C * sizeof(float) : 0);
  l.margin = pack.add(maps_logits(p) ? C * sizeof(float) : 0);
  l.bytes = pack.size();
  return l;
}

// The buffers of a call on device arrays by what they hold, for the emulator's traffic accounting
// (CBLOSS_EMULATED_TRAFFIC; nothing under nvcc): the call's arrays, its parameter block (the divisor,
// the sum and the label flag at its start are partial sums), and its scratch (the row losses, the tile
// sums of short rows — one a tile: they grow with the rows —, then partial sums: per block, divisor
// terms, the sum stages, slice statistics or row weights).
void name_traffic_buffers(const Problem& p, const ParamLayout& l, const char* params, const char* scratch,
                          size_t row_loss_at, size_t partials_at, size_t terms_at, size_t scratch_bytes) {
  CBLOSS_FORGET_BUFFER_NAMES();
  CBLOSS_NAME_BUFFER("partial sums", params, l.class_weight);
  CBLOSS_NAME_BUFFER("parameters", params + l.class_weight, l.bytes - l.class_weight);
  CBLOSS_NAME_BUFFER("losses", scratch + row_loss_at, partials_at - row_loss_at);
  CBLOSS_NAME_BUFFER(is_row_loss(p.loss) ? "tile sums" : "partial sums", scratch + partials_at, terms_at - partials_at);
  CBLOSS_NAME_BUFFER("partial sums", scratch + terms_at, scratch_bytes - terms_at);
  // The call's data arrays by their traffic names (core/call_description.h); a gradient written over
  // its logits is named after them ("logits", written and read: the logits are named last).
#define CBLOSS_NAME_DATA_ARRAY(argument, member, type, extent, kind, presence, traffic)                   \
  if (CallArrayKind::kind != CallArrayKind::Option && static_cast<const void*>(p.member) != p.logits) { \
    CBLOSS_NAME_BUFFER(traffic, p.member, static_cast<size_t>(array_bytes(p, CallExtent::extent, sizeof(type)))); \
  }
  CBLOSS_CALL_ARRAYS(CBLOSS_NAME_DATA_ARRAY)
#undef CBLOSS_NAME_DATA_ARRAY
  CBLOSS_NAME_BUFFER("logits", p.logits, static_cast<size_t>(array_bytes(p, CallExtent::LogitElements, sizeof(float))));
  (void)p, (void)l, (void)params, (void)scratch, (void)row_loss_at, (void)partials_at, (void)terms_at, (void)scratch_bytes;
}

void put_floats(char* base, size_t at, const double* src, size_t count) {
  float* dst = reinterpret_cast<float*>(base + at);
  for (size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]);
}

// Fills the pinned parameters and sends them on `stream`; returns the KernelArgs fields they back.
KernelArgs upload_params(DeviceContext& ctx, const Problem& p, const ParamLayout& l, double divisor,
                         cudaStream_t stream) {
  char* host = ctx.host_params.reserve(l.bytes);
  char* dev = ctx.device_params.reserve(l.bytes);
  const size_t C = static_cast<size_t>(p.classes);
  const size_t pair = reads_target_pairs(p.loss) ? 2 : C;
  std::memcpy(host + l.divisor, &divisor, sizeof divisor);
  const unsigned long long none = ~0ull;
  std::memcpy(host + l.first_bad, &none, sizeof none);
  std::memset(host + l.blocks_done, 0, cuda::kCountedLaunches * sizeof(unsigned));  // (no launch has counted its blocks)
  // (the sum's slot NaN until a kernel writes it: a sum never taken is a NaN loss, not the last call's)
  const double unsummed = std::numeric_limits<double>::quiet_NaN();
  std::memcpy(host + l.sum, &unsummed, sizeof unsummed);
  if (p.class_weight) put_floats(host, l.class_weight, p.class_weight, C);
  if (p.pos_weight) put_floats(host, l.pos_weight, p.pos_weight, C);
  if (p.alpha) put_floats(host, l.alpha, p.alpha, pair);
  if (p.balance_weight) put_floats(host, l.balance, p.balance_weight, pair);
  const bool map = maps_logits(p);
  if (map) {
    const std::vector<double> zeros(C, 0.0);
    put_floats(host, l.logit_bias, p.logit_bias ? p.logit_bias : zeros.data(), C);
    put_floats(host, l.margin, p.margin ? p.margin : zeros.data(), C);
  }
  check(cudaMemcpyAsync(dev, host, l.bytes, cudaMemcpyHostToDevice, stream), "copy to the device");

  KernelArgs a{};
  a.loss = p.loss;
  a.classes = p.classes;
  a.class_weight = p.class_weight ? reinterpret_cast<const float*>(dev + l.class_weight) : nullptr;
  a.pos_weight = p.pos_weight ? reinterpret_cast<const float*>(dev + l.pos_weight) : nullptr;
  a.alpha = p.alpha ? reinterpret_cast<const float*>(dev + l.alpha) : nullptr;
  a.balance_weight = p.balance_weight ? reinterpret_cast<const float*>(dev + l.balance) : nullptr;
  a.balance = p.balance;
  a.map_logits = map;
  a.logit_bias = map ? reinterpret_cast<const float*>(dev + l.logit_bias) : nullptr;
  a.margin = map ? reinterpret_cast<const float*>(dev + l.margin) : nullptr;
  a.logit_scale = static_cast<float>(p.logit_scale);
  a.sample_weight_per_element = p.sample_weight_per_element;
  a.grad_output_scalar = static_cast<float>(p.grad_output_scalar);
  a.divisor = reinterpret_cast<const double*>(dev + l.divisor);
  a.row = row_scalars<float>(p);
  a.element = math::element_scalars<float>(p);
  a.ignore_index = p.ignore_index;
  return a;
}

// ---- launch settings -------------------------------------------------------------------------------

// The switches are for tests and measurements: they let every row kernel run on one GPU (a warp where
// 8 or 16 lanes would hold the row; registers in clusters, shared memory in clusters of any size and in
// one block, the two-kernel slices). "0" turns a kernel off; "1" turns on one the default leaves out
// (registers in clusters; shared memory in clusters of more blocks than launch_shared_rows takes).
bool switched(const char* name, const char* value) {
  const char* env = std::getenv(name);
  return env && std::string(env) == value;
}
bool switched_off(const char* name) { return switched(name, "0"); }

// CBLOSS_CUDA_LAST_BLOCK_SUMS=n: the most values a launch's last block sums (0: every sum a launch of its
// own after the kernel that wrote its values, as before the last-block sums); unset or not a count of
// values, cuda::kOneBlockSum.
int64_t last_block_sums() {
  const char* env = std::getenv("CBLOSS_CUDA_LAST_BLOCK_SUMS");
  if (!env || !*env) return cuda::kOneBlockSum;
  char* end = nullptr;
  const long long n = std::strtoll(env, &end, 10);
  return *end == '\0' && n >= 0 ? static_cast<int64_t>(n) : cuda::kOneBlockSum;
}

DeviceLaunch device_launch(DeviceContext& ctx, cudaStream_t stream) {
  const bool clusters = ctx.clusters && !switched_off("CBLOSS_CUDA_CLUSTERS");
  return {stream,
          !switched_off("CBLOSS_CUDA_SMALL_GROUPS"),
          clusters,
          clusters && switched("CBLOSS_CUDA_REGISTER_CLUSTERS", "1"),
          !switched_off("CBLOSS_CUDA_SHARED_ROWS"),
          switched("CBLOSS_CUDA_SHARED_ROWS", "1"),
          !ctx.cooperative                        ? "the device does not run cooperative launches"
          : switched_off("CBLOSS_CUDA_ONE_PASS") ? "switched off (CBLOSS_CUDA_ONE_PASS=0)"
                                                 : nullptr,
          last_block_sums(),
          ctx.multiprocessors,
          ctx.shared_per_block,
          ctx.answers};
}

double finish(const Problem& p, double sum, double divisor) {
  if (p.divisor == Divisor::None) return sum;
  if (divisor == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return sum / divisor;
}

// The divisor when it does not depend on the targets (host- or device-resident alike), or NaN.
double constant_divisor(const Problem& p) {
  if (p.avg_factor > 0.0 && p.divisor != Divisor::None && p.divisor != Divisor::One) return p.avg_factor;
  switch (p.divisor) {
    case Divisor::None:
    case Divisor::One: return 1.0;
    case Divisor::Elements: return static_cast<double>(output_elements(p));
    case Divisor::Rows: return static_cast<double>(p.rows);
    case Divisor::LabelWeight: return p.labels ? std::numeric_limits<double>::quiet_NaN() : static_cast<double>(p.rows);
    case Divisor::BalanceWeight: return std::numeric_limits<double>::quiet_NaN();
  }
  return 1.0;
}

// ---- arrays already on the device ------------------------------------------------------------------

double run_on_device(DeviceContext& ctx, const Problem& p) {
  cudaStream_t stream = ctx.slots[0].stream;
  const ParamLayout layout = param_layout(p);
  const int64_t N = p.rows;
  const bool rows = is_row_loss(p.loss);
  const double fixed = constant_divisor(p);
  const bool data_divisor = std::isnan(fixed);

  // Scratch: row losses (unless 'none' writes them to the output), partial sums (element losses: one a
  // block; short rows: one a tile), divisor terms, the sum stages, and the kernels' work space.
  const cuda::DeviceLaunch launch = device_launch(ctx, stream);
  Packing pack;
  const size_t row_loss_at = pack.add(rows && !p.loss_out ? static_cast<size_t>(N) * sizeof(float) : 0);
  const size_t partials_at = pack.add(static_cast<size_t>(cuda::loss_partial_count(p)) * sizeof(double));
  const int64_t term_count = data_divisor ? cuda::divisor_term_count(N, launch) : 0;
  const size_t terms_at = pack.add(static_cast<size_t>(term_count) * sizeof(double));
  const size_t stage_at = pack.add(cuda::sum_scratch_bytes());
  const size_t work_at = pack.add(cuda::work_bytes(p, N));
  char* scratch = ctx.scratch.reserve(pack.size());
  ctx.host_params.reserve(layout.bytes);
  ctx.device_params.reserve(layout.bytes);

  KernelArgs a = upload_params(ctx, p, layout, data_divisor ? 0.0 : fixed, stream);
  char* params = ctx.device_params.data();
  char* host_params = ctx.host_params.data();
  a.rows = N;
  a.logits = p.logits;
  a.grad = p.grad_out;
#define CBLOSS_KERNEL_INPUT(argument, member, type, extent, kind, ...) CBLOSS_WHEN_DATA_IN(kind, a.member = p.member;)
  CBLOSS_CALL_ARRAYS(CBLOSS_KERNEL_INPUT)  // (each data input has its KernelArgs member of the same name)
#undef CBLOSS_KERNEL_INPUT
  name_traffic_buffers(p, layout, params, scratch, row_loss_at, partials_at, terms_at, pack.size());

  // The labels are checked before anything is written — with the divisor's terms where the divisor
  // depends on them (one pass over the labels), in the loss kernel itself where it can (the one pass)
  // — and every later kernel that reads labels or writes an output does nothing if one is bad
  // (KernelArgs::invalid_label); the host looks at the flag after the one synchronization of the call.
  a.row_loss = rows ? (p.loss_out ? p.loss_out : reinterpret_cast<float*>(scratch + row_loss_at)) : nullptr;
  a.element_loss = rows ? nullptr : p.loss_out;
  a.partials = reinterpret_cast<double*>(scratch + partials_at);
  double* stage = reinterpret_cast<double*>(scratch + stage_at);
  cuda::DeviceCall call;
  call.data_divisor = data_divisor ? p.divisor : Divisor::None;
  call.divisor_terms = reinterpret_cast<double*>(scratch + terms_at);
  call.divisor = reinterpret_cast<double*>(params + layout.divisor);
  call.sum = reinterpret_cast<double*>(params + layout.sum);
  call.stage = stage;
  call.first_bad = p.labels ? reinterpret_cast<unsigned long long*>(params + layout.first_bad) : nullptr;
  call.blocks_done = reinterpret_cast<unsigned*>(params + layout.blocks_done);
  call.row_losses_out = p.loss_out != nullptr;
  cuda::launch_device_call(p.logit_type, a, call, scratch + work_at, launch);
  // The divisor, the sum and the label flag open the parameter block: one copy brings all three back.
  check(cudaMemcpyAsync(host_params, params, layout.first_bad + sizeof(unsigned long long), cudaMemcpyDeviceToHost,
                        stream),
        "copy to the host");
  check(cudaStreamSynchronize(stream), "loss kernels");
  unsigned long long first_bad = 0;
  std::memcpy(&first_bad, host_params + layout.first_bad, sizeof first_bad);
  if (p.labels && first_bad != ~0ull) {
    int32_t label = 0;
    check(cudaMemcpy(&label, p.labels + first_bad, sizeof label, cudaMemcpyDeviceToHost), "copy to the host");
    throw InvalidLabel(static_cast<int64_t>(first_bad), label);
  }
  double divisor = 0.0, total = 0.0;
  std::memcpy(&divisor, host_params + layout.divisor, sizeof divisor);
  std::memcpy(&total, host_params + layout.sum, sizeof total);
  return finish(p, total, divisor);
}

// ---- host arrays, pipelined ------------------------------------------------------------------------

// Which of a call's outputs lie in pinned memory (allocate_pinned): those come from the device into
// the caller's memory directly, without the staging copies.
struct DirectOutputs {
  bool grad, loss;
};

// The call's data inputs (core/call_description.h, kind DataIn), in order: each chunk sends its rows of
// every one present.
enum DataInput : int {
#define CBLOSS_DATA_INPUT(argument, member, type, extent, kind, ...) CBLOSS_WHEN_DATA_IN(kind, kInput_##member, )
  CBLOSS_CALL_ARRAYS(CBLOSS_DATA_INPUT)
#undef CBLOSS_DATA_INPUT
  kDataInputs
};

// One data input of a call on host arrays: the caller's array (null: absent), its bytes a row, where a
// chunk's rows of it go in the slot's layout, and whether it goes to the device directly (pinned) or
// through the staging buffer; `wide` ones (a value a logit) are copied there over the CPU threads (one
// thread's memcpy is slower than the bus).
struct InputLayout {
  const void* data;
  size_t row_bytes, at;
  bool direct, wide;
};

// Stages what must be staged of rows [r0, r0 + nr) of every input, then sends them: in one transfer of
// the staging buffer when none is direct (the usual case: one call), else array by array.
void send_inputs(const InputLayout (&inputs)[kDataInputs], int64_t r0, int64_t nr, char* staging, char* device,
                 cudaStream_t stream) {
  const auto rows_of = [&](const InputLayout& in) {
    return static_cast<const char*>(in.data) + static_cast<size_t>(r0) * in.row_bytes;
  };
  size_t end = 0;
  bool any_direct = false;
  for (const InputLayout& in : inputs) {
    if (!in.data) continue;
    const size_t bytes = static_cast<size_t>(nr) * in.row_bytes;
    end = in.at + bytes;
    any_direct = any_direct || in.direct;
    if (in.direct) continue;
    if (in.wide) parallel_copy(reinterpret_cast<float*>(staging + in.at), reinterpret_cast<const float*>(rows_of(in)), bytes / sizeof(float));
    else std::memcpy(staging + in.at, rows_of(in), bytes);
  }
  if (!any_direct) {
    check(cudaMemcpyAsync(device, staging, end, cudaMemcpyHostToDevice, stream), "copy to the device");
    return;
  }
  for (const InputLayout& in : inputs) {
    if (!in.data) continue;
    const void* from = in.direct ? static_cast<const void*>(rows_of(in)) : staging + in.at;
    check(cudaMemcpyAsync(device + in.at, from, static_cast<size_t>(nr) * in.row_bytes, cudaMemcpyHostToDevice, stream),
          "copy to the device");
  }
}

// Copies a finished chunk's results from pinned memory into the caller's arrays.
void deliver(Slot& s) {
  if (!s.pending.active) return;
  check(cudaEventSynchronize(s.done), "loss kernels");
  const PendingCopy& c = s.pending;
  if (c.grad_dst) parallel_copy(c.grad_dst, reinterpret_cast<const float*>(s.host_out.data() + c.grad_at), c.grad_bytes / sizeof(float));
  if (c.loss_dst) std::memcpy(c.loss_dst, s.host_out.data() + c.loss_at, c.loss_bytes);
  s.pending = PendingCopy{};
}

double run_host_arrays(DeviceContext& ctx, const Problem& p) {
  const int64_t N = p.rows;
  const int64_t C = p.classes;
  const bool rows = is_row_loss(p.loss);
  const double divisor = reduction_divisor(p);
  const int64_t chunk_rows_max = N == 0 ? 1 : std::max<int64_t>(1, std::min<int64_t>(N, chunk_elements() / C));
  const int64_t chunks = N == 0 ? 0 : ceil_div(N, chunk_rows_max);
  const size_t chunk_elems = static_cast<size_t>(chunk_rows_max * C);
  const size_t chunk_outputs = rows ? static_cast<size_t>(chunk_rows_max) : chunk_elems;
  const int64_t blocks_per_chunk = rows ? 0 : cuda::element_blocks(chunk_rows_max * C);

  // Per-slot layouts (inputs packed in one transfer, outputs in another); every input goes with its rows.
  Packing in;
  InputLayout input[kDataInputs];
#define CBLOSS_INPUT_LAYOUT(argument, member, type, extent, kind, ...)                                          \
  CBLOSS_WHEN_DATA_IN(kind, {                                                                                   \
    InputLayout& l = input[kInput_##member];                                                                   \
    l.data = p.member;                                                                                          \
    l.row_bytes = static_cast<size_t>(row_elements(p, CallExtent::extent)) * sizeof(type);                      \
    l.at = in.add(p.member ? static_cast<size_t>(chunk_rows_max) * l.row_bytes : 0);                            \
    l.direct = p.member && is_pinned(p.member, static_cast<size_t>(N) * l.row_bytes);                           \
    l.wide = row_elements(p, CallExtent::extent) > 1 && sizeof(type) == sizeof(float);                          \
  })
  CBLOSS_CALL_ARRAYS(CBLOSS_INPUT_LAYOUT)
#undef CBLOSS_INPUT_LAYOUT
  Packing out;
  const size_t grad_at = out.add(p.grad_out ? chunk_elems * sizeof(float) : 0);
  const size_t loss_at = out.add(p.loss_out ? chunk_outputs * sizeof(float) : 0);
  // Call-wide scratch: every row loss, every partial sum, the sum stages.
  Packing call;
  const size_t row_loss_at = call.add(rows ? static_cast<size_t>(N) * sizeof(float) : 0);
  const size_t partials_at = call.add(static_cast<size_t>(chunks * blocks_per_chunk) * sizeof(double));
  const size_t stage_at = call.add(cuda::sum_scratch_bytes());

  const size_t total_elems = static_cast<size_t>(N * C);
  const DirectOutputs direct{p.grad_out && is_pinned(p.grad_out, total_elems * sizeof(float)),
                             p.loss_out && is_pinned(p.loss_out, (rows ? static_cast<size_t>(N) : total_elems) * sizeof(float))};

  // Reserve everything before the first output is written.
  const ParamLayout layout = param_layout(p);
  ctx.host_params.reserve(layout.bytes);
  ctx.device_params.reserve(layout.bytes);
  char* scratch = ctx.scratch.reserve(call.size());
  for (Slot& s : ctx.slots) {
    s.host_in.reserve(in.size());
    s.host_out.reserve(out.size());
    s.device_in.reserve(in.size());
    s.device_out.reserve(out.size());
    s.work.reserve(std::max<size_t>(cuda::work_bytes(p, chunk_rows_max), kAlign));
  }

  cudaStream_t first = ctx.slots[0].stream;
  KernelArgs base = upload_params(ctx, p, layout, divisor, first);
  char* params = ctx.device_params.data();
  double* partials = reinterpret_cast<double*>(scratch + partials_at);
  if (!rows && chunks > 0) {
    check(cudaMemsetAsync(partials, 0, static_cast<size_t>(chunks * blocks_per_chunk) * sizeof(double), first),
          "memset");
  }
  check(cudaEventRecord(ctx.setup_done, first), "event record");
  for (Slot& s : ctx.slots) check(cudaStreamWaitEvent(s.stream, ctx.setup_done, 0), "stream wait");

  for (int64_t i = 0; i < chunks; ++i) {
    Slot& s = ctx.slots[i % kStreams];
    deliver(s);  // the results of chunk i - kStreams, and the slot's buffers are free again
    const int64_t r0 = i * chunk_rows_max;
    const int64_t nr = std::min(chunk_rows_max, N - r0);
    const size_t elems = static_cast<size_t>(nr * C);
    const size_t outputs = rows ? static_cast<size_t>(nr) : elems;
    const size_t first_output = rows ? static_cast<size_t>(r0) : static_cast<size_t>(r0 * C);
    char* hin = s.host_in.data();
    char* din = s.device_in.data();
    char* dout = s.device_out.data();
    send_inputs(input, r0, nr, hin, din, s.stream);

    KernelArgs a = base;
    a.rows = nr;
#define CBLOSS_KERNEL_INPUT(argument, member, type, extent, kind, ...) \
  CBLOSS_WHEN_DATA_IN(kind, a.member = p.member ? reinterpret_cast<decltype(a.member)>(din + input[kInput_##member].at) : nullptr;)
    CBLOSS_CALL_ARRAYS(CBLOSS_KERNEL_INPUT)  // (each data input has its KernelArgs member of the same name)
#undef CBLOSS_KERNEL_INPUT
    a.grad = p.grad_out ? dout + grad_at : nullptr;
    a.row_loss = rows ? reinterpret_cast<float*>(scratch + row_loss_at) + r0 : nullptr;
    a.element_loss = !rows && p.loss_out ? reinterpret_cast<float*>(dout + loss_at) : nullptr;
    a.partials = rows ? nullptr : partials + i * blocks_per_chunk;
    cuda::launch_compute(LogitType::Float32, a, s.work.data(), device_launch(ctx, s.stream));

    PendingCopy& c = s.pending;
    c.active = true;
    c.grad_at = grad_at;
    c.loss_at = loss_at;
    // Outputs in pinned memory come straight back into the caller's arrays; the others through the
    // slot's staging buffer, copied out by deliver() when the slot comes round again.
    if (p.grad_out) {
      float* dst = p.grad_out + r0 * C;
      const size_t bytes = elems * sizeof(float);
      void* landing = direct.grad ? static_cast<void*>(dst) : s.host_out.data() + grad_at;
      check(cudaMemcpyAsync(landing, a.grad, bytes, cudaMemcpyDeviceToHost, s.stream), "copy to the host");
      if (!direct.grad) c.grad_dst = dst, c.grad_bytes = bytes;
    }
    if (p.loss_out) {
      float* dst = p.loss_out + first_output;
      const size_t bytes = outputs * sizeof(float);
      void* landing = direct.loss ? static_cast<void*>(dst) : s.host_out.data() + loss_at;
      const void* src = rows ? static_cast<const void*>(a.row_loss) : static_cast<const void*>(a.element_loss);
      check(cudaMemcpyAsync(landing, src, bytes, cudaMemcpyDeviceToHost, s.stream), "copy to the host");
      if (!direct.loss) c.loss_dst = dst, c.loss_bytes = bytes;
    }
    check(cudaEventRecord(s.done, s.stream), "event record");
  }

  // The sum waits for every chunk's kernels.
  for (Slot& s : ctx.slots) check(cudaStreamWaitEvent(first, s.done, 0), "stream wait");
  double* sum = reinterpret_cast<double*>(params + layout.sum);
  double* stage = reinterpret_cast<double*>(scratch + stage_at);
  if (rows) cuda::launch_sum(reinterpret_cast<float*>(scratch + row_loss_at), N, stage, sum, first);
  else cuda::launch_sum(partials, chunks * blocks_per_chunk, stage, sum, first);
  char* host_params = ctx.host_params.data();
  check(cudaMemcpyAsync(host_params + layout.sum, sum, sizeof(double), cudaMemcpyDeviceToHost, first), "copy to the host");
  for (Slot& s : ctx.slots) deliver(s);
  check(cudaStreamSynchronize(first), "loss kernels");
  double total = 0.0;
  std::memcpy(&total, host_params + layout.sum, sizeof total);
  return finish(p, total, divisor);
}

}  // namespace

double run_cuda(const Problem& p, int device) {
  DeviceContext& ctx = context_for(device);
  std::lock_guard<std::mutex> lock(ctx.mutex);
  check(cudaSetDevice(device), "cudaSetDevice");
  ctx.initialize();
  if (p.device_memory) return run_on_device(ctx, p);
  if (p.logit_type != LogitType::Float32) throw std::runtime_error("16-bit logits must be on the device");
  try {
    return run_host_arrays(ctx, p);
  } catch (...) {
    for (Slot& s : ctx.slots) s.pending = PendingCopy{};  // never deliver into a failed call's arrays later
    throw;
  }
}

// ---- DeviceMemory ----------------------------------------------------------------------------------

std::shared_ptr<DeviceMemory> DeviceMemory::allocate(int device, size_t bytes) {
  context_for(device);  // checks that CUDA is usable and the index exists
  check(cudaSetDevice(device), "cudaSetDevice");
  void* ptr = nullptr;
  const cudaError_t err = cudaMalloc(&ptr, bytes == 0 ? 1 : bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error("CUDA out of memory: could not allocate " + std::to_string(bytes) + " bytes on cuda:" +
                             std::to_string(device) + " (" + describe(err) + ")");
  }
  return std::shared_ptr<DeviceMemory>(new DeviceMemory(device, ptr, bytes, true));
}

std::shared_ptr<DeviceMemory> DeviceMemory::borrow(int device, void* address, size_t bytes) {
  context_for(device);
  return std::shared_ptr<DeviceMemory>(new DeviceMemory(device, address, bytes, false));
}

DeviceMemory::~DeviceMemory() {
  if (!owned_) return;
  cudaSetDevice(device_);
  cudaFree(data_);
}

void DeviceMemory::copy_from_host(const void* src, size_t bytes, size_t offset) {
  if (offset > bytes_ || bytes > bytes_ - offset) throw std::range_error("copy larger than the device buffer");
  check(cudaSetDevice(device_), "cudaSetDevice");
  if (bytes == 0) return;
  check(cudaMemcpy(static_cast<char*>(data_) + offset, src, bytes, cudaMemcpyHostToDevice), "copy to the device");
  // From pageable memory cudaMemcpy may return before its last DMA lands, and the loss kernels run on
  // non-blocking streams, which do not wait for the default stream: the copy is complete on return.
  check(cudaStreamSynchronize(nullptr), "copy to the device");
}

void DeviceMemory::copy_to_host(void* dst, size_t bytes) const {
  if (bytes > bytes_) throw std::range_error("copy larger than the device buffer");
  check(cudaSetDevice(device_), "cudaSetDevice");
  if (bytes) check(cudaMemcpy(dst, data_, bytes, cudaMemcpyDeviceToHost), "copy to the host");
}

// ---- pinned host memory ----------------------------------------------------------------------------

namespace {

// Every allocate_pinned block, by address, so that run_host_arrays can tell which arrays it may send
// directly; and the holds of async calls reading or writing a block (hold_pinned): a block freed while
// held (its ArrayBuffer transferred away and collected during the call) is freed at its last release.
// (Leaked on purpose: finalizers may free blocks during the process's teardown.)
struct PinnedBlock {
  size_t size = 0;
  int holds = 0;
  bool freed = false;  // free_pinned came while held
};
struct PinnedBlocks {
  std::mutex mutex;
  std::map<uintptr_t, PinnedBlock> blocks;
  // The block holding [address, address + bytes), or end().
  std::map<uintptr_t, PinnedBlock>::iterator find(const void* address, size_t bytes) {
    const uintptr_t at = reinterpret_cast<uintptr_t>(address);
    auto it = blocks.upper_bound(at);
    if (!address || it == blocks.begin()) return blocks.end();
    --it;
    const size_t offset = at - it->first;
    const bool inside = !it->second.freed && offset < it->second.size && bytes <= it->second.size - offset;
    return inside ? it : blocks.end();
  }
};

PinnedBlocks& pinned_blocks() {
  static PinnedBlocks* blocks = new PinnedBlocks;
  return *blocks;
}

}  // namespace

void* allocate_pinned(size_t bytes) {
  const CudaStatus& status = cuda_status();
  if (!status.available) throw std::runtime_error("CUDA is not usable: " + status.reason);
  const size_t size = bytes == 0 ? 1 : bytes;
  void* address = nullptr;
  const cudaError_t err = cudaMallocHost(&address, size);  // portable: every device sees it pinned (UVA)
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error("could not allocate " + std::to_string(bytes) + " bytes of pinned host memory (" +
                             describe(err) + ")");
  }
  PinnedBlocks& pinned = pinned_blocks();
  std::lock_guard<std::mutex> lock(pinned.mutex);
  pinned.blocks[reinterpret_cast<uintptr_t>(address)] = PinnedBlock{size};
  return address;
}

void free_pinned(void* address) {
  if (!address) return;
  {
    PinnedBlocks& pinned = pinned_blocks();
    std::lock_guard<std::mutex> lock(pinned.mutex);
    auto it = pinned.blocks.find(reinterpret_cast<uintptr_t>(address));
    if (it != pinned.blocks.end() && it->second.holds > 0) {
      it->second.freed = true;  // the last release_pinned frees it
      return;
    }
    if (it != pinned.blocks.end()) pinned.blocks.erase(it);
  }
  cudaFreeHost(address);
}

void* hold_pinned(const void* address, size_t bytes) {
  PinnedBlocks& pinned = pinned_blocks();
  std::lock_guard<std::mutex> lock(pinned.mutex);
  auto it = pinned.find(address, bytes);
  if (it == pinned.blocks.end()) return nullptr;
  ++it->second.holds;
  return reinterpret_cast<void*>(it->first);
}

void release_pinned(void* block) {
  if (!block) return;
  {
    PinnedBlocks& pinned = pinned_blocks();
    std::lock_guard<std::mutex> lock(pinned.mutex);
    auto it = pinned.blocks.find(reinterpret_cast<uintptr_t>(block));
    if (it == pinned.blocks.end() || --it->second.holds > 0 || !it->second.freed) return;
    pinned.blocks.erase(it);
  }
  cudaFreeHost(block);
}

bool is_pinned(const void* address, size_t bytes) {
  PinnedBlocks& pinned = pinned_blocks();
  std::lock_guard<std::mutex> lock(pinned.mutex);
  return pinned.find(address, bytes) != pinned.blocks.end();
}

}  // namespace cbloss
