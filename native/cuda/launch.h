// The CUDA backend's kernel launches (launch.cu, the one host file that compiles the kernels of
// kernels.cuh): which kernel computes a problem of this shape on this device, on which grid, and the
// deterministic sums of the row losses. losses_cuda.cu decides where the arrays live and when they
// move; it calls these with device pointers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>
#include <utility>

#include "../core/problem.h"
#include "cuda_api.h"
#include "kernel_args.h"

namespace cbloss {
namespace cuda {

// What launches learn of a device once and keep: whether a kernel runs in clusters of K blocks with
// so much dynamic shared memory a block there, the dynamic shared memory a kernel was allowed beyond
// the default 48 KB, and how many blocks of a kernel with so much dynamic shared memory an SM holds
// (the one pass asks for a few sizes a call: kept, so that a call makes no runtime query twice).
struct LaunchAnswers {
  std::map<std::tuple<const void*, int64_t, size_t>, bool> cluster_fits;
  std::map<const void*, size_t> shared_allowed;
  std::map<std::pair<const void*, size_t>, int> blocks_per_sm;
};

// What a compute launch needs besides its arguments: the stream, whether rows of 17-256 columns go to
// groups of 8 or 16 lanes (not turned off by CBLOSS_CUDA_SMALL_GROUPS=0), and the device's context —
// whether cluster kernels may be tried (compute capability 9+, not turned off by CBLOSS_CUDA_CLUSTERS=0),
// whether rows are held in registers by clusters (only when turned on by CBLOSS_CUDA_REGISTER_CLUSTERS=1:
// slower than the others on an H200, bench/RESULTS.md), rows held in shared memory (not turned off by
// CBLOSS_CUDA_SHARED_ROWS=0; in clusters of any size with CBLOSS_CUDA_SHARED_ROWS=1), whether a device call
// may take the one pass (no_one_pass null; else why not, for CBLOSS_CUDA_LOG: the device does not run
// cooperative launches, or CBLOSS_CUDA_ONE_PASS=0), the most values a launch's last block sums for a
// device call (CBLOSS_CUDA_LAST_BLOCK_SUMS, default kOneBlockSum; 0: every sum a launch of its own
// after), its multiprocessors and shared memory, and the answers it keeps (the context's lock is held
// around every launch).
constexpr int64_t kOneBlockSum = 8192;  // values one block sums (launch_sum's one-block case too)
struct DeviceLaunch {
  cudaStream_t stream;
  bool small_groups;
  bool clusters;
  bool register_clusters;
  bool shared_rows;
  bool shared_rows_any_cluster;
  const char* no_one_pass;
  int64_t last_block_sums;
  int multiprocessors;
  size_t shared_per_block;
  LaunchAnswers& answers;
};

// Blocks of an element-wise loss launch, hence its count of partial sums: a function of the element
// count only (so that the reduced loss does not depend on the GPU).
int64_t element_blocks(int64_t elements);

// Scratch a compute launch of `rows` rows needs (slice statistics or element row weights).
size_t work_bytes(const Problem& p, int64_t rows);

// The loss (and gradient) kernels of a chunk of host arrays staged on the device (`a`: its arguments,
// logits of `type`; labels checked on the host): no label check, row losses in a.row_loss, element
// partials in a.partials; `work` has work_bytes(). Asynchronous on d.stream.
void launch_compute(LogitType type, const KernelArgs& a, char* work, const DeviceLaunch& d);

// A call whose arrays are on the device: what it checks before its loss kernels write anything — its
// labels, into *first_bad (all ones beforehand; null without device labels), and where the divisor
// depends on the labels or targets (data_divisor, else Divisor::None) its terms (divisor_term_count()
// doubles) and their sum at *divisor — then the loss kernels, and the sum of their losses at *sum
// (`stage`: sum_scratch_bytes()). Rows held by groups under a warp sum their losses per tile into
// a.partials (loss_partial_count() doubles; then a.row_loss is the 'none' output or null), where labels
// allow in one pass (held_rows.cuh). The divisor's sum and the loss's are taken by the last block of
// the launch that wrote their values where they are few (kernels/reductions.cuh, sum_in_last_block),
// which counts its blocks in blocks_done[kDivisorLaunch] and blocks_done[kLossLaunch] (zeros before the
// call): then the call is its loss kernels and at most one launch before them. Asynchronous on d.stream.
constexpr int kDivisorLaunch = 0;
constexpr int kLossLaunch = 1;
constexpr int kCountedLaunches = 2;
struct DeviceCall {
  Divisor data_divisor;
  double* divisor_terms;
  double* divisor;
  double* sum;
  double* stage;
  unsigned long long* first_bad;
  unsigned int* blocks_done;  // kCountedLaunches counters, zeros
  bool row_losses_out;  // a.row_loss is the 'none' output (else scratch, left unwritten where tiles sum)
};
int64_t divisor_term_count(int64_t rows, const DeviceLaunch& d);
int64_t loss_partial_count(const Problem& p);
void launch_device_call(LogitType type, KernelArgs a, const DeviceCall& call, char* work, const DeviceLaunch& d);

// Deterministic sum of `count` values into *out (double): fixed segments into `stage`
// (sum_scratch_bytes()), then one block; up to 8192 values, one block alone.
size_t sum_scratch_bytes();
void launch_sum(const float* values, int64_t count, double* stage, double* out, cudaStream_t stream);
void launch_sum(const double* values, int64_t count, double* stage, double* out, cudaStream_t stream);

// Device-resident labels: the first of `rows` rows whose label is outside [0, classes) (and not
// ignore_index where use_ignore) into *first_bad, which holds all ones beforehand and keeps them when
// every label is valid.
void launch_label_check(const int32_t* labels, int64_t rows, int64_t classes, bool use_ignore, int32_t ignore_index,
                        unsigned long long* first_bad, cudaStream_t stream);

// What the divisor of a data-dependent reduction adds up (labels or targets on the device), summed per
// block into divisor_blocks(a.rows) terms and those by the launch's last block into *out (counting its
// blocks in *done, zero before; out null: not summed), the labels checked in the same pass into *first_bad as
// launch_label_check does (when first_bad is not null).
int64_t divisor_blocks(int64_t rows);
void launch_divisor_terms(const KernelArgs& a, Divisor divisor, double* terms, unsigned long long* first_bad,
                          double* out, unsigned int* done, cudaStream_t stream);

}  // namespace cuda
}  // namespace cbloss
