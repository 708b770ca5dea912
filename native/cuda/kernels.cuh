// The CUDA kernels: every loss of native/core/math.h on the GPU, for float32, float16 and bfloat16
// logits (the math in float32, the gradient stored in the logits' type).
//
// Softmax losses (CE, softmax focal). With m = max_c z_c, S = sum_c e^(z_c - m) and the linear terms
// of math::softmax_row_terms, every gradient is  k * (coef * e^(z_c - m) / S - q_c)  (q_c: `hit` at
// the label plus the per-class smoothing / probability-target term), k the upstream gradient times
// the class-balanced row weight over the divisor. A row goes to
//   * a group of G threads — 4, 8 or 16 lanes (C <= 16, 128, 256), a warp, or 2, 4 or 8 warps (the
//     whole block), the smallest that holds the row in registers, R runs of V columns per thread
//     (held_rows_kernel, C <= kMaxHeldValues G): one read of the logits and one write of the gradient
//     per element;
//   * beyond that, on sm_90, a cluster of up to kMaxClusterBlocks blocks per row, each holding a slice
//     in registers, the blocks' max and sums exchanged through distributed shared memory
//     (cluster_rows_kernel): again one read and one write per element;
//   * beyond that, or without clusters, a block or a cluster of blocks per row holding it in shared
//     memory (shared_rows_kernel): one read and one write per element, up to what shared memory holds;
//   * beyond that, several blocks per row in two kernels: running (online)
//     statistics of each slice in one read, then the slices merged — S = sum_s S_s e^(m_s - m),
//     linear = sum_s linear_s + mass_s (m - m_s) — in a fixed order and the gradient of each slice
//     from a second read.
// Every thread writes only the columns it read (so the gradient may overwrite the logits), after the
// row's statistics are complete. Each row's loss goes to a per-row buffer (the 'none' output itself,
// or scratch; on device arrays, rows in groups under a warp instead add each tile's losses up in the
// kernel, one double a tile, besides a 'none' output) that segment_sum_kernel adds up in double in a
// fixed order, so the reduced loss does not depend on the GPU or the grid. Device labels are checked
// before anything is written: by a kernel of their own (with the divisor's terms), or, for rows in
// groups under a warp, by the loss kernel itself in one cooperative launch (held_rows.cuh, "the one
// pass", whose weighted divisor is summed over a grid the GPU's size sets: its last bits may differ).
//
// Element-wise losses (BCE, sigmoid focal, binary focal): a grid-stride loop, one partial sum per
// block in a fixed grid. No float atomics anywhere.
//
// Every kernel has a width V: its rows (softmax) or its whole array (element-wise) come in runs of V
// values read and written with vector accesses — V = 8 for 16-bit logits and V = 4 for float32, one
// 16-byte access each, or V = 4 for 16-bit logits (8 bytes) — when the lengths and the arrays'
// alignment allow it, else V = 1 (the host picks, launch_typed in launch.cu).
//
// The code is in kernels/, a file per part, included here in dependency order: access (loads, stores,
// the columns a thread owns), reductions, softmax_rows (the row terms every row kernel shares), then a
// file per row kernel family, the element-wise losses, and the sums.
#pragma once

#include "kernels/access.cuh"
#include "kernels/reductions.cuh"
#include "kernels/softmax_rows.cuh"
#include "kernels/held_rows.cuh"
#include "kernels/cluster_rows.cuh"
#include "kernels/shared_rows.cuh"
#include "kernels/slices.cuh"
#include "kernels/elements.cuh"
#include "kernels/sums.cuh"
