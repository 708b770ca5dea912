// The arguments every loss kernel takes (kernels.cuh), filled by the host side (losses_cuda.cu) and
// passed by value to each launch (launch.cu): plain device pointers and scalars, so that host files
// need not see the kernels.
#pragma once

#include <cstdint>

#include "../core/losses/element_terms.h"
#include "../core/problem.h"
#include "../core/row_scalars.h"

namespace cbloss {
namespace cuda {

// What the kernels read: device pointers and scalars (weights as float vectors on the device).
struct KernelArgs {
  LossKind loss;
  int64_t rows;
  int64_t classes;
  const void* logits;  // rows * classes of the logit type
  void* grad;          // rows * classes of the logit type, or null (forward only)
  const int32_t* labels;
  const float* targets;
  const float* class_weight;    // C, or null
  const float* pos_weight;      // C, or null
  const float* alpha;           // C (softmax focal) or 2 (binary focal), or null
  const float* balance_weight;  // C (2 for the binary focal loss), or null
  Balance balance;
  const float* row_weight;      // element losses, Balance::Row with probability targets: one per row
  const float* grad_output;     // one per output element, or null
  // The logit map (docs/semantics.md, "Logit maps"; core/logit_map.h): when map_logits, C bias and C
  // margin values (zeros where the call has none) and the scale; the row kernels map each logit as they
  // load it.
  bool map_logits;
  const float* logit_bias;
  const float* margin;
  float logit_scale;
  // Sample weights (docs/semantics.md, "Per-call options"): one per output row, or (element losses,
  // sample_weight_per_element) per logit; null.
  const float* sample_weight;
  bool sample_weight_per_element;
  float grad_output_scalar;
  const double* divisor;        // on the device: what the summed loss is divided by (1 for 'none')
  RowScalars<float> row;                // row losses: their scalars (row_scalars)
  math::ElementScalars<float> element;  // element losses: their scalars (math::element_scalars)
  int32_t ignore_index;
  float* row_loss;              // softmax losses: one per row (the 'none' output, or scratch), or null
  float* element_loss;          // element losses with 'none': one per element, else null
  double* partials;             // element losses: one per block; rows in groups under a warp: one per tile
  // A call on device arrays: its loss launch's last block sums the row losses (loss_sum_rows) or the
  // partials, loss_sum_count of them, into *loss_sum, counting its blocks in *loss_blocks_done
  // (reductions.cuh, sum_in_last_block); loss_sum null: a launch after it sums them (launch.cu).
  double* loss_sum;
  int64_t loss_sum_count;
  bool loss_sum_rows;
  unsigned int* loss_blocks_done;
  // Device-resident labels: the row of the first invalid label (check_labels_kernel, launched
  // before), or all ones. Kernels that read labels or write outputs do nothing when one was found,
  // so a call with a bad label writes nothing and needs no synchronization before its kernels.
  unsigned long long* invalid_label;
  // The one-pass launch (held_rows_kernel<..., true>, cooperative): the kernel checks the labels itself
  // into *invalid_label and, where the divisor depends on them (label_divisor not None), sums its terms
  // per block into divisor_terms before a grid-wide barrier, after which every block sums them (block 0
  // also puts the divisor at divisor_out, = divisor), all before anything is written.
  Divisor label_divisor;
  int held_labels;  // the labels a block holds: its tiles' rows (shared memory before the staged weights)
  double* divisor_terms;
  double* divisor_out;
};

}  // namespace cuda
}  // namespace cbloss
