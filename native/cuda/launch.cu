// The CUDA backend's kernel launches (see launch.h): the kernel and grid for each shape, on this device.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "host_checks.h"
#include "kernels.cuh"
#include "launch.h"

namespace cbloss {
namespace cuda {
namespace {

constexpr int64_t kMaxElementBlocks = 4096;

// Grid-stride launches: between 1 and kMaxElementBlocks blocks (a function of the shape only, so
// that the partial sums, and the reduced loss, do not depend on the GPU).
int64_t stride_blocks(int64_t work, int64_t per_block) {
  const int64_t b = ceil_div(work, per_block);
  return b < 1 ? 1 : b > kMaxElementBlocks ? kMaxElementBlocks : b;
}


// One thread per row.
unsigned row_thread_blocks(int64_t rows) { return static_cast<unsigned>(stride_blocks(rows, kBlock)); }

// A grid dimension of at most kMaxGridX blocks (the kernels loop over what does not fit).
unsigned grid_size(int64_t blocks) { return static_cast<unsigned>(blocks < kMaxGridX ? blocks : kMaxGridX); }

int64_t slices_per_row(int64_t classes) { return ceil_div(classes, kSliceColumns); }

// The threads that share a softmax row (held_rows_kernel): 4 lanes for C <= 16; 8 or 16 lanes holding
// up to kSmallGroupValues logits each (C <= 128, 256) — a row reduced in 3 or 4 shuffle steps instead
// of 5, its row terms computed once for 4 or 2 rows of a warp instead of for one, loads of 4 runs in
// flight a lane instead of 1 (a warp a row at C = 128 spent more instructions on its reductions and row
// terms than on its 4 logits a lane); else the smallest of 1, 2, 4 or 8 warps whose threads hold the
// row with at most `held` logits each; 0 when even the block cannot (then longer-row kernels).
// small_groups false (CBLOSS_CUDA_SMALL_GROUPS=0, for measurements): a warp from C = 17, as before.
constexpr int kSmallGroupValues = 16;
int row_group(int64_t classes, int held, bool small_groups = true) {
  if (classes <= 16) return 4;
  for (int G = 8; G <= 16 && small_groups; G *= 2) {
    if (classes <= int64_t{kSmallGroupValues} * G) return G;
  }
  for (int G = 32; G <= kBlock; G *= 2) {
    if (classes <= int64_t{held} * G) return G;
  }
  return 0;
}

// The fewest logits a thread may hold, over the widths (the scratch is sized before the width is known).
int least_held_values() { return kMaxHeldValues<BFloat16, 1>; }


// Blocks per multiprocessor of a launch whose blocks stage class weights (kernels.cuh): enough waves to
// balance, few enough that each block's copy of the weights serves many rows.
constexpr int64_t kStagingBlocksPerSM = 8;

// Static shared memory of any kernel here, at most: the held rows' staged spans (16 KB at R = 16) and
// their reductions' scratch (the emulator checks every block's static and dynamic bytes together).
constexpr size_t kMostStaticShared = 20 * 1024;

// Allows `kernel` `bytes` of dynamic shared memory on the device: a block's static and dynamic shared
// memory together beyond 48 KB must be asked for, and its static part is not known here — so from
// 48 KB less kMostStaticShared.
template <class Kernel>
cudaError_t raise_shared_limit(Kernel* kernel, size_t bytes, LaunchAnswers& answers) {
  constexpr size_t kDefaultShared = 48 * 1024;
  if (bytes + kMostStaticShared <= kDefaultShared) return cudaSuccess;
  size_t& allowed = answers.shared_allowed[reinterpret_cast<const void*>(kernel)];
  if (allowed >= bytes) return cudaSuccess;
  const cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err == cudaSuccess) allowed = bytes;
  return err;
}

// A device call's loss (`call`; null for chunks of host arrays): `count` values its loss launch writes —
// the row losses, or the partial sums — summed into call->sum by the launch's last block up to
// d.last_block_sums values (by default one block's work: sum_in_last_block, no launch of its own),
// else by launch_sum after it (summed_after).
KernelArgs summing_loss(KernelArgs a, const DeviceCall* call, bool row_losses, int64_t count, const DeviceLaunch& d) {
  a.loss_sum = nullptr;
  a.loss_sum_rows = row_losses;
  a.loss_sum_count = count;
  if (call && count <= d.last_block_sums) {
    a.loss_sum = call->sum;
    a.loss_blocks_done = call->blocks_done + kLossLaunch;
  }
  return a;
}

void summed_after(const KernelArgs& a, const DeviceCall* call, cudaStream_t stream) {
  if (!call || a.loss_sum) return;
  if (a.loss_sum_rows) launch_sum(a.row_loss, a.loss_sum_count, call->stage, call->sum, stream);
  else launch_sum(a.partials, a.loss_sum_count, call->stage, call->sum, stream);
}

// Whether the divisor's terms of a device call are summed by their kernel's last block (else by a launch
// after it): checked() launches by it, and the log names what it launched.
bool divisor_summed_in_last_block(const KernelArgs& a, const DeviceLaunch& d) {
  return divisor_blocks(a.rows) <= d.last_block_sums;
}

// What a device call (`call`; null for chunks of host arrays) checks before its loss kernels, launched:
// the divisor's terms with the label check (their sum by its last block, or a launch after it where
// d.last_block_sums is less than their count), or the label check alone; the loss kernels' arguments
// with the flag they skip on.
KernelArgs checked(KernelArgs a, const DeviceCall* call, const DeviceLaunch& d) {
  if (!call) return a;
  if (call->data_divisor != Divisor::None) {
    const bool last_block = divisor_summed_in_last_block(a, d);
    launch_divisor_terms(a, call->data_divisor, call->divisor_terms, call->first_bad, last_block ? call->divisor : nullptr,
                         call->blocks_done + kDivisorLaunch, d.stream);
    if (!last_block) launch_sum(call->divisor_terms, divisor_blocks(a.rows), call->stage, call->divisor, d.stream);
  } else if (call->first_bad) {
    launch_label_check(a.labels, a.rows, a.classes, uses_ignore_index(a.loss), a.ignore_index, call->first_bad, d.stream);
  }
  a.invalid_label = call->first_bad;
  return a;
}

// CBLOSS_CUDA_LOG=1: the launch choices go to stderr — those a device is asked about once (whether
// clusters of a size run there, how many at once) as they are made, and the kernels each call's loss
// launch runs (log_kernels) — what the GPU check records.
bool launch_log() {
  const char* env = std::getenv("CBLOSS_CUDA_LOG");
  return env && std::string(env) == "1";
}

// One line of the kernels a loss launch runs, printed when it differs from the last one printed: on a
// GPU nothing else says which path ran (the emulator's traffic file names the kernels; a GPU has none),
// so a silent fallback would pass every check; a loop of one call prints it once, not a write a call.
void log_kernels(const std::string& line) {
  static std::mutex mutex;
  static std::string last;
  std::lock_guard<std::mutex> lock(mutex);
  if (line == last) return;
  last = line;
  std::fprintf(stderr, "cbloss CUDA: %s\n", line.c_str());
}

template <class T>
const char* logit_type_name() {
  return sizeof(T) == 4 ? "float" : std::is_same<T, Float16>::value ? "Float16" : "BFloat16";
}

// "N rows of C columns: " — the start of a log_kernels line.
std::string rows_of(const KernelArgs& a) {
  return std::to_string(a.rows) + " rows of " + std::to_string(a.classes) + " columns: ";
}

// The kernels checked() launches before the loss kernels, for the log.
std::string checks_named(const KernelArgs& a, const DeviceCall* call, const DeviceLaunch& d) {
  if (!call) return "";
  if (call->data_divisor != Divisor::None) {
    return divisor_summed_in_last_block(a, d) ? "divisor_terms_kernel, " : "divisor_terms_kernel, segment_sum_kernel, ";
  }
  return call->first_bad ? "check_labels_kernel, " : "";
}

// What became of the one pass for a launch of held rows: the tiles it summed (> 0: it ran), else why
// not (and the error where the runtime refused); the grid it took or would have, its blocks an SM,
// the labels a block held, and the most rows it holds (0 where not asked).
struct OnePass {
  int64_t tiles = 0;
  const char* why = nullptr;
  cudaError_t error = cudaSuccess;
  int64_t grid = 0, per_sm = 0, held = 0, most_rows = 0;
};

template <class T, int G, int V, int R>
OnePass launch_one_pass(KernelArgs a, const DeviceCall& call, const DeviceLaunch& d);

template <class T, int G, int V, int R, bool kOnePass>
std::string held_rows_name() {
  return std::string("held_rows_kernel<") + logit_type_name<T>() + ", " + std::to_string(G) + ", " + std::to_string(V) +
         ", " + std::to_string(R) + (kOnePass ? ", true>" : ", false>");
}

// The log line of a launch of held rows (held_rows_name of either kernel, as the emulator names them).
template <class T, int G, int V, int R>
void log_held_rows(const KernelArgs& a, const DeviceCall* call, const OnePass& one, const DeviceLaunch& d) {
  std::string line = rows_of(a);
  const std::string most = one.most_rows > 0 ? "; at most " + std::to_string(one.most_rows) + " rows" : "";
  if (one.tiles > 0) {
    line += held_rows_name<T, G, V, R, true>() + " (the one pass: " + std::to_string(one.grid) + " blocks, up to " +
            std::to_string(one.per_sm) + " an SM, " + std::to_string(one.held) + " labels a block" + most + ")";
  } else {
    line += checks_named(a, call, d) + held_rows_name<T, G, V, R, false>() + " (not the one pass: " + one.why;
    if (one.error != cudaSuccess) line += std::string(" (") + cudaGetErrorName(one.error) + ")";
    line += most + ")";
  }
  log_kernels(line);
}

// held_rows_kernel with the least R (a power of 2, from R up to kMaxR) that holds `runs` runs per lane,
// after the device call's checks — or, for groups under a warp with device labels, the one pass, where
// it runs. Groups under a warp sum their tiles' losses into a.partials where it is given.
template <class T, int G, int V, int R, int kMaxR>
void launch_held_rows(KernelArgs a, int64_t runs, const DeviceLaunch& d, const DeviceCall* call) {
  if constexpr (R < kMaxR) {
    if (runs > R) return launch_held_rows<T, G, V, 2 * R, kMaxR>(a, runs, d, call);
  }
  constexpr int64_t kRowsPerBlock = kBlock / G;
  // (the one pass for rows of up to 256 columns, where the labels' second read is felt: 3% at bf16
  // C = 128)
  OnePass one;
  if constexpr (G < 32) {
    if (!call) {
      one.why = "host arrays, their labels checked on the host";
    } else if (!call->first_bad) {
      one.why = "no device labels";
    } else if (d.no_one_pass) {
      one.why = d.no_one_pass;
    } else {
      one = launch_one_pass<T, G, V, R>(a, *call, d);
    }
  } else {
    one.why = "rows held by a warp or more";
  }
  if (launch_log()) log_held_rows<T, G, V, R>(a, call, one, d);
  if (one.tiles > 0) return;
  a = checked(a, call, d);
  auto* kernel = held_rows_kernel<T, G, V, R>;
  int64_t blocks = ceil_div(a.rows, kRowsPerBlock);
  const size_t shared = staged_weight_bytes(a);
  if (shared > 0) {
    blocks = std::min(blocks, kStagingBlocksPerSM * d.multiprocessors);
    check(raise_shared_limit(kernel, shared, d.answers), "shared memory for the class weights");
  }
  CBLOSS_LAUNCH_SHARED(kernel, dim3(grid_size(blocks)), dim3(kBlock), shared, d.stream, a);
}

// The one pass (held_rows.cuh): a cooperative launch of held_rows_kernel<..., true> with as many blocks
// as the GPU holds at once (at most one a tile) with the labels each holds, its tiles' labels in shared
// memory — at most kOnePassLabelBytes, 8192 rows a block — before the staged weights. Returns the tiles (their
// losses in a.partials), or 0 tiles and why not where it does not run (too many rows, the GPU refuses
// the grid): then the plain path.
constexpr size_t kOnePassLabelBytes = 32 * 1024;
constexpr int64_t kMostBlocksPerSM = 2048 / kBlock;  // (threads an SM holds: the divisor terms' room)

// Blocks of `kernel` an SM holds with `bytes` of dynamic shared memory (asked once per device, kernel
// and size), or -1 where the runtime cannot say.
template <class Kernel>
int blocks_per_sm(Kernel* kernel, size_t bytes, LaunchAnswers& answers, cudaError_t& error) {
  const auto key = std::make_pair(reinterpret_cast<const void*>(kernel), bytes);
  const auto known = answers.blocks_per_sm.find(key);
  if (known != answers.blocks_per_sm.end()) return known->second;
  int fit = 0;
  error = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, kernel, kBlock, bytes);
  if (error != cudaSuccess) {
    cudaGetLastError();  // (not sticky)
    return -1;
  }
  answers.blocks_per_sm.emplace(key, fit);
  return fit;
}

template <class T, int G, int V, int R>
OnePass launch_one_pass(KernelArgs a, const DeviceCall& call, const DeviceLaunch& d) {
  constexpr int64_t kRowsPerBlock = kBlock / G;
  constexpr int64_t kMostLabels = kOnePassLabelBytes / sizeof(int32_t);  // (whole tiles: kRowsPerBlock divides it)
  auto* kernel = held_rows_kernel<T, G, V, R, true>;
  OnePass one;
  const int64_t tiles = ceil_div(a.rows, kRowsPerBlock);
  const size_t weights = staged_weight_bytes(a);
  one.error = raise_shared_limit(kernel, weights + kOnePassLabelBytes, d.answers);
  if (one.error != cudaSuccess) {
    cudaGetLastError();  // (not sticky)
    one.why = "the device refuses its shared memory";
    return one;
  }
  // The most rows: blocks of kMostLabels labels each, as many an SM as fit with them.
  const int full = blocks_per_sm(kernel, weights + kOnePassLabelBytes, d.answers, one.error);
  if (full < 0) {
    one.why = "the occupancy query failed";
    return one;
  }
  const int64_t full_per_sm = std::min(int64_t{full}, kMostBlocksPerSM);
  one.most_rows = full_per_sm * d.multiprocessors * kMostLabels;
  if (full_per_sm < 1 || a.rows > one.most_rows) {
    one.why = full_per_sm < 1 ? "no block of it fits on an SM" : "more rows than its blocks hold";
    return one;
  }
  // The grid: the most blocks an SM (up to kMostBlocksPerSM) that fit with the labels each then holds —
  // booked as held, not kOnePassLabelBytes, which would leave room for fewer blocks than fit where
  // shared memory bounds them (sm_86/89: 100 KB an SM). full_per_sm fits (its blocks hold fewer labels
  // than at the most rows), so the search ends there at the latest; each size is asked once a device.
  for (one.per_sm = kMostBlocksPerSM; one.per_sm > full_per_sm; --one.per_sm) {
    const int64_t grid = std::min(tiles, one.per_sm * d.multiprocessors);
    const size_t bytes = weights + static_cast<size_t>(ceil_div(tiles, grid) * kRowsPerBlock) * sizeof(int32_t);
    const int fit = blocks_per_sm(kernel, bytes, d.answers, one.error);
    if (fit < 0) {
      one.why = "the occupancy query failed";
      return one;
    }
    if (int64_t{fit} * d.multiprocessors >= grid) break;
  }
  one.grid = std::min(tiles, one.per_sm * d.multiprocessors);
  const int64_t held = ceil_div(tiles, one.grid) * kRowsPerBlock;
  one.held = held;
  const size_t labels = static_cast<size_t>(held) * sizeof(int32_t);
  a.held_labels = static_cast<int>(held);
  a.label_divisor = call.data_divisor;
  a.invalid_label = call.first_bad;  // (checked by the kernel, not before it)
  a.divisor_terms = call.divisor_terms;
  a.divisor_out = call.divisor;
  one.error = CBLOSS_LAUNCH_COOPERATIVE(kernel, dim3(static_cast<unsigned>(one.grid)), dim3(kBlock), weights + labels,
                                        d.stream, a);
  if (one.error == cudaErrorCooperativeLaunchTooLarge || one.error == cudaErrorNotSupported) {
    cudaGetLastError();  // (the GPU refuses the grid, or cooperative launches where it runs: not sticky)
    one.why = "the cooperative launch was refused";
    return one;
  }
  check(one.error, "cooperative launch");
  one.tiles = tiles;
  return one;
}

bool aligned_to(const void* p, size_t bytes) { return p == nullptr || reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Launches kernel(a, slice) on grid (K, rows) in clusters of K blocks of B threads with `shared` bytes
// of dynamic shared memory each, where the GPU runs such clusters of that kernel; false where not.
// Whether it does is asked once per device, kernel, K and shared memory (the attribute and occupancy
// calls), then kept.
template <class T, int V>
bool launch_clusters(void (*kernel)(KernelArgs, int64_t), int64_t K, int B, size_t shared, const KernelArgs& a,
                     int64_t slice, const DeviceLaunch& d) {
  const dim3 grid(static_cast<unsigned>(K), grid_size(a.rows));
#if defined(CBLOSS_CUDA_EMULATION)
  CBLOSS_LAUNCH_CLUSTER(kernel, grid, dim3(B), static_cast<unsigned>(K), shared, d.stream, a, slice);
#else
  cudaLaunchAttribute cluster;
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = static_cast<unsigned>(K);
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = dim3(B);
  config.dynamicSmemBytes = shared;
  config.stream = d.stream;
  config.attrs = &cluster;
  config.numAttrs = 1;
  const auto key = std::make_tuple(reinterpret_cast<const void*>(kernel), K, shared);
  auto known = d.answers.cluster_fits.find(key);
  if (known == d.answers.cluster_fits.end()) {
    bool fits = K <= 8 || cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) == cudaSuccess;
    int fitting = 0;
    fits = fits && cudaOccupancyMaxActiveClusters(&fitting, kernel, &config) == cudaSuccess && fitting >= 1;
    cudaGetLastError();  // (not sticky) no clusters of K on this GPU or driver: the slices instead
    known = d.answers.cluster_fits.emplace(key, fits).first;
    if (launch_log()) {
      std::fprintf(stderr,
                   "cbloss CUDA: rows of %lld columns (%d-byte logits, runs of %d): clusters of %lld blocks of %d threads%s %s\n",
                   static_cast<long long>(a.classes), static_cast<int>(sizeof(T)), V, static_cast<long long>(K), B,
                   shared ? (" holding " + std::to_string(shared / 1024) + " KB of the row in shared memory").c_str() : "",
                   fits ? ("run, " + std::to_string(fitting) + " at once").c_str() : "do not run here");
    }
  }
  if (!known->second) return false;
  check(cudaLaunchKernelEx(&config, kernel, a, slice), "cluster launch");
#endif
  return true;
}

// Rows too long for one block: a cluster of K <= kMaxClusterBlocks blocks of B threads per row, held in
// registers (cluster_rows_kernel); false where the row needs more blocks or the GPU does not run them.
template <class T, int V, int B>
bool launch_cluster_rows_of(const KernelArgs& a, const DeviceLaunch& d) {
  constexpr int kRuns = kMaxHeldValues<T, V> / V;
  const int64_t K = ceil_div(a.classes, int64_t{kRuns} * V * B);
  if (K > kMaxClusterBlocks) return false;
  const int64_t slice = ceil_div(ceil_div(a.classes, K), V) * V;  // even slices, whole runs
  return launch_clusters<T, V>(cluster_rows_kernel<T, V, kRuns, B>, K, B, 0, a, slice, d);
}

// Blocks of 256 threads for float32 and 512 for 16-bit logits (8192 logits a block in runs of 4 or
// more); rows longer than 16 of those, blocks twice as large, one an SM: up to 262144 columns — except
// 16-bit runs of one column, which spill at 1024 threads' 64 registers (ptxas-check.sh). False when
// none runs.
template <class T, int V>
bool launch_cluster_rows(const KernelArgs& a, const DeviceLaunch& d) {
  constexpr int kThreads = sizeof(T) == 2 ? 2 * kBlock : kBlock;
  if (launch_cluster_rows_of<T, V, kThreads>(a, d)) return true;
  if constexpr (sizeof(T) == 4 || V > 1) return launch_cluster_rows_of<T, V, 2 * kThreads>(a, d);
  return false;
}

// Rows held in shared memory (shared_rows_kernel), K blocks a row: the least K of 1, 2, 4, 8, 16 (only 1
// where clusters do not run) whose slices take at most half the shared memory a block may have — two
// blocks an SM, so that one reads its row while the other reduces — else the least whose slices fit.
// False when none fits, the GPU does not run those clusters, or K is more than kSharedRowsMostBlocks:
// on an H200 (bench/RESULTS.md, "the long-row kernels over row lengths") the slices, though they read
// the logits twice, took less time than clusters of 8 or 16 (float32: 2.54 against 2.79 ms at
// 4096x131072) and than 16-bit logits' clusters of 4 (1.81 against 2.07 ms at 8192x65536), while
// clusters of up to 4 (float32) or 2 (16-bit) beat them by up to 20% (2.02 against 2.71 ms at
// 10737x50000 float32) and one block a row by up to 44% (8193 columns). CBLOSS_CUDA_SHARED_ROWS=1
// lifts the bound (tests, measurements).
template <class T>
constexpr int64_t kSharedRowsMostBlocks = sizeof(T) == 4 ? 4 : 2;
template <class T, int V>
bool launch_shared_rows(const KernelArgs& a, const DeviceLaunch& d) {
  constexpr size_t kStaticShared = 1024;  // the kernel's own: its reductions' scratch, `exchange`
  if (d.shared_per_block <= kStaticShared) return false;
  const size_t room = d.shared_per_block - kStaticShared;
  const int64_t most = d.clusters ? kMaxClusterBlocks : 1;
  const auto slice_for = [&](int64_t K) { return ceil_div(ceil_div(a.classes, K), V) * V; };  // whole runs
  const auto bytes_for = [&](int64_t K) { return static_cast<size_t>(slice_for(K)) * sizeof(float); };
  int64_t K = 0;
  for (const size_t limit : {room / 2, room}) {
    for (int64_t k = 1; k <= most && K == 0; k *= 2) {
      if (bytes_for(k) <= limit) K = k;
    }
  }
  if (K == 0 || (K > kSharedRowsMostBlocks<T> && !d.shared_rows_any_cluster)) return false;
  const int64_t slice = slice_for(K);
  const size_t shared = bytes_for(K);
  auto* kernel = shared_rows_kernel<T, V>;
  if (raise_shared_limit(kernel, shared, d.answers) != cudaSuccess) {
    cudaGetLastError();  // (not sticky) the device refuses so much: the slices instead
    return false;
  }
  if (K > 1) return launch_clusters<T, V>(kernel, K, kSharedRowsBlock, shared, a, slice, d);
  CBLOSS_LAUNCH_SHARED(kernel, dim3(1, grid_size(a.rows)), dim3(kSharedRowsBlock), shared, d.stream, a, slice);
  return true;
}

// The loss (and gradient) kernels for a problem already on the device; `work` has work_bytes().
// V > 1 (vector loads and stores, launch_compute) when the rows (softmax) or the whole array
// (element-wise) come in runs of V and every array they touch that way is aligned; V = 1 otherwise.
// `call`: a device call (launch_device_call) — its checks, launched before its kernels unless the one
// pass does them, and its loss summed into call->sum (summing_loss) — or null for chunks of host
// arrays (the host sums their partials).
template <class T, int V>
void launch_compute_width(KernelArgs a, char* work, const DeviceLaunch& d, const DeviceCall* call) {
  if (is_row_loss(a.loss)) {
    constexpr int kMaxRuns = kMaxHeldValues<T, V> / V;
    const int G = row_group(a.classes, kMaxHeldValues<T, V>, d.small_groups);
    const int64_t runs = G ? ceil_div(a.classes, int64_t{V} * G) : 0;
    const bool tile_sums = call && G > 0 && G < 32;  // (groups under a warp sum each tile's losses)
    if (!tile_sums) a.partials = nullptr;
    if (tile_sums && !call->row_losses_out) a.row_loss = nullptr;
    a = summing_loss(a, call, !tile_sums, tile_sums ? ceil_div(a.rows, kBlock / G) : a.rows, d);
    // A group is used only when the one of half its size cannot hold the row, which bounds R from below
    // (only R from there up is compiled; a smaller R would still be correct, a larger one too): 8 lanes
    // take C > 16 (R >= 4 in runs of 1); 16 lanes C > 128, more than half of 16 logits a lane (R = 16 / V);
    // more warps more than half of kMaxHeldValues (R = kMaxRuns). A warp takes C > 16 too when the small
    // groups are switched off: every R.
    switch (G) {
      case 0: {
        // Rows longer than a block holds: in shared memory (one block, or a cluster of a few), else
        // two kernels over slices; rows in registers by clusters only when switched on (on an H200
        // they took 1.3 to 4 times the others' time: 16 blocks of 123 registers a thread, a quarter
        // of the warps an SM can hold, wait at the cluster's barriers with no loads in flight).
        a = checked(a, call, d);
        const auto log = [&](const char* kernels) {
          if (launch_log()) log_kernels(rows_of(a) + checks_named(a, call, d) + kernels);
        };
        if (d.register_clusters && launch_cluster_rows<T, V>(a, d)) {
          log("cluster_rows_kernel");
          break;
        }
        if (d.shared_rows && launch_shared_rows<T, V>(a, d)) {
          log("shared_rows_kernel");
          break;
        }
        log("slice_stats_kernel, slice_gradient_kernel");
        const int64_t slices = slices_per_row(a.classes);
        const dim3 grid(static_cast<unsigned>(slices), grid_size(a.rows));
        auto* stats = reinterpret_cast<RowStats*>(work);
        auto* phase1 = slice_stats_kernel<T, V>;
        auto* phase2 = slice_gradient_kernel<T, V>;
        CBLOSS_LAUNCH(phase1, grid, dim3(kBlock), d.stream, a, stats);
        CBLOSS_LAUNCH(phase2, grid, dim3(kBlock), d.stream, a, stats);
        break;
      }
      case 4: launch_held_rows<T, 4, V, 1, V == 1 ? 4 : 1>(a, runs, d, call); break;  // C <= 16
      case 8: launch_held_rows<T, 8, V, V == 1 ? 4 : 1, kSmallGroupValues / V>(a, runs, d, call); break;
      case 16: launch_held_rows<T, 16, V, kSmallGroupValues / V, kSmallGroupValues / V>(a, runs, d, call); break;
      case 32: launch_held_rows<T, 32, V, 1, kMaxRuns>(a, runs, d, call); break;  // (from C = 17 without small groups)
      case 64: launch_held_rows<T, 64, V, kMaxRuns, kMaxRuns>(a, runs, d, call); break;
      case 128: launch_held_rows<T, 128, V, kMaxRuns, kMaxRuns>(a, runs, d, call); break;
      default: launch_held_rows<T, kBlock, V, kMaxRuns, kMaxRuns>(a, runs, d, call); break;
    }
    check_launch();
    summed_after(a, call, d.stream);
    return;
  }
  a = checked(a, call, d);
  if (a.balance == Balance::Row && a.targets && !reads_target_pairs(a.loss)) {
    float* weights = reinterpret_cast<float*>(work);
    const int64_t blocks = ceil_div(a.rows, kBlock / 32);
    CBLOSS_LAUNCH(row_weights_kernel, dim3(grid_size(blocks)), dim3(kBlock), d.stream, a, weights);
    a.row_weight = weights;
  }
  if (launch_log()) {
    log_kernels(std::to_string(a.rows * a.classes) + " elements: " + checks_named(a, call, d) + (a.row_weight ? "row_weights_kernel, " : "") + "elements_kernel<" +
                logit_type_name<T>() + ", " + std::to_string(V) + ">");
  }
  auto* kernel = elements_kernel<T, V>;
  const int64_t blocks = element_blocks(a.rows * a.classes);
  a = summing_loss(a, call, false, blocks, d);
  CBLOSS_LAUNCH(kernel, dim3(static_cast<unsigned>(blocks)), dim3(kBlock), d.stream, a);
  check_launch();
  summed_after(a, call, d.stream);
}

template <class T>
void launch_typed(const KernelArgs& a, char* work, const DeviceLaunch& d, const DeviceCall* call) {
  const bool rows = is_row_loss(a.loss);
  const int64_t run = rows ? a.classes : a.rows * a.classes;  // what must come in whole runs of V
  const auto fits = [&](int64_t V) {
    const size_t bytes = static_cast<size_t>(V) * sizeof(T);
    return run % V == 0 && aligned_to(a.logits, bytes) && aligned_to(a.grad, bytes) &&
           (rows || (aligned_to(a.targets, 16) && aligned_to(a.element_loss, 16)));
  };
  // Runs of 8 16-bit logits are one 16-byte access a lane; but an element loss's float targets and
  // losses would then be two float4 accesses a lane 32 bytes apart, each warp instruction touching
  // twice the sectors it uses (the traffic model: sector efficiency 0.667) — runs of 4 there.
  const bool float_arrays = !rows && (a.targets || a.element_loss);
  if constexpr (sizeof(T) == 2) {
    if (!float_arrays && fits(8)) return launch_compute_width<T, 8>(a, work, d, call);
  }
  if (fits(4)) return launch_compute_width<T, 4>(a, work, d, call);
  return launch_compute_width<T, 1>(a, work, d, call);
}

void launch_any_type(LogitType type, const KernelArgs& a, char* work, const DeviceLaunch& d, const DeviceCall* call) {
  switch (type) {
    case LogitType::Float32: return launch_typed<float>(a, work, d, call);
    case LogitType::Float16: return launch_typed<Float16>(a, work, d, call);
    case LogitType::BFloat16: return launch_typed<BFloat16>(a, work, d, call);
  }
}

}  // namespace

int64_t element_blocks(int64_t elements) { return stride_blocks(elements, int64_t{kBlock} * 4); }

size_t work_bytes(const Problem& p, int64_t rows) {
  if (is_row_loss(p.loss)) {
    const bool split = row_group(p.classes, least_held_values()) == 0;
    return split ? static_cast<size_t>(rows * slices_per_row(p.classes)) * sizeof(RowStats) : 0;
  }
  const bool row_weights = p.balance == Balance::Row && p.targets && !reads_target_pairs(p.loss);
  return row_weights ? static_cast<size_t>(rows) * sizeof(float) : 0;
}

void launch_compute(LogitType type, const KernelArgs& a, char* work, const DeviceLaunch& d) {
  if (a.rows > 0) launch_any_type(type, a, work, d, nullptr);
}

int64_t divisor_term_count(int64_t rows, const DeviceLaunch& d) {
  return std::max(divisor_blocks(rows), kMostBlocksPerSM * d.multiprocessors);
}

// Tiles of held rows in groups under a warp: at least kBlock / 16 rows each.
int64_t loss_partial_count(const Problem& p) {
  if (!is_row_loss(p.loss)) return element_blocks(p.rows * p.classes);
  return p.classes <= int64_t{kSmallGroupValues} * 16 ? ceil_div(p.rows, kBlock / 16) : 0;
}

void launch_device_call(LogitType type, KernelArgs a, const DeviceCall& call, char* work, const DeviceLaunch& d) {
  if (a.rows == 0) return launch_sum(a.partials, 0, call.stage, call.sum, d.stream);  // (a sum of none)
  launch_any_type(type, a, work, d, &call);
}

// Deterministic sums: fixed segments, then one block (or one block alone, for a few values).
constexpr int64_t kSumBlocks = 1024;

size_t sum_scratch_bytes() { return kSumBlocks * sizeof(double); }

namespace {

template <class V>
void deterministic_sum(const V* values, int64_t count, double* stage, double* out, cudaStream_t stream) {
  if (count <= kOneBlockSum) {
    auto* only = segment_sum_kernel<V>;
    CBLOSS_LAUNCH(only, dim3(1), dim3(kBlock), stream, values, count, count, out);
    check_launch();
    return;
  }
  const int64_t segment = ceil_div(count, kSumBlocks);
  const int64_t blocks = ceil_div(count, segment);
  auto* first = segment_sum_kernel<V>;
  CBLOSS_LAUNCH(first, dim3(static_cast<unsigned>(blocks)), dim3(kBlock), stream, values, count, segment, stage);
  auto* second = segment_sum_kernel<double>;
  CBLOSS_LAUNCH(second, dim3(1), dim3(kBlock), stream, stage, blocks, blocks, out);
  check_launch();
}

}  // namespace

void launch_sum(const float* values, int64_t count, double* stage, double* out, cudaStream_t stream) {
  deterministic_sum(values, count, stage, out, stream);
}

void launch_sum(const double* values, int64_t count, double* stage, double* out, cudaStream_t stream) {
  deterministic_sum(values, count, stage, out, stream);
}

void launch_label_check(const int32_t* labels, int64_t rows, int64_t classes, bool use_ignore, int32_t ignore_index,
                        unsigned long long* first_bad, cudaStream_t stream) {
  if (rows == 0) return;
  CBLOSS_LAUNCH(check_labels_kernel, dim3(row_thread_blocks(rows)), dim3(kBlock), stream, labels, rows, classes,
                use_ignore, ignore_index, first_bad);
  check_launch();
}

int64_t divisor_blocks(int64_t rows) { return row_thread_blocks(rows); }

void launch_divisor_terms(const KernelArgs& a, Divisor divisor, double* terms, unsigned long long* first_bad,
                          double* out, unsigned int* done, cudaStream_t stream) {
  if (a.rows == 0) return;
  if (a.labels && !first_bad) throw std::logic_error("launch_divisor_terms: device labels must be checked");
  CBLOSS_LAUNCH(divisor_terms_kernel, dim3(row_thread_blocks(a.rows)), dim3(kBlock), stream, a, divisor, terms,
                first_bad, out, done);
  check_launch();
}

}  // namespace cuda

// The kinds' dispatch as the kernels instantiate it, compiled for the host too: nvcc's device pass does
// not warn about an enum value a switch leaves out, the host compiler does (-Werror=switch), so a kind
// without a policy fails this build as it fails the CPU's.
namespace math {
template SoftmaxRow<float> row_terms<float, float>(LossKind, bool, const SoftmaxSums<float>&, const RowParams<float, float>&);
template LossAndSlope<float> element_terms<float, float>(LossKind, float, float, float, const ElementScalars<float>&);
}  // namespace math
}  // namespace cbloss
