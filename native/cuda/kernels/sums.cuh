// Deterministic sums, the divisor terms of data-dependent reductions, the label check.
// (Part of kernels.cuh, whose header comment has the overview.)
#pragma once

#include "softmax_rows.cuh"

namespace cbloss {
namespace cuda {

// out[blockIdx.x] = sum of values[i] over this block's fixed segment (in double).
template <class V>
__global__ void segment_sum_kernel(const V* values, int64_t count, int64_t segment, double* out) {
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * segment;
  const int64_t end = begin + segment < count ? begin + segment : count;
  double v = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += kBlock) v += static_cast<double>(read_at(values, i));
  const double total = block_total(v);
  if (threadIdx.x == 0) write_at(out, blockIdx.x, total);
}

// The traffic accounting's count of what the core's label_weight_term / balance_row_weight (shared with
// the CPU, so plain pointers) read for row n: its label, and the weight at it, or its targets.
__device__ __forceinline__ void count_divisor_term_reads(const KernelArgs& a, Divisor divisor, int64_t n) {
#if defined(CBLOSS_CUDA_EMULATION)
  const float* weights = divisor == Divisor::LabelWeight ? a.class_weight : a.balance_weight;
  if (divisor != Divisor::LabelWeight && reads_target_pairs(a.loss)) {
    read_at(a.targets, n), read_at(weights, 0), read_at(weights, 1);
  } else if (a.labels) {  // (its label's second read, in the core function, is the same address: not counted)
    const int32_t y = read_at(a.labels, n);
    const bool ignored = uses_ignore_index(a.loss) && y == a.ignore_index;
    if (weights && !ignored) read_at(weights, y);
  } else if (divisor != Divisor::LabelWeight) {
    for (int64_t c = 0; c < a.classes; ++c) read_at(weights, c), read_at(a.targets, n * a.classes + c);
  }
#else
  (void)a, (void)divisor, (void)n;
#endif
}

// What the divisor of a data-dependent reduction adds up (labels or targets on the device), summed per
// block: block b's total of its rows' terms (a grid-stride loop over a grid that depends on the row
// count only, each thread's rows in order, then the block in a fixed order — the same sum on any GPU)
// into block_terms[b], and the blocks' totals by the last block into *divisor_out (sum_in_last_block,
// counting in *done) unless divisor_out is null (a launch after it sums them). Device labels are checked in the same pass (first_bad, as check_labels_kernel;
// a bad label's term is 0, its weight never read; first_bad must be given where labels are): one read
// of the labels instead of two, and one double a block written instead of one a row.
__global__ void divisor_terms_kernel(KernelArgs a, Divisor divisor, double* block_terms, unsigned long long* first_bad,
                                     double* divisor_out, unsigned int* done) {
  const bool use_ignore = uses_ignore_index(a.loss);
  double mine = 0.0;
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x; n < a.rows;
       n += static_cast<int64_t>(gridDim.x) * kBlock) {
    if (first_bad && !valid_label(read_at(a.labels, n), a.classes, use_ignore, a.ignore_index)) {
      atomicMin(first_bad, static_cast<unsigned long long>(n));
      continue;
    }
    count_divisor_term_reads(a, divisor, n);
    mine += divisor == Divisor::LabelWeight
                ? label_weight_term(a.loss, a.class_weight, a.labels, a.ignore_index, n)
                : balance_row_weight(a.loss, a.balance_weight, a.labels, a.targets, a.classes, a.ignore_index, n);
  }
  const double total = block_total(mine);
  if (threadIdx.x == 0) write_at(block_terms, blockIdx.x, total);
  if (divisor_out) sum_in_last_block(block_terms, gridDim.x, divisor_out, done);
}

// The first row whose label is outside [0, C) and not ignore_index (when allowed): atomicMin of
// the row index (integer atomics are exact), starting from UINT64_MAX.
__global__ void check_labels_kernel(const int32_t* labels, int64_t rows, int64_t classes, bool use_ignore,
                                    int32_t ignore_index, unsigned long long* first_bad) {
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * kBlock + threadIdx.x; n < rows;
       n += static_cast<int64_t>(gridDim.x) * kBlock) {
    if (!valid_label(read_at(labels, n), classes, use_ignore, ignore_index)) {
      atomicMin(first_bad, static_cast<unsigned long long>(n));
    }
  }
}

}  // namespace cuda
}  // namespace cbloss
